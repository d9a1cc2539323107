"""``EmulatorState``: everything one running emulator shares between requests.

The SOA broker, the service registry and dispatcher, the fault plan, the users, and the
extension points the scheduler half plugs into (``scheduler``, ``extra_handlers``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._broker import Broker, BrokerCounters
from ._faults import FaultPlan, FaultPlanRunner
from ._sched_handlers import install_scheduler
from ._services import Dispatcher, ServiceRegistry

if TYPE_CHECKING:
    from ..protocol import Operation
    from ._config import EmulatorConfig
    from ._context import Handler

__all__ = ["EmulatorState"]


class EmulatorState:
    """Shared state of one emulator instance (also what tests assert on).

    Attributes:
        config: the frozen configuration.
        users: user → password actually in force (a generated user when none configured).
        broker: the SOA broker (sessions, batches, counters).
        services: the service registry (``CcpEchoSvc`` plus configured services).
        dispatcher: runs service calls; started and stopped by the server.
        faults: the live fault plan runner (``faults.plan`` is the current plan or ``None``).
        scheduler: the scheduler half's state, ``None`` until it is wired in.
        extra_handlers: operation → handler, merged over the SOA handlers; the scheduler half
            registers its job/task/node handlers here.
        authority: ``host:port`` the server is bound to (set when it starts).
        closers: coroutine functions ``EmulatorServer.aclose()`` awaits (last added first),
            e.g. the scheduler's task runner shutdown.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        users: dict[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.users = users
        self.clock = clock
        self.broker = Broker(clock=clock)
        self.services = ServiceRegistry(config)
        self.dispatcher = Dispatcher(self.broker, config)
        self.faults = FaultPlanRunner(config.fault_plan)
        self.scheduler: Any = None
        self.extra_handlers: dict[Operation, Handler] = {}
        self.authority = f"{config.host}:{config.port}"
        self.closers: list[Callable[[], Awaitable[None]]] = []
        # The scheduler half: session ids from the job-id sequence, job/task/node handlers.
        install_scheduler(self)

    @property
    def counters(self) -> BrokerCounters:
        return self.broker.counters

    @property
    def sessions_created(self) -> int:
        return self.broker.counters.sessions_created

    @property
    def requests_received(self) -> int:
        return self.broker.counters.requests_received

    @property
    def duplicates_dropped(self) -> int:
        return self.broker.counters.duplicates_dropped

    def set_fault_plan(self, plan: FaultPlan | None) -> None:
        """Replace the fault plan (``None`` removes it); counters of the old plan are reset."""
        self.faults = FaultPlanRunner(plan)

    def __repr__(self) -> str:
        return f"<EmulatorState {self.broker!r} scheduler={'on' if self.scheduler else 'off'}>"
