"""Frozen configuration of the emulator (``EmulatorConfig``).

Config never touches the event loop, the network or the file system: ``EmulatorServer``
turns it into live objects when it starts. ``hpcsoa serve`` builds one from its flags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from ..protocol import ServiceVersion

if TYPE_CHECKING:
    from ._faults import FaultPlan

__all__ = ["ECHO_SERVICE", "EmulatorConfig", "parse_latency", "parse_service_version"]

#: The built-in service (spec §3.4).
ECHO_SERVICE: Final = "CcpEchoSvc"
_VERSION_RE: Final = re.compile(r"^(\d{1,9})\.(\d{1,9})(?:\.(\d{1,9})(?:\.(\d{1,9}))?)?$")

_CLUSTER_RE: Final = re.compile(r"[A-Za-z]{1,100}")
_LATENCY_RE: Final = re.compile(
    r"^(?:(?P<fixed>\d+(?:\.\d*)?)|(?P<kind>uniform|exp|normal):(?P<args>[^:]+))$"
)

MiB: Final = 1024 * 1024


def parse_latency(spec: float | str) -> tuple[str, tuple[float, ...]]:
    """Parse a latency spec: a number of ms, ``uniform:LO,HI``, ``exp:MEAN`` or ``normal:MU,SIGMA``.

    Returns ``(kind, args)`` with ``kind`` one of ``fixed``, ``uniform``, ``exp``, ``normal``.

    Raises:
        ValueError: the spec is malformed or has negative values.
    """
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        if spec < 0:
            raise ValueError(f"latency_ms must be >= 0, got {spec!r}")
        return "fixed", (float(spec),)
    if not isinstance(spec, str):
        raise ValueError(f"latency_ms must be a number or a string, got {spec!r}")
    m = _LATENCY_RE.match(spec.strip())
    if m is None:
        raise ValueError(
            f"invalid latency {spec!r}: expected MS, 'uniform:LO,HI', 'exp:MEAN' "
            "or 'normal:MU,SIGMA'"
        )
    if m.group("fixed") is not None:
        return "fixed", (float(m.group("fixed")),)
    kind = m.group("kind")
    try:
        args = tuple(float(a) for a in m.group("args").split(","))
    except ValueError:
        raise ValueError(f"invalid latency {spec!r}: arguments must be numbers") from None
    want = {"uniform": 2, "exp": 1, "normal": 2}[kind]
    if len(args) != want or any(a < 0 for a in args):
        raise ValueError(f"invalid latency {spec!r}: {kind} takes {want} non-negative number(s)")
    if kind == "uniform" and args[0] > args[1]:
        raise ValueError(f"invalid latency {spec!r}: LO > HI")
    return kind, args


def parse_service_version(text: str) -> ServiceVersion:
    """Parse ``MAJOR.MINOR[.BUILD[.REVISION]]`` as ``System.Version`` does (``"1.0"``).

    Raises:
        ValueError: not of that form.
    """
    m = _VERSION_RE.match(text.strip())
    if m is None:
        raise ValueError(f"invalid service version {text!r}: expected MAJOR.MINOR[.BUILD[.REV]]")
    major, minor, build, revision = (int(g) if g is not None else -1 for g in m.groups())
    return ServiceVersion(major, minor, build, revision)


def _check_service_version(name: str, v: object) -> ServiceVersion:
    if not isinstance(v, ServiceVersion):
        raise ValueError(f"service_versions[{name!r}]: expected ServiceVersion, got {v!r}")
    parts = (v.major, v.minor, v.build, v.revision)
    if (
        v.major < 0
        or v.minor < 0
        or v.build < -1
        or v.revision < -1
        or (v.build < 0 and v.revision >= 0)
        or any(p > 2**31 - 1 for p in parts)
    ):
        raise ValueError(f"service_versions[{name!r}]: invalid version {parts}")
    # 0.0 is what an unversioned registration reports; the launcher rejects it as a version.
    if v.major == 0 and v.minor == 0:
        raise ValueError(
            f"service_versions[{name!r}]: 0.0 is reserved for unversioned services "
            "(give no versions instead)"
        )
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance.

    Args:
        host, port: where to listen; ``port=0`` picks a free port (read it back from
            ``EmulatorServer.base_url``).
        cluster: the cluster name (letters only, spec §2.1: the C sample accepts nothing else).
        users: user → password for Basic authentication. Empty: one user is generated and
            exposed as ``EmulatorServer.username`` / ``.password`` (and printed by ``serve``).
        auth: ``"basic"`` (401 challenge on missing/wrong credentials) or ``"none"`` (any
            request is accepted; the user is taken from a Basic header when present).
        tls, cert_file, key_file: serve HTTPS; without files a self-signed certificate is made.
        services: extra SOA services, name → callable (sync or async). See ``_services``.
        service_versions: service name → its registered versions (Get Service Versions,
            spec §4.9; names matched case-insensitively, each must be ``CcpEchoSvc`` or in
            ``services``). A service without versions is unversioned: it lists ``0.0``, binds
            sessions to no version (``ServiceVersion`` null) and accepts any requested one. A
            versioned service binds to the requested version (400 ``ServiceVersion_NotFound``
            when it has no such version) or, when none is requested, to its newest.
        cores: how many service calls run concurrently.
        latency_ms: simulated service time: a number or ``uniform:LO,HI`` / ``exp:MEAN`` /
            ``normal:MU,SIGMA`` (ms).
        machine_name: the name services report (``CcpEchoSvc`` replies ``"CN01:" + input``).
        client_max_size: request body limit in bytes (aiohttp's default is 1 MiB).
        default_max_message_size: ``MaxMessageSize`` when Create Session does not give one.
        service_operation_timeout_ms: ``ServiceOperationTimeout`` when not given.
        session_idle_timeout_ms, client_idle_timeout_ms: defaults for sessions that do not
            set ``SessionIdleTimeout`` / ``ClientIdleTimeout``; ``0`` disables.
        strict_order: drop out-of-order ``WebSessionStartInfo`` XML members like the real
            ``DataContractSerializer`` (spec §2.6).
        strict_length: answer a POST/PUT that has neither ``Content-Length`` nor
            ``Transfer-Encoding`` with ``411 Length Required``, as HTTP.sys does (spec §2.5).
            Off by default: both forms are accepted.
        reject_durable: refuse durable sessions with ``Azure_NotSupportDurableSession``.
        fault_plan: the initial fault plan (can be replaced at run time).
        seed: seeds latency draws and the fault plan's probabilities.
        version: what Get Version returns.
        nodes, cores_per_node, task_runner, task_runtime_ms: scheduler knobs.

    Raises:
        ValueError: a value is out of range (checked at construction).
    """

    host: str = "127.0.0.1"
    port: int = 0
    cluster: str = "HPCLAB"
    users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    auth: Literal["basic", "none"] = "basic"
    tls: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    services: Mapping[str, Callable[..., Any]] = field(default_factory=lambda: MappingProxyType({}))
    service_versions: Mapping[str, tuple[ServiceVersion, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    cores: int = 8
    latency_ms: float | str = 0.0
    machine_name: str = "CN01"
    client_max_size: int = 256 * MiB
    default_max_message_size: int = 65536
    service_operation_timeout_ms: int = 86_400_000
    session_idle_timeout_ms: int = 300_000
    client_idle_timeout_ms: int = 300_000
    strict_order: bool = False
    strict_length: bool = False
    reject_durable: bool = False
    fault_plan: FaultPlan | None = None
    seed: int = 0
    version: str = "5.3.6420.0"
    # scheduler knobs (used by the scheduler half)
    nodes: int = 4
    cores_per_node: int = 8
    task_runner: str = "simulate"
    task_runtime_ms: int = 200

    def __post_init__(self) -> None:
        if not _CLUSTER_RE.fullmatch(self.cluster):
            raise ValueError(f"cluster must be 1-100 ASCII letters, got {self.cluster!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.auth not in ("basic", "none"):
            raise ValueError(f"auth must be 'basic' or 'none', got {self.auth!r}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.cores < 1:
            raise ValueError(f"cores must be >= 1, got {self.cores}")
        parse_latency(self.latency_ms)
        if self.client_max_size < 1024:
            raise ValueError(f"client_max_size too small: {self.client_max_size}")
        if self.default_max_message_size < 1:
            raise ValueError("default_max_message_size must be >= 1")
        for name in ("session_idle_timeout_ms", "client_idle_timeout_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 disables)")
        if self.nodes < 1 or self.cores_per_node < 1:
            raise ValueError("nodes and cores_per_node must be >= 1")
        if self.task_runner not in ("simulate", "local"):
            raise ValueError(f"task_runner must be 'simulate' or 'local', got {self.task_runner!r}")
        if self.task_runtime_ms < 0:
            raise ValueError("task_runtime_ms must be >= 0")
        for user in self.users:
            if not user or ":" in user:
                raise ValueError(f"invalid user name {user!r} (empty or contains ':')")
        known = {ECHO_SERVICE.casefold()} | {n.casefold() for n in self.services}
        versions: dict[str, tuple[ServiceVersion, ...]] = {}
        for name, given_versions in self.service_versions.items():
            given: object = given_versions  # checked at run time: callers may pass anything
            if name.casefold() not in known:
                raise ValueError(
                    f"service_versions names {name!r}, which is neither {ECHO_SERVICE} nor "
                    "one of services"
                )
            if isinstance(given, ServiceVersion | str) or not isinstance(given, Iterable):
                raise ValueError(f"service_versions[{name!r}] must be a tuple of ServiceVersion")
            checked = {_check_service_version(name, v) for v in given}
            # Newest first, as the session launcher lists them (System.Version order: an
            # absent component, -1, sorts before 0).
            versions[name] = tuple(
                sorted(checked, key=lambda v: (v.major, v.minor, v.build, v.revision), reverse=True)
            )
        # Freeze the mappings so a caller cannot change a running server's config.
        object.__setattr__(self, "users", MappingProxyType(dict(self.users)))
        object.__setattr__(self, "services", MappingProxyType(dict(self.services)))
        object.__setattr__(self, "service_versions", MappingProxyType(versions))

    def __repr__(self) -> str:  # passwords stay out of reprs and logs
        return (
            f"EmulatorConfig(host={self.host!r}, port={self.port}, cluster={self.cluster!r}, "
            f"users={sorted(self.users)!r}, auth={self.auth!r}, tls={self.tls}, "
            f"cores={self.cores}, latency_ms={self.latency_ms!r})"
        )
