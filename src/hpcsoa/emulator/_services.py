"""SOA services of the emulator and the dispatcher that runs them (spec §3.4, Appendix C.7).

Services
--------

``CcpEchoSvc`` is built in: its typed ``Echo(input)`` replies ``"<machine>:" + input``
(action ``http://tempuri.org/IEchoSvc/Echo``, reply ``EchoResponse``/``EchoResult``) and its
generic operation replies ``"<machine> (GenericService): " + input``.

A user service is one callable (``--service NAME=module:function``), sync or async. It gets
the input string for a generic request, or a :class:`TypedCall` (operation name, namespace,
parameters) for a typed one, and returns the output string (the ``{Operation}Result`` text of
a typed reply). Whatever it raises becomes an in-stream fault response for that request only.
Sync functions run in a thread pool of ``cores`` threads, so a slow one does not stall the
server.

Dispatch
--------

Requests run concurrently, at most ``cores`` at a time, and answers are stored in completion
order. ``CcpEchoSvc`` with zero latency is computed inline in the Send Requests call (nothing
to wait for, so no task or queue hop). Everything else goes through a queue drained by a fixed
pool of ``cores`` worker tasks; each sleeps the simulated service time (``latency_ms``: fixed
or a seeded distribution) and then calls the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import EncodeError, ProtocolError
from ..protocol import (
    GENERIC_REPLY_ACTION,
    GENERIC_REQUEST_ACTION,
    GenericRequest,
    ServiceVersion,
    SoaFault,
)
from ..protocol._errors import SOA_FAULT_CODES
from ..protocol._soap import fault_action, parse_wcf_body, wcf_reply_body
from ._config import ECHO_SERVICE, EmulatorConfig, parse_latency
from ._context import FaultError

if TYPE_CHECKING:
    from ._broker import Broker, BrokerBatch, Message, StoredResponse

__all__ = [
    "ECHO_SERVICE",
    "RETRY_OPERATION_ERROR_ACTION",
    "UNVERSIONED",
    "Dispatcher",
    "LatencyModel",
    "Service",
    "ServiceRegistry",
    "TypedCall",
]

log = logging.getLogger("hpcsoa.emulator")

ECHO_NAMESPACE: Final = "http://tempuri.org/"
RETRY_OPERATION_ERROR_ACTION: Final = fault_action("RetryOperationError")
_QUEUE_HIGH_WATER: Final = 65536


@dataclass(frozen=True, slots=True)
class TypedCall:
    """A typed request as a user service receives it.

    Attributes:
        action: the request action URI (e.g. ``http://tempuri.org/IEchoSvc/Echo``).
        operation: the body element's local name (``Echo``).
        namespace: the body element's namespace (``http://tempuri.org/``).
        params: ``(name, text)`` of each child element, in order.
    """

    action: str
    operation: str
    namespace: str
    params: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The text of parameter ``name`` (first match), else ``default``."""
        for key, value in self.params:
            if key == name:
                return value
        return default


class _ActionNotSupported(Exception):
    pass


#: What Get Service Versions lists for a service registered without versions (§4.9).
UNVERSIONED: Final = ServiceVersion(0, 0)


@dataclass(frozen=True, slots=True)
class Service:
    """A registered SOA service. ``func`` is ``None`` for the built-in echo service.

    ``versions`` are the registered versions, newest first; empty for an unversioned service.
    """

    name: str
    func: Callable[[Any], Any] | None
    is_async: bool
    versions: tuple[ServiceVersion, ...] = ()

    @property
    def listed_versions(self) -> tuple[ServiceVersion, ...]:
        """What Get Service Versions answers: the versions, or ``0.0`` when unversioned."""
        return self.versions or (UNVERSIONED,)

    def bind_version(self, requested: ServiceVersion | None) -> ServiceVersion | None:
        """The version a new session binds to (``WebSessionInfo.ServiceVersion``, §4.1).

        A versioned service binds to ``requested`` if registered, else (nothing requested)
        to its newest version. An unversioned service binds to none (null, [DOC]) and
        accepts any requested version: the real launcher would look for a versioned
        registration file and fail, but clients that send a version by default (our
        conformance suite sends ``1.0`` to ``CcpEchoSvc``) must keep working.

        Raises:
            FaultError: 400 ``ServiceVersion_NotFound`` for a version the service lacks.
        """
        if not self.versions:
            return None
        if requested is None:
            return self.versions[0]
        if requested in self.versions:
            return requested
        known = ", ".join(str(v) for v in self.versions)
        raise FaultError(
            400,
            SOA_FAULT_CODES["ServiceVersion_NotFound"],
            f"Version {requested} of service {self.name} is not registered "
            f"(registered versions: {known}).",
        )


class ServiceRegistry:
    """Services by name (matched case-insensitively, as service registration files are)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.machine = config.machine_name
        self._versions = {n.casefold(): v for n, v in config.service_versions.items()}
        self._services: dict[str, Service] = {
            ECHO_SERVICE.casefold(): Service(
                ECHO_SERVICE, None, False, self._versions.get(ECHO_SERVICE.casefold(), ())
            )
        }
        for name, func in config.services.items():
            self.register(name, func)

    def register(
        self,
        name: str,
        func: Callable[[Any], Any],
        versions: Iterable[ServiceVersion] | None = None,
    ) -> None:
        """Add or replace service ``name``.

        ``versions`` (any order) defaults to the config's ``service_versions`` entry for the
        name; none = unversioned. Versions are not validated here (the config does that).
        """
        is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - async callable objects
        )
        if versions is None:
            ordered = self._versions.get(name.casefold(), ())
        else:
            ordered = tuple(
                sorted(
                    set(versions),
                    key=lambda v: (v.major, v.minor, v.build, v.revision),
                    reverse=True,
                )
            )
        self._services[name.casefold()] = Service(name, func, is_async, ordered)

    def get(self, name: str) -> Service | None:
        return self._services.get(name.casefold())

    def names(self) -> list[str]:
        return sorted(s.name for s in self._services.values())


class LatencyModel:
    """Seeded draws of the simulated service time (seconds)."""

    def __init__(self, spec: float | str, seed: int) -> None:
        self.kind, self.args = parse_latency(spec)
        self._rng = random.Random(seed)
        self.is_zero = self.kind == "fixed" and self.args[0] == 0

    def sample(self) -> float:
        kind, a = self.kind, self.args
        if kind == "fixed":
            ms = a[0]
        elif kind == "uniform":
            ms = self._rng.uniform(a[0], a[1])
        elif kind == "exp":
            ms = self._rng.expovariate(1.0 / a[0]) if a[0] > 0 else 0.0
        else:
            ms = max(0.0, self._rng.gauss(a[0], a[1]))
        return ms / 1000.0 if math.isfinite(ms) else 0.0


# --- turning a request into a stored response ---------------------------------------------------


def _reply(message: Message, output: str, reply_action: str, body: str | None) -> StoredResponse:
    message_id, action, payload = message
    return (reply_action, action, message_id, payload.user_data, output, body, None)


def fault_response(message: Message, reason: str) -> StoredResponse:
    """The in-stream fault for a failed request (§4.6; generic form G3)."""
    message_id, action, payload = message
    fault = SoaFault(
        kind="RetryOperationError",
        code="Receiver",
        reason=reason,
        numeric_code=SOA_FAULT_CODES["Broker_RetryLimitExceeded"],
        detail=(("Reason", reason), ("RetryCount", "0"), ("LastFailedServiceId", "0")),
    )
    return (
        RETRY_OPERATION_ERROR_ACTION,
        action,
        message_id,
        payload.user_data,
        reason,
        None,
        fault,
    )


def _unpack(message: Message) -> tuple[str | None, TypedCall | None]:
    """``(input, None)`` for a generic request, ``(None, call)`` for a typed one."""
    _, action, p = message
    if isinstance(p, GenericRequest):
        return p.input, None
    operation, namespace, params = parse_wcf_body(p.body)
    if action == GENERIC_REQUEST_ACTION:
        args = next((text for name, text in params if name == "args"), "")
        return args, None
    return None, TypedCall(action, operation, namespace, tuple(params))


def _finish(message: Message, call: TypedCall | None, output: object) -> StoredResponse:
    if not isinstance(output, str):
        output = "" if output is None else str(output)
    if call is None:
        return _reply(message, output, GENERIC_REPLY_ACTION, None)
    try:
        body = wcf_reply_body(call.operation, output, call.namespace)
    except EncodeError as exc:
        return fault_response(message, f"The service reply cannot be sent: {exc}")
    return _reply(message, output, message[1] + "Response", body)


def _echo(machine: str, input_: str | None, call: TypedCall | None) -> str:
    if call is None:
        return f"{machine} (GenericService): {input_}"
    if call.operation == "Echo":
        return f"{machine}:{call.get('input', '')}"
    raise _ActionNotSupported(
        f"The message with Action '{call.action}' cannot be processed at the receiver, due to a "
        "ContractFilter mismatch at the EndpointDispatcher."
    )


def run_inline(machine: str, message: Message) -> StoredResponse:
    """Answer one request for the built-in echo service, synchronously; never raises."""
    try:
        input_, call = _unpack(message)
        return _finish(message, call, _echo(machine, input_, call))
    except (ProtocolError, _ActionNotSupported) as exc:
        return fault_response(message, str(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Dispatcher:
    """Runs service calls, at most ``cores`` at once, and stores the answers in the broker."""

    def __init__(self, broker: Broker, config: EmulatorConfig) -> None:
        self._broker = broker
        self._machine = config.machine_name
        self._generic_prefix = f"{config.machine_name} (GenericService): "
        self._cores = config.cores
        self.latency = LatencyModel(config.latency_ms, config.seed)
        self._queue: asyncio.Queue[tuple[Service, BrokerBatch, Message]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self.in_flight = 0
        self._drained: asyncio.Event | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._drained = asyncio.Event()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"hpcsoa-emulator-worker-{i}")
            for i in range(self._cores)
        ]

    async def aclose(self) -> None:
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def submit(self, service: Service, batch: BrokerBatch, messages: list[Message]) -> None:
        """Dispatch accepted requests; synchronous, so a cancelled caller loses none."""
        if not messages:
            return
        if service.func is None and self.latency.is_zero:
            self._broker.complete_all(batch, self._echo_all(messages))
            return
        if self._queue is None:
            raise RuntimeError("dispatcher not started")
        put = self._queue.put_nowait
        for m in messages:
            put((service, batch, m))

    def _echo_all(self, messages: list[Message]) -> list[StoredResponse]:
        # The hot path of every zero-latency benchmark: one tuple per request, no calls.
        prefix = self._generic_prefix
        reply, request = GENERIC_REPLY_ACTION, GENERIC_REQUEST_ACTION
        if all(type(m[2]) is GenericRequest for m in messages):
            return [
                (reply, request, "", p.user_data, prefix + p.input, None, None)  # type: ignore[union-attr]
                for _, _, p in messages
            ]
        return [run_inline(self._machine, m) for m in messages]

    async def backpressure(self) -> None:
        """Wait while the queue is above its high-water mark (bounds memory under load)."""
        queue, drained = self._queue, self._drained
        while queue is not None and drained is not None and queue.qsize() > _QUEUE_HIGH_WATER:
            drained.clear()
            await drained.wait()

    async def _worker(self) -> None:
        queue, drained = self._queue, self._drained
        assert queue is not None
        assert drained is not None
        while True:
            service, batch, message = await queue.get()
            if queue.qsize() <= _QUEUE_HIGH_WATER // 2:
                drained.set()
            self.in_flight += 1
            try:
                if not batch.alive:
                    continue
                delay = self.latency.sample()
                if delay > 0:
                    await asyncio.sleep(delay)
                response = await self._run(service, message)
                self._broker.complete(batch, response)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in the emulator, not in the service: keep serving
                log.exception("service dispatch failed")
                self._broker.complete(batch, fault_response(message, "internal emulator error"))
            finally:
                self.in_flight -= 1

    async def _run(self, service: Service, message: Message) -> StoredResponse:
        try:
            input_, call = _unpack(message)
        except ProtocolError as exc:
            return fault_response(message, str(exc))
        if service.func is None:
            try:
                return _finish(message, call, _echo(self._machine, input_, call))
            except _ActionNotSupported as exc:
                return fault_response(message, str(exc))
        arg: Any = input_ if call is None else call
        try:
            if service.is_async:
                output = await service.func(arg)
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._cores, thread_name_prefix="hpcsoa-service"
                    )
                loop = asyncio.get_running_loop()
                output = await loop.run_in_executor(self._executor, service.func, arg)
                if inspect.isawaitable(output):
                    output = await output
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return fault_response(message, _describe(exc))
        return _finish(message, call, output)
