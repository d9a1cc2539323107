"""A faithful local emulator of the Microsoft HPC Pack REST web service (aiohttp.web).

Serves the SOA broker operations (spec §4) and the cluster operations in both URI forms on
one authority, with Basic authentication, optional TLS, built-in ``CcpEchoSvc``, user
services and a deterministic fault plan. The scheduler half (jobs, tasks, nodes) plugs in via
``EmulatorState.extra_handlers``.

Contract: imports ``hpcsoa.protocol`` only (never the client's transport, soa, scheduler or
cli packages), so a codec bug shared with the client is the only way both could agree wrongly;
golden samples from the spec guard against that.

Use ``async with EmulatorServer() as server: server.base_url`` in-process, or
``hpcsoa serve`` / ``python -m hpcsoa.emulator`` from a shell.
"""

from ._broker import BatchState as BatchState
from ._broker import Broker as Broker
from ._cli import serve_main as serve_main
from ._config import EmulatorConfig as EmulatorConfig
from ._context import FaultError as FaultError
from ._context import RequestContext as RequestContext
from ._faults import FaultPlan as FaultPlan
from ._faults import FaultRule as FaultRule
from ._server import EmulatorServer as EmulatorServer
from ._services import TypedCall as TypedCall
from ._state import EmulatorState as EmulatorState

__all__ = [
    "BatchState",
    "Broker",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "FaultError",
    "FaultPlan",
    "FaultRule",
    "RequestContext",
    "TypedCall",
    "serve_main",
]
