"""``EmulatorServer``: run the emulator in-process (tests, embedding, ``hpcsoa serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from ._app import build_app
from ._config import EmulatorConfig
from ._state import EmulatorState
from ._tls import TlsMaterial, load_tls, self_signed_tls

if TYPE_CHECKING:
    from ._faults import FaultPlan

__all__ = ["EmulatorServer"]

log = logging.getLogger("hpcsoa.emulator")

_GENERATED_USER = "hpcuser"


class EmulatorServer:
    """The emulator as an async context manager.

    ``async with EmulatorServer(port=0) as server:`` starts it on a free port; then
    ``server.base_url`` (``http://127.0.0.1:PORT`` or ``https://...``) serves the whole API
    (head node and broker on one authority).

    Args:
        config: the configuration (default ``EmulatorConfig()``).
        clock: monotonic clock (seconds) for the broker's idle timeouts; tests may inject one.
        **overrides: ``EmulatorConfig`` fields that replace those of ``config``.

    Attributes (valid once started):
        base_url, authority, cluster, username, password (the first configured or the
        generated user; never in ``repr``), cert_sha256 / cert_sha1 (TLS only), state.

    Raises:
        ValueError: invalid ``overrides`` (construction).
        OSError: the port cannot be bound (``start``).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        base = config if config is not None else EmulatorConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        users = dict(self.config.users)
        if not users:
            users[f"{self.config.cluster}\\{_GENERATED_USER}"] = secrets.token_urlsafe(12)
        self.username, self.password = next(iter(users.items()))
        self.generated_user = not self.config.users
        self.state = EmulatorState(self.config, users, clock=clock)
        self.cluster = self.config.cluster
        self.base_url = ""
        self.authority = ""
        self.port = 0
        self.cert_sha256: str | None = None
        self.cert_sha1: str | None = None
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._state = "unopened"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            RuntimeError: already started or closed.
            OSError: the address cannot be bound; TLS files cannot be read.
        """
        if self._state != "unopened":
            raise RuntimeError(f"EmulatorServer is {self._state}; it can be started once")
        self._state = "opened"
        config = self.config
        tls: TlsMaterial | None = None
        if config.cert_file is not None and config.key_file is not None:
            tls = load_tls(config.cert_file, config.key_file)
        elif config.tls:
            tls = self_signed_tls(config.host)
        if tls is not None:
            self.cert_sha256, self.cert_sha1 = tls.sha256, tls.sha1
        await self.state.dispatcher.start()
        await self.state.scheduler.start()
        self.state.closers.append(self.state.scheduler.aclose)
        app = build_app(self.state)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(
            runner,
            config.host,
            config.port,
            ssl_context=tls.context if tls is not None else None,
            backlog=1024,
            reuse_address=True,
        )
        try:
            await site.start()
        except BaseException:
            await self.aclose()
            raise
        self.port = _bound_port(runner, config.port)
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.authority = f"{host}:{self.port}"
        self.base_url = f"{'https' if tls is not None else 'http'}://{self.authority}"
        self.state.authority = self.authority
        self._sweeper = asyncio.create_task(self._sweep(), name="hpcsoa-emulator-sweeper")
        log.info("emulator listening on %s (cluster %s)", self.base_url, self.cluster)

    async def _sweep(self) -> None:
        """Apply idle timeouts; runs often enough for the shortest configured timeout."""
        broker = self.state.broker
        while True:
            shortest = broker.next_deadline()
            interval = 1.0 if shortest is None else min(1.0, max(0.005, shortest / 10.0))
            await asyncio.sleep(interval)
            try:
                broker.expire()
            except Exception:  # never let a bug stop timeouts for good
                log.exception("idle-timeout sweep failed")

    def set_fault_plan(self, plan: FaultPlan | None) -> None:
        """Replace the fault plan (``None`` removes it)."""
        self.state.set_fault_plan(plan)

    def is_closed(self) -> bool:
        return self._state == "closed"

    async def aclose(self) -> None:
        """Stop serving and release everything; idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        # Open Get Responses streams would hold the shutdown: end them first.
        self.state.broker.end_all_streams()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.state.dispatcher.aclose()
        for closer in reversed(self.state.closers):
            try:
                await closer()
            except Exception:  # one failing extension must not keep the others open
                log.exception("emulator extension failed to close")

    def __repr__(self) -> str:
        return (
            f"<EmulatorServer {self._state} url={self.base_url or '-'} cluster={self.cluster!r} "
            f"user={self.username!r} {self.state.broker!r}>"
        )


def _bound_port(runner: web.AppRunner, fallback: int) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    return fallback
