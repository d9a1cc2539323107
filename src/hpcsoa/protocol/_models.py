"""Frozen value types shared by the client and the emulator (spec §3–§5).

No I/O here. Every type is a frozen, slotted dataclass; nothing is subclassed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "END_OF_GET_RESPONSE_ACTION",
    "GENERIC_NAMESPACE",
    "GENERIC_REPLY_ACTION",
    "GENERIC_REQUEST_ACTION",
    "BrokerClientStatus",
    "EndOfResponses",
    "EndOfResponsesReason",
    "GenericRequest",
    "GenericResponse",
    "HttpRequest",
    "ServiceVersion",
    "SessionInfo",
    "SessionStartInfo",
    "SoaFault",
    "SoapRequest",
    "SoapResponse",
    "WebServiceFault",
]

GENERIC_NAMESPACE: Final = "http://hpc.microsoft.com/GenericService"
GENERIC_REQUEST_ACTION: Final = (
    "http://hpc.microsoft.com/GenericService/IGenericService/GenericOperation"
)
GENERIC_REPLY_ACTION: Final = (
    "http://hpc.microsoft.com/GenericService/IGenericService/GenericOperationResponse"
)
END_OF_GET_RESPONSE_ACTION: Final = "http://hpc.microsoft.com/EndOfGetResponse"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A plain HTTP request value produced by the route builders.

    ``path`` is the absolute path (``/WindowsHPC/...``) with path values already
    percent-encoded; ``query`` keeps the order in which parameters are sent.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    operation: str = ""

    @property
    def target(self) -> str:
        """``path?query`` as it appears on the request line."""
        if not self.query:
            return self.path
        from urllib.parse import quote

        qs = "&".join(f"{quote(k, safe='$-')}={quote(v, safe='')}" for k, v in self.query)
        return f"{self.path}?{qs}"


class BrokerClientStatus(enum.IntEnum):
    """Get Request Status result (spec §4.7)."""

    UNKNOWN = 0
    READY = 1
    PROCESSING = 2
    FINISHED = 3

    @property
    def wire_name(self) -> str:
        """The XML element text (``Ready``, ``Processing``...)."""
        return self.name.capitalize()

    @classmethod
    def from_wire_name(cls, name: str) -> BrokerClientStatus:
        return cls[name.strip().upper()]


class EndOfResponsesReason(enum.IntEnum):
    """Why a response stream ended (spec §4.6)."""

    SUCCESS = 0
    CLIENT_PURGED = 1
    CLIENT_TIMEOUT = 2

    @property
    def wire_name(self) -> str:
        return {0: "Success", 1: "ClientPurged", 2: "ClientTimeout"}[self.value]

    @classmethod
    def from_wire_name(cls, name: str) -> EndOfResponsesReason:
        table = {"success": 0, "clientpurged": 1, "clienttimeout": 2}
        return cls(table[name.strip().lower()])


@dataclass(frozen=True, slots=True)
class ServiceVersion:
    """``System.Version`` as DataContract writes it (``-1`` = component not set)."""

    major: int = 0
    minor: int = 0
    build: int = -1
    revision: int = -1

    def __str__(self) -> str:
        parts = [self.major, self.minor, self.build, self.revision]
        while len(parts) > 2 and parts[-1] < 0:
            parts.pop()
        return ".".join(str(p) for p in parts)


@dataclass(frozen=True, slots=True)
class SessionStartInfo:
    """``WebSessionStartInfo`` (spec §4.1). ``None`` members are omitted / ``i:nil``.

    The password is excluded from ``repr``.
    """

    service_name: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    max_message_size: int | None = None
    runtime: int = -1
    admin_job_for_host_in_diag: bool | None = None
    allocation_grow_load_ratio_threshold: int | None = None
    allocation_shrink_load_ratio_threshold: int | None = None
    can_preempt: bool | None = None
    client_connection_timeout: int | None = None
    client_idle_timeout: int | None = None
    diagnostic_broker_node: str | None = None
    environments: tuple[tuple[str, str], ...] | None = None
    extended_priority: int | None = None
    job_template: str | None = None
    max_units: int | None = None
    messages_throttle_start_threshold: int | None = None
    messages_throttle_stop_threshold: int | None = None
    min_units: int | None = None
    node_groups_str: str | None = None
    priority: int | None = None
    requested_nodes_str: str | None = None
    resource_unit_type: int | None = None
    service_job_name: str | None = None
    service_job_project: str | None = None
    service_operation_timeout: int | None = None
    service_version: ServiceVersion | None = None
    session_idle_timeout: int | None = None
    share_session: bool | None = None
    use_session_pool: bool | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """``WebSessionInfo`` (spec §4.1), members in wire order."""

    broker_node: str
    id: int
    is_durable: bool
    max_message_size: int
    service_operation_timeout: int
    service_version: ServiceVersion | None = None


@dataclass(frozen=True, slots=True)
class GenericRequest:
    """One generic-service request record (spec §3.6)."""

    input: str
    user_data: str = ""


@dataclass(frozen=True, slots=True)
class GenericResponse:
    """One generic-service response record (spec §3.6).

    ``action`` is normally ``GENERIC_REPLY_ACTION``; a failed request carries the fault
    action (e.g. ``.../session/RetryOperationError``) and ``output`` is the fault reason.
    """

    action: str
    output: str
    user_data: str = ""

    @property
    def is_fault(self) -> bool:
        return self.action != GENERIC_REPLY_ACTION


@dataclass(frozen=True, slots=True)
class EndOfResponses:
    """The end-of-responses marker: cumulative ``count`` since the last reset (spec §4.6)."""

    count: int
    reason: EndOfResponsesReason = EndOfResponsesReason.SUCCESS


@dataclass(frozen=True, slots=True)
class SoaFault:
    """A fault carried inside the response stream (``s:Fault``, SessionFault, RetryOperationError).

    ``kind`` is the fault action's last segment (``SessionFault``, ``RetryOperationError``,
    ``AuthenticationFailure``) or ``"Fault"`` for a plain ``s:Fault``.
    """

    kind: str
    code: str = ""
    reason: str = ""
    numeric_code: int | None = None
    detail: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """One typed request envelope (spec §3.5).

    ``body`` is the serialized XML of the ``s:Body`` content (e.g. ``<Echo xmlns=...>...``).
    """

    action: str
    body: str
    message_id: str
    user_data: str | None = None
    client_id: str | None = None
    client_instance_id: int | None = None


@dataclass(frozen=True, slots=True)
class SoapResponse:
    """One response envelope from Get Responses (spec §3.5, §4.6).

    ``body`` is the serialized XML of the ``s:Body`` content; ``result`` is the text of the
    ``{Operation}Result`` element when the body is a WCF-wrapped reply, else ``None``.
    ``fault`` is set (and ``result`` is ``None``) when the envelope is a fault.
    """

    action: str
    relates_to: str | None = None
    request_action: str | None = None
    user_data: str | None = None
    callback_id: str | None = None
    body: str = ""
    result: str | None = None
    fault: SoaFault | None = None


@dataclass(frozen=True, slots=True)
class WebServiceFault:
    """``HpcWebServiceFault`` (spec §2.7). ``values`` is ``None`` when nil."""

    code: int
    message: str
    values: tuple[tuple[str, str], ...] | None = None

    def formatted_message(self) -> str:
        """``message`` with .NET ``{0}``-style placeholders filled from ``values`` in order."""
        if not self.values:
            return self.message
        args = [v for _, v in self.values]
        out: list[str] = []
        i = 0
        text = self.message
        while i < len(text):
            ch = text[i]
            if ch == "{" and text.startswith("{{", i):
                out.append("{")
                i += 2
                continue
            if ch == "}" and text.startswith("}}", i):
                out.append("}")
                i += 2
                continue
            if ch == "{":
                end = text.find("}", i)
                token = text[i + 1 : end] if end != -1 else ""
                index = token.split(",", 1)[0].split(":", 1)[0]
                if end != -1 and index.isdigit() and int(index) < len(args):
                    out.append(args[int(index)])
                    i = end + 1
                    continue
            out.append(ch)
            i += 1
        return "".join(out)
