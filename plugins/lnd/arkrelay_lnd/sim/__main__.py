"""``python -m arkrelay_lnd.sim``: the same commands as ``arkrelay sim ln``."""

from .cli import ln

if __name__ == "__main__":
    ln(prog_name="python -m arkrelay_lnd.sim")
