"""Operations of the classic HPC Pack REST API: method, path, api-version rules (spec §1.1, §2).

Client side: :func:`build_request` turns an operation plus its path values, query and body
into an :class:`HttpRequest`, in either URI form (pre-2016 with a ``{cluster}`` segment, or
the HPC Pack 2016 form without it).

Emulator side: :func:`match_route` maps a request path (case-insensitive literals, §2.2) back to
the operation and its path values, applying the routing rule of §2.1.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date as _date
from typing import Final
from urllib.parse import quote, unquote

from .._exceptions import EncodeError
from ._models import HttpRequest

__all__ = [
    "DEFAULT_API_VERSION",
    "ROOT",
    "ApiVersion",
    "Operation",
    "Route",
    "RouteMatch",
    "UriForm",
    "build_request",
    "match_route",
    "parse_bool",
    "query_lookup",
    "resolve_api_version",
    "route_for",
]

ROOT: Final = "WindowsHPC"
DEFAULT_API_VERSION: Final = "2011-11-01"


class UriForm(enum.Enum):
    """Which URI shape a server speaks (spec §2.1)."""

    PRE_2016 = "pre-2016"  # /WindowsHPC/{cluster}/...
    HPC2016 = "2016"  # /WindowsHPC/...


class Operation(enum.StrEnum):
    """Every operation of the classic API, named after its spec page (snake_case)."""

    # SOA (§4)
    CREATE_SESSION = "create_session"
    ATTACH_SESSION = "attach_session"
    CLOSE_SESSION = "close_session"
    SEND_REQUESTS = "send_requests"
    COMMIT = "commit"
    GET_RESPONSES = "get_responses"
    GET_BATCH_STATUS = "get_batch_status"
    PURGE = "purge"
    GET_SERVICE_VERSIONS = "get_service_versions"
    # cluster / nodes / templates (§6)
    GET_CLUSTERS = "get_clusters"
    GET_VERSION = "get_version"
    GET_ACTIVE_HEAD_NODE = "get_active_head_node"
    GET_NODE = "get_node"
    LIST_NODES = "list_nodes"
    LIST_NODE_GROUPS = "list_node_groups"
    GET_NODE_GROUP_MEMBERS = "get_node_group_members"
    LIST_JOB_TEMPLATES = "list_job_templates"
    # jobs (§7)
    CREATE_JOB = "create_job"
    CREATE_JOB_FROM_XML = "create_job_from_xml"
    LIST_JOBS = "list_jobs"
    GET_JOB = "get_job"
    SET_JOB_PROPERTIES = "set_job_properties"
    SUBMIT_JOB = "submit_job"
    CANCEL_JOB = "cancel_job"
    REQUEUE_JOB = "requeue_job"
    GET_JOB_CUSTOM_PROPERTIES = "get_job_custom_properties"
    SET_JOB_CUSTOM_PROPERTIES = "set_job_custom_properties"
    GET_JOB_ENV = "get_job_env"
    SET_JOB_ENV = "set_job_env"
    # tasks and subtasks (§8)
    ADD_TASK = "add_task"
    LIST_TASKS = "list_tasks"
    GET_TASK = "get_task"
    SET_TASK_PROPERTIES = "set_task_properties"
    CANCEL_TASK = "cancel_task"
    REQUEUE_TASK = "requeue_task"
    GET_TASK_CUSTOM_PROPERTIES = "get_task_custom_properties"
    SET_TASK_CUSTOM_PROPERTIES = "set_task_custom_properties"
    GET_TASK_ENV = "get_task_env"
    SET_TASK_ENV = "set_task_env"
    GET_SUBTASK = "get_subtask"
    SET_SUBTASK_PROPERTIES = "set_subtask_properties"
    CANCEL_SUBTASK = "cancel_subtask"
    REQUEUE_SUBTASK = "requeue_subtask"


class Family(enum.Enum):
    """Groups that share error-format and api-version rules."""

    SOA = "soa"
    CLUSTER = "cluster"  # cluster / node ops: HpcWebServiceFault always
    SCHEDULER = "scheduler"  # jobs/tasks/templates/version: error format depends on api-version


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the operation table (spec §1.1).

    ``segments`` are the path segments after ``/WindowsHPC[/{cluster}]``; ``{name}`` marks a
    path value. ``min_version`` is the lowest accepted ``api-version`` date, if any.
    """

    operation: Operation
    method: str
    segments: tuple[str, ...]
    family: Family
    api_version_required: bool
    min_version: str | None = None
    cluster_segment: bool = True  # False: Get Clusters has no cluster segment in any form

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(s[1:-1] for s in self.segments if s.startswith("{"))


def _r(
    op: Operation,
    method: str,
    path: str,
    family: Family,
    *,
    av: bool,
    min_version: str | None = None,
    cluster_segment: bool = True,
) -> Route:
    return Route(op, method, tuple(path.split("/")), family, av, min_version, cluster_segment)


_S, _C, _J = Family.SOA, Family.CLUSTER, Family.SCHEDULER
_JOB = "Job/{job_id}"
_TASK = _JOB + "/Task/{task_id}"
_SUB = _TASK + "/SubTask/{subtask_id}"
_BATCH = "Session/{session_id}/batch/{batch}"

ROUTES: Final[tuple[Route, ...]] = (
    _r(Operation.CREATE_SESSION, "POST", "Sessions/Create", _S, av=True),
    _r(Operation.ATTACH_SESSION, "GET", "Session/{session_id}/Attach", _S, av=True),
    _r(Operation.CLOSE_SESSION, "POST", "Session/{session_id}/Close", _S, av=True),
    _r(Operation.SEND_REQUESTS, "POST", _BATCH, _S, av=True),
    _r(Operation.COMMIT, "POST", _BATCH + "/Commit", _S, av=True),
    _r(Operation.GET_RESPONSES, "POST", _BATCH + "/Response", _S, av=True),
    _r(Operation.GET_BATCH_STATUS, "GET", _BATCH + "/Status", _S, av=True),
    _r(Operation.PURGE, "POST", _BATCH + "/Purge", _S, av=True),
    _r(Operation.GET_SERVICE_VERSIONS, "GET", "SoaService/{service}/Versions", _S, av=True),
    _r(Operation.GET_CLUSTERS, "GET", "Clusters", _C, av=True, cluster_segment=False),
    _r(Operation.GET_VERSION, "GET", "Version", _J, av=False),
    _r(
        Operation.GET_ACTIVE_HEAD_NODE,
        "GET",
        "ActiveHeadnode",
        _C,
        av=True,
        min_version="2012-03-31",
    ),
    _r(Operation.GET_NODE, "GET", "Node/{node}", _C, av=True),
    _r(Operation.LIST_NODES, "GET", "Nodes", _C, av=True),
    _r(Operation.LIST_NODE_GROUPS, "GET", "NodeGroups", _C, av=True),
    _r(Operation.GET_NODE_GROUP_MEMBERS, "GET", "NodeGroup/{group}", _C, av=True),
    _r(Operation.LIST_JOB_TEMPLATES, "GET", "JobTemplates", _J, av=False),
    _r(Operation.CREATE_JOB, "POST", "Jobs", _J, av=False),
    _r(Operation.CREATE_JOB_FROM_XML, "POST", "Jobs/JobFile", _J, av=False),
    _r(Operation.LIST_JOBS, "GET", "Jobs", _J, av=False),
    _r(Operation.GET_JOB, "GET", _JOB, _J, av=False),
    _r(Operation.SET_JOB_PROPERTIES, "PUT", _JOB, _J, av=False),
    _r(Operation.SUBMIT_JOB, "POST", _JOB + "/Submit", _J, av=False),
    _r(Operation.CANCEL_JOB, "POST", _JOB + "/Cancel", _J, av=False),
    _r(Operation.REQUEUE_JOB, "POST", _JOB + "/Requeue", _J, av=False),
    _r(Operation.GET_JOB_CUSTOM_PROPERTIES, "GET", _JOB + "/CustomProperties", _J, av=False),
    _r(Operation.SET_JOB_CUSTOM_PROPERTIES, "POST", _JOB + "/CustomProperties", _J, av=False),
    _r(Operation.GET_JOB_ENV, "GET", _JOB + "/EnvVariables", _J, av=False),
    _r(Operation.SET_JOB_ENV, "POST", _JOB + "/EnvVariables", _J, av=False),
    _r(Operation.ADD_TASK, "POST", _JOB + "/Tasks", _J, av=False),
    _r(Operation.LIST_TASKS, "GET", _JOB + "/Tasks", _J, av=False),
    _r(Operation.GET_TASK, "GET", _TASK, _J, av=False),
    _r(Operation.SET_TASK_PROPERTIES, "PUT", _TASK, _J, av=False),
    _r(Operation.CANCEL_TASK, "POST", _TASK + "/Cancel", _J, av=False),
    _r(Operation.REQUEUE_TASK, "POST", _TASK + "/Requeue", _J, av=False),
    _r(Operation.GET_TASK_CUSTOM_PROPERTIES, "GET", _TASK + "/CustomProperties", _J, av=False),
    _r(Operation.SET_TASK_CUSTOM_PROPERTIES, "POST", _TASK + "/CustomProperties", _J, av=False),
    _r(Operation.GET_TASK_ENV, "GET", _TASK + "/EnvVariables", _J, av=False),
    _r(Operation.SET_TASK_ENV, "POST", _TASK + "/EnvVariables", _J, av=False),
    _r(Operation.GET_SUBTASK, "GET", _SUB, _J, av=False),
    _r(Operation.SET_SUBTASK_PROPERTIES, "PUT", _SUB, _J, av=False),
    _r(Operation.CANCEL_SUBTASK, "POST", _SUB + "/Cancel", _J, av=False),
    _r(Operation.REQUEUE_SUBTASK, "POST", _SUB + "/Requeue", _J, av=False),
)

_BY_OPERATION: Final[dict[Operation, Route]] = {r.operation: r for r in ROUTES}

# §2.1 [PROPOSAL]: a first segment equal to one of these literals means the 2016 URI form.
_FORM_2016_LITERALS: Final = frozenset(
    s.lower()
    for s in (
        "Clusters",
        "Jobs",
        "Job",
        "Nodes",
        "Node",
        "NodeGroups",
        "NodeGroup",
        "JobTemplates",
        "Version",
        "ActiveHeadnode",
        "Sessions",
        "Session",
        "SoaService",
    )
)


def route_for(operation: Operation) -> Route:
    """The table row of ``operation``."""
    return _BY_OPERATION[operation]


# --- api-version (§2.3) -----------------------------------------------------------------------

# re.ASCII: `\d` must not accept non-ASCII digits such as "２".
_VERSION_RE: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})((?:\.\d+)*)$", re.ASCII)


@dataclass(frozen=True, slots=True)
class ApiVersion:
    """An ``api-version`` value: a ``YYYY-MM-DD`` date plus an optional dotted suffix.

    Minimum-version checks (:meth:`at_least`) compare the date part only ([PROPOSAL] §2.3).
    The ordering operators compare the date, then the suffix numerically
    (``2012-11-01`` < ``2012-11-01.4.0`` < ``2012-11-01.10``), so sorting is total.
    """

    date: str
    suffix: str = ""

    @classmethod
    def parse(cls, value: str) -> ApiVersion:
        """Parse ``value``; raise ``ValueError`` when it is not ``YYYY-MM-DD[.n...]``."""
        m = _VERSION_RE.match(value.strip())
        if m is None:
            raise ValueError(f"invalid api-version {value!r}: expected YYYY-MM-DD[.n[.n]]")
        y, mo, d, suffix = m.groups()
        try:
            _date(int(y), int(mo), int(d))
        except ValueError:
            raise ValueError(f"invalid api-version {value!r}: not a date") from None
        return cls(f"{y}-{mo}-{d}", suffix.lstrip("."))

    def at_least(self, date: str) -> bool:
        """Whether the date part is on or after ``date`` (``YYYY-MM-DD``)."""
        return self.date >= date

    @property
    def _key(self) -> tuple[str, tuple[int, ...]]:
        return self.date, tuple(int(p) for p in self.suffix.split(".") if p)

    def __lt__(self, other: ApiVersion) -> bool:
        return self._key < other._key

    def __le__(self, other: ApiVersion) -> bool:
        return self._key <= other._key

    def __gt__(self, other: ApiVersion) -> bool:
        return self._key > other._key

    def __ge__(self, other: ApiVersion) -> bool:
        return self._key >= other._key

    def __str__(self) -> str:
        return f"{self.date}.{self.suffix}" if self.suffix else self.date


def resolve_api_version(headers: Mapping[str, str], query: Iterable[tuple[str, str]]) -> str | None:
    """The effective ``api-version``: the header wins over the query parameter (§2.3).

    Header and query names are matched case-insensitively. Returns ``None`` when absent.
    """
    for k, v in headers.items():
        if k.lower() == "api-version":
            return v
    for k, v in query:
        if k.lower() == "api-version":
            return v
    return None


# --- client side: building requests ---------------------------------------------------------


def _quote_segment(value: str) -> str:
    # "." and ".." would be collapsed by URL normalisation (yarl, proxies): encode them.
    if value in (".", ".."):
        return value.replace(".", "%2E")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
        raise EncodeError(f"path value {value!r} is not encodable as UTF-8") from None


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def build_request(
    operation: Operation,
    *,
    cluster: str | None,
    path_params: Mapping[str, str | int] | None = None,
    query: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    accept: str | None = None,
    api_version: str | None = DEFAULT_API_VERSION,
    api_version_in_query: bool = False,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> HttpRequest:
    """Build the request for ``operation``.

    Args:
        cluster: the cluster name for the pre-2016 URI form; ``None`` for the 2016 form.
        path_params: values for the ``{name}`` segments of the route.
        query: query parameters in the order they are to be sent.
        api_version: sent as the ``api-version`` header (or query parameter when
            ``api_version_in_query``); ``None`` omits it, which only operations that do not
            require it allow.

    Raises:
        EncodeError: a path value is missing, a path or query value has no UTF-8 form (lone
            surrogate), or a required ``api-version`` is absent.
    """
    route = _BY_OPERATION[operation]
    params = dict(path_params or {})
    segments = [ROOT]
    if cluster is not None and route.cluster_segment:
        segments.append(_quote_segment(cluster))
    for seg in route.segments:
        if seg.startswith("{"):
            name = seg[1:-1]
            if name not in params:
                raise EncodeError(f"{operation.value}: missing path value {name!r}")
            segments.append(_quote_segment(str(params.pop(name))))
        else:
            segments.append(seg)
    if params:
        raise EncodeError(f"{operation.value}: unexpected path values {sorted(params)}")
    if api_version is None and route.api_version_required:
        raise EncodeError(f"{operation.value} requires an api-version")
    headers: list[tuple[str, str]] = []
    query_list = list(query)
    for name, value in query_list:
        if not (_utf8_ok(name) and _utf8_ok(value)):
            raise EncodeError(f"{operation.value}: query parameter {name!r} is not encodable")
    if api_version is not None:
        if api_version_in_query:
            query_list.append(("api-version", api_version))
        else:
            headers.append(("api-version", api_version))
    if accept is not None:
        headers.append(("Accept", accept))
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers.extend(extra_headers)
    return HttpRequest(
        method=route.method,
        path="/" + "/".join(segments),
        query=tuple(query_list),
        headers=tuple(headers),
        body=body,
        operation=operation.value,
    )


# --- emulator side: matching requests ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Result of :func:`match_route`.

    ``route`` is ``None`` when the path names no operation; then ``allowed_methods`` lists
    the methods that the path does support (empty: unknown path → 404; non-empty → 405).
    ``cluster`` is the cluster segment given (pre-2016 form) or ``None``.
    """

    route: Route | None
    params: Mapping[str, str]
    cluster: str | None
    form: UriForm
    allowed_methods: tuple[str, ...] = ()


def _match_segments(route: Route, parts: list[str]) -> dict[str, str] | None:
    if len(route.segments) != len(parts):
        return None
    values: dict[str, str] = {}
    for tmpl, part in zip(route.segments, parts, strict=True):
        if tmpl.startswith("{"):
            if part == "":
                return None
            values[tmpl[1:-1]] = unquote(part)
        elif tmpl.lower() != part.lower():
            return None
    return values


def match_route(method: str, path: str) -> RouteMatch | None:
    """Map ``method`` + raw ``path`` to an operation (spec §2.1, §2.2).

    Path literals are compared case-insensitively; path values are percent-decoded and keep
    their case. Returns ``None`` when the path is not under ``/WindowsHPC/`` at all.
    The caller checks ``cluster`` against its configured name (case-insensitively).
    """
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1].lower() != ROOT.lower():
        return None
    rest = parts[2:]
    if rest and rest[-1] == "":
        rest = rest[:-1]  # tolerate a trailing slash
    if not rest:
        return None
    cluster: str | None
    if rest[0].lower() in _FORM_2016_LITERALS:
        form, cluster = UriForm.HPC2016, None
    else:
        form, cluster, rest = UriForm.PRE_2016, unquote(rest[0]), rest[1:]
    allowed: list[str] = []
    for route in ROUTES:
        if cluster is not None and not route.cluster_segment:
            continue
        values = _match_segments(route, rest)
        if values is None:
            continue
        if route.method == method.upper():
            return RouteMatch(route, values, cluster, form)
        allowed.append(route.method)
    return RouteMatch(None, {}, cluster, form, tuple(sorted(set(allowed))))


def query_lookup(query: Iterable[tuple[str, str]], name: str) -> str | None:
    """First value of query parameter ``name``, matched case-insensitively (§2.2)."""
    lname = name.lower()
    for k, v in query:
        if k.lower() == lname:
            return v
    return None


def parse_bool(value: str) -> bool:
    """``True``/``true``/``False``/``false`` (any case) → bool; anything else → ``ValueError``."""
    v = value.strip().lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise ValueError(f"not a boolean: {value!r}")
