"""``python -m arkrelay_tapd.sim``: the same commands as ``arkrelay sim tapd``."""

from .cli import tapd

if __name__ == "__main__":
    tapd(prog_name="python -m arkrelay_tapd.sim")
