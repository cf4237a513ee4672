"""``python -m arkrelay_arkd.sim``: the same command as ``arkrelay sim arkd``."""

from .cli import arkd

if __name__ == "__main__":
    arkd(prog_name="python -m arkrelay_arkd.sim")
