"""Harness for the CLI tests: a real emulator on 127.0.0.1 port 0, hosted in a thread.

``main(argv)`` runs its own event loop (``asyncio.run``), so the tests are synchronous and
the emulator lives on a second loop in a background thread, one per test module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

USER = "CONTOSO\\alice"
PASSWORD = "pw-5Xq9-not-in-any-output"


@dataclasses.dataclass
class Emulator:
    """A running emulator and the argv that reaches it."""

    url: str
    username: str
    password: str
    cert_sha256: str | None
    server: Any

    def argv(self, *, password: str | None = None) -> list[str]:
        args = ["--url", self.url, "--username", self.username]
        args += ["--password", self.password if password is None else password]
        if self.cert_sha256:
            args += ["--pin-sha256", self.cert_sha256]
        return args

    def env(self) -> dict[str, str]:
        return {
            "HPCSOA_URL": self.url,
            "HPCSOA_USERNAME": self.username,
            "HPCSOA_PASSWORD": self.password,
        }


class ThreadedEmulator:
    """``EmulatorServer`` on its own event loop in a daemon thread."""

    def __init__(self, **config: Any) -> None:
        self._config = config
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.emulator: Emulator | None = None
        self._thread = threading.Thread(target=self._run, name="cli-test-emulator", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from hpcsoa.emulator import EmulatorServer

        async with EmulatorServer(**self._config) as server:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.emulator = Emulator(
                url=server.base_url,
                username=server.username,
                password=server.password,
                cert_sha256=server.cert_sha256,
                server=server,
            )
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Emulator:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the emulator did not start within 30 s")
        if self._error is not None:
            raise self._error
        assert self.emulator is not None
        return self.emulator

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
