"""``python -m hpcsoa.emulator``: same as ``hpcsoa serve``."""

import sys

from ._cli import serve_main

if __name__ == "__main__":
    sys.exit(serve_main(prog="python -m hpcsoa.emulator"))
