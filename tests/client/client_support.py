"""Shared helpers of the SOA client tests (imported by ``conftest.py`` and test modules).

Test modules cannot import ``conftest`` reliably (every test folder has one), hence this
uniquely named module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import hpcsoa

USER = "CONTOSO\\alice"
PASSWORD = "s3cret-pw"


def flaky(text: str) -> str:
    if text.startswith("boom"):
        raise ValueError(f"cannot handle {text!r}")
    return text.upper()


async def slow(text: str) -> str:
    await asyncio.sleep(0.02)
    return text[::-1]


class SleepRecorder(list[float]):
    """An injectable sleep that records the delays and only yields once."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)
        await asyncio.sleep(0)


MakeClient = Callable[..., Awaitable[hpcsoa.HpcClient]]


async def wait_for_quiet(client: hpcsoa.HpcClient, before: set[asyncio.Task[Any]]) -> None:
    """Wait (bounded) until every client task started since ``before`` is done and the
    pool has no connection in use; fail after 5 s."""
    async with asyncio.timeout(5):
        while True:
            extra = client_tasks() - before
            if not extra and client.pool_stats()["in_use"] == 0:
                return
            await asyncio.sleep(0.01)


def client_tasks() -> set[asyncio.Task[Any]]:
    """Live tasks running client code (the emulator's own tasks are not counted)."""
    out = set()
    for task in asyncio.all_tasks():
        if task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = getattr(code, "co_filename", "") or ""
        if "/hpcsoa/soa/" in filename or "/hpcsoa/transport/" in filename:
            out.add(task)
        elif task.get_name().startswith("hpcsoa map"):
            out.add(task)
    return out


def pos(response: hpcsoa.Response) -> int | str:
    """The request position in a batch's own user data (``"<token>:<i>"``), else the user
    data itself (user-chosen)."""
    ud = response.user_data or ""
    token, sep, num = ud.rpartition(":")
    return int(num) if sep and token and num.isdigit() else ud
