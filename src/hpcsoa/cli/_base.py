"""Click plumbing shared by every command module: command classes and the async runner."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from ._errors import EXIT_CODES_HELP

__all__ = ["HpcCommand", "HpcGroup", "run_async"]

T = TypeVar("T")

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}


class HpcCommand(click.Command):
    """A command whose help ends with the exit codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", EXIT_CODES_HELP)
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)


class HpcGroup(click.Group):
    """A group whose subcommands are :class:`HpcCommand` / :class:`HpcGroup`."""

    command_class = HpcCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", EXIT_CODES_HELP)
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader of stdout went away (`hpcsoa jobs list --json | head`). Like other
            # Unix tools, stop quietly with success (click itself would exit 1); stdout goes
            # to /dev/null so the interpreter's last flush does not complain either.
            silence_stdout()
            raise click.exceptions.Exit(0) from None


HpcGroup.group_class = HpcGroup


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null (after a broken pipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (e.g. captured in tests)
        pass


async def _settled(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    except Exception:
        # A connection that failed is closed by callbacks asyncio schedules for later loop
        # iterations; a TLS connection even waits for the peer's close_notify (aiohttp
        # closes, not aborts, a transport whose certificate fingerprint did not match). Give
        # that a moment before the loop closes, instead of the socket leaking into garbage
        # collection as a ResourceWarning. Only failures pay for this.
        await asyncio.sleep(0.1)
        raise


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine on a fresh event loop.

    Ctrl-C cancels the coroutine (so ``async with`` blocks close sessions and streams) and
    then surfaces as ``KeyboardInterrupt``, which ``main()`` turns into exit code 130.
    """
    return asyncio.run(_settled(coro))
