"""The ``hpcsoa`` command line (click + rich, public API only)."""

from ._app import main as main

__all__ = ["main"]
