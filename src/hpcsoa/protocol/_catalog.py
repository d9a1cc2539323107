"""Property and enum catalogs of the scheduler API (spec Appendix A) and their value codec.

Every scheduler property travels as text (§2.6). The catalogs say which properties exist for
jobs (§A.1), tasks and subtasks (§A.2) and nodes (§A.3), what type each holds and where it may
be used (get / create / submit / set), so that both sides can turn the text into Python values
and back:

* :func:`parse_value` is strict (``ValueError`` on a bad value): the emulator validates input
  with it and the client uses it to read catalog properties;
* :func:`render_value` renders a typed value the way .NET does (``True``/``False``, enum names,
  ``M/d/yyyy h:mm:ss tt`` dates, comma-separated lists);
* :func:`to_wire` turns what a Python caller passes (enum members, ints, bools, datetimes,
  lists or strings) into the wire text, validated against the catalog.

Property names are matched case-insensitively, and ``snake_case`` spellings are accepted too
(``min_cores`` → ``MinCores``): underscores are ignored when looking a name up (G31).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ._dates import format_net_bool, format_net_datetime, parse_net_bool, parse_net_datetime

__all__ = [
    "JOB_LIST_DEFAULT_PROPERTIES",
    "JOB_PROPERTIES",
    "NODE_PROPERTIES",
    "TASK_LIST_DEFAULT_PROPERTIES",
    "TASK_PROPERTIES",
    "Catalog",
    "JobPriority",
    "JobState",
    "JobType",
    "NodeState",
    "PropertySpec",
    "TaskState",
    "TaskType",
    "UnitType",
    "ValueType",
    "WireEnum",
    "parse_value",
    "render_value",
    "select",
    "to_wire",
]


# --- enumerations (§A.4) ----------------------------------------------------------------------

# Member names are UPPER_SNAKE; the wire name is their CamelCase form unless listed here.
_WIRE_OVERRIDES: Final = {"GPU": "GPU"}


def _camel(member: str) -> str:
    return _WIRE_OVERRIDES.get(member) or "".join(p.capitalize() for p in member.split("_"))


class WireEnum(enum.IntEnum):
    """An enum whose wire form is a .NET enum name (``Running``) or its number (``32``).

    Values are rendered by name (G31) and parsed from a name (any case) or a number.
    """

    @property
    def wire_name(self) -> str:
        """The .NET name, e.g. ``ParametricSweep``."""
        return _camel(self.name)

    @classmethod
    def parse(cls, text: str) -> WireEnum:
        """Parse a name (case-insensitive) or a decimal number.

        Raises:
            ValueError: neither a member name nor a member number.
        """
        t = text.strip()
        if re.fullmatch(r"[+-]?\d+", t, re.ASCII):
            try:
                return cls(int(t))
            except ValueError:
                pass
        else:
            key = t.replace("_", "").lower()
            for member in cls:
                if member.wire_name.lower() == key:
                    return member
        names = ", ".join(m.wire_name for m in cls)
        raise ValueError(f"{text!r} is not a {cls.__name__} (expected one of {names})")

    def __str__(self) -> str:
        return self.wire_name


class JobState(WireEnum):
    """Job state (flag values of the managed API; ``All`` is not a state)."""

    CONFIGURING = 0x1
    SUBMITTED = 0x2
    VALIDATING = 0x4
    EXTERNAL_VALIDATION = 0x8
    QUEUED = 0x10
    RUNNING = 0x20
    FINISHING = 0x40
    FINISHED = 0x80
    FAILED = 0x100
    CANCELED = 0x200
    CANCELING = 0x400

    def is_terminal(self) -> bool:
        """Finished, Failed or Canceled."""
        return self in _JOB_TERMINAL


_JOB_TERMINAL: Final = frozenset({JobState.FINISHED, JobState.FAILED, JobState.CANCELED})


class TaskState(WireEnum):
    """Task (and subtask) state."""

    CONFIGURING = 0x1
    SUBMITTED = 0x2
    VALIDATING = 0x4
    QUEUED = 0x8
    DISPATCHING = 0x10
    RUNNING = 0x20
    FINISHING = 0x40
    FINISHED = 0x80
    FAILED = 0x100
    CANCELED = 0x200
    CANCELING = 0x400

    def is_terminal(self) -> bool:
        """Finished, Failed or Canceled."""
        return self in _TASK_TERMINAL


_TASK_TERMINAL: Final = frozenset({TaskState.FINISHED, TaskState.FAILED, TaskState.CANCELED})


class NodeState(WireEnum):
    """Scheduler node state (``All`` = 7 is a filter value, not a state)."""

    OFFLINE = 0x1
    DRAINING = 0x2
    ONLINE = 0x4


class JobPriority(WireEnum):
    """Job priority band (``0`` = Lowest is confirmed by a sample; the rest in order)."""

    LOWEST = 0
    BELOW_NORMAL = 1
    NORMAL = 2
    ABOVE_NORMAL = 3
    HIGHEST = 4


class UnitType(WireEnum):
    """The resource unit a job or task asks for (``2`` = Node is confirmed by a sample)."""

    CORE = 0
    SOCKET = 1
    NODE = 2
    GPU = 3


class JobType(WireEnum):
    """Job type. The numbers are the managed API's flag values [INFER]."""

    BATCH = 0x1
    ADMIN = 0x2
    SERVICE = 0x4
    BROKER = 0x8


class TaskType(WireEnum):
    """Task type. ``Basic`` and ``ParametricSweep`` are confirmed; numbers [INFER]."""

    BASIC = 0
    PARAMETRIC_SWEEP = 1
    NODE_PREP = 2
    NODE_RELEASE = 3
    SERVICE = 4


# --- property specs ---------------------------------------------------------------------------


class ValueType(enum.Enum):
    """How a property's text is to be read."""

    STRING = "string"
    INT = "int"
    BOOL = "bool"
    DATETIME = "datetime"
    ENUM = "enum"
    STRING_LIST = "string-list"  # comma-separated (IStringCollection)
    INT_LIST = "int-list"  # comma-separated ids


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One catalog row.

    Attributes:
        name: the canonical REST name (``MinCores``).
        value_type: how the value is read and rendered; ``enum_type`` is the class for ``ENUM``.
        get: returned by Get / selectable in ``Properties`` and sort parameters.
        create, submit, set: accepted by Create Job / Add Task, Submit Job, Set *Properties.
    """

    name: str
    value_type: ValueType
    enum_type: type[WireEnum] | None = None
    get: bool = True
    create: bool = False
    submit: bool = False
    set: bool = False

    @property
    def settable(self) -> bool:
        """Accepted by at least one write operation."""
        return self.create or self.submit or self.set

    @property
    def snake_name(self) -> str:
        """``MinCoresPerNode`` → ``min_cores_per_node``."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", self.name).lower()


def _key(name: str) -> str:
    return name.replace("_", "").strip().lower()


class Catalog:
    """An ordered, case-insensitive set of :class:`PropertySpec`.

    ``lookup`` ignores case and underscores, so REST names (``MinCores``), other casings
    (``mincores``) and Python spellings (``min_cores``) all find the same row.
    """

    __slots__ = ("_by_key", "_specs", "kind")

    def __init__(self, kind: str, specs: Iterable[PropertySpec]) -> None:
        self.kind = kind
        self._specs: tuple[PropertySpec, ...] = tuple(specs)
        self._by_key: dict[str, PropertySpec] = {_key(s.name): s for s in self._specs}

    def __iter__(self) -> Iterator[PropertySpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._by_key

    def __repr__(self) -> str:
        return f"Catalog({self.kind!r}, {len(self._specs)} properties)"

    def lookup(self, name: str) -> PropertySpec | None:
        """The spec for ``name`` (any case, underscores ignored), or ``None``."""
        return self._by_key.get(_key(name))

    def canonical(self, name: str) -> str | None:
        """The canonical spelling of ``name``, or ``None`` when unknown."""
        spec = self.lookup(name)
        return spec.name if spec is not None else None

    @property
    def names(self) -> tuple[str, ...]:
        """All names in catalog order."""
        return tuple(s.name for s in self._specs)

    @property
    def gettable(self) -> tuple[str, ...]:
        """Names returned by Get (and valid in ``Properties`` / sort parameters)."""
        return tuple(s.name for s in self._specs if s.get)


_S, _I, _B, _D, _E = (
    ValueType.STRING,
    ValueType.INT,
    ValueType.BOOL,
    ValueType.DATETIME,
    ValueType.ENUM,
)
_SL, _IL = ValueType.STRING_LIST, ValueType.INT_LIST


def _job(
    name: str,
    vtype: ValueType,
    flags: str = "gcus",
    enum_cls: type[WireEnum] | None = None,
) -> PropertySpec:
    # flags: g = get, c = create, u = submit, s = set (the four columns of §A.1)
    return PropertySpec(
        name, vtype, enum_cls, "g" in flags, "c" in flags, "u" in flags, "s" in flags
    )


JOB_PROPERTIES: Final = Catalog(
    "job",
    [
        _job("Id", _I, "g"),
        _job("Name", _S),
        _job("Owner", _S, "g"),
        _job("UserName", _S),
        _job("Project", _S),
        _job("RuntimeSeconds", _I),
        _job("SubmitTime", _D, "g"),
        _job("CreateTime", _D, "g"),
        _job("EndTime", _D, "g"),
        _job("StartTime", _D, "g"),
        _job("ChangeTime", _D, "g"),
        _job("State", _E, "g", JobState),
        _job("PreviousState", _E, "g", JobState),
        _job("MinCores", _I),
        _job("MaxCores", _I),
        _job("MinNodes", _I),
        _job("MaxNodes", _I),
        _job("MinSockets", _I),
        _job("MaxSockets", _I),
        _job("UnitType", _E, "gcus", UnitType),
        _job("RequestedNodes", _SL),
        _job("IsExclusive", _B),
        _job("RunUntilCanceled", _B),
        _job("NodeGroups", _SL),
        _job("FailOnTaskFailure", _B),
        _job("AutoCalculateMax", _B),
        _job("AutoCalculateMin", _B),
        _job("CanGrow", _B, "g"),
        _job("CanShrink", _B, "g"),
        _job("Preemptable", _B),
        _job("ErrorMessage", _S, "g"),
        _job("HasRuntime", _B, "g"),
        _job("RequeueCount", _I, "g"),
        _job("MinMemory", _I),
        _job("MaxMemory", _I),
        _job("MinCoresPerNode", _I),
        _job("MaxCoresPerNode", _I),
        _job("EndpointReference", _S, "g"),
        _job("SoftwareLicense", _S),
        _job("OrderBy", _S),
        _job("ClientSource", _S),
        _job("Progress", _I),
        _job("ProgressMessage", _S),
        _job("TargetResourceCount", _I),
        _job("ExpandedPriority", _I),
        _job("ServiceName", _S),
        _job("JobTemplate", _S),
        _job("HoldUntil", _D, "gus"),
        _job("NotifyOnStart", _B),
        _job("NotifyOnCompletion", _B),
        _job("ExcludedNodes", _SL, "g"),
        _job("EmailAddress", _S),
        _job("Priority", _E, "gcus", JobPriority),
        _job("AllocatedNodes", _SL, "g"),
        _job("Pool", _S),
        _job("JobValidExitCodes", _S),
        _job("ParentJobIds", _IL),
        _job("FailDependentTasks", _B),
        _job("NodeGroupOp", _S),
        _job("SingleNode", _B),
        _job("ChildJobIds", _IL, "gcu"),
        _job("EstimatedProcessMemory", _I),
        _job("Password", _S, "cus"),  # write-only
    ],
)


def _task(
    name: str, vtype: ValueType, settable: bool = True, enum_cls: type[WireEnum] | None = None
) -> PropertySpec:
    # §A.2: Add Task, Set Task Properties and Set Subtask Properties share one list.
    return PropertySpec(name, vtype, enum_cls, True, settable, False, settable)


TASK_PROPERTIES: Final = Catalog(
    "task",
    [
        _task("TaskId", _S, False),
        _task("Name", _S),
        _task("State", _E, False, TaskState),
        _task("PreviousState", _E, False, TaskState),
        _task("MinCores", _I),
        _task("MaxCores", _I),
        _task("MinNodes", _I),
        _task("MaxNodes", _I),
        _task("MinSockets", _I),
        _task("MaxSockets", _I),
        _task("RuntimeSeconds", _I),
        _task("SubmitTime", _D, False),
        _task("CreateTime", _D, False),
        _task("EndTime", _D, False),
        _task("ChangeTime", _D, False),
        _task("StartTime", _D, False),
        _task("ParentJobId", _I, False),
        _task("CommandLine", _S),
        _task("WorkDirectory", _S),
        _task("RequiredNodes", _SL),
        _task("DependsOn", _SL),
        _task("IsExclusive", _B),
        _task("IsRerunnable", _B),
        _task("StdOutFilePath", _S),
        _task("StdInFilePath", _S),
        _task("StdErrFilePath", _S),
        _task("ExitCode", _I, False),
        _task("RequeueCount", _I, False),
        _task("StartValue", _I),
        _task("EndValue", _I),
        _task("IncrementValue", _I),
        _task("ErrorMessage", _S, False),
        _task("Output", _S, False),
        _task("UserBlob", _S),
        _task("Type", _E, True, TaskType),
        _task("IsServiceConcluded", _B, False),
        _task("FailJobOnFailure", _B),
        _task("FailJobOnFailureCount", _I),
        _task("AllocatedCoreIds", _SL, False),
        _task("AllocatedNodes", _SL, False),
        _task("HasRuntime", _B, False),
        _task("JobTaskId", _I, False),
        _task("InstanceId", _I, False),
        _task("TaskValidExitCodes", _S),
    ],
)


def _node(name: str, vtype: ValueType, enum_cls: type[WireEnum] | None = None) -> PropertySpec:
    return PropertySpec(name, vtype, enum_cls)


NODE_PROPERTIES: Final = Catalog(
    "node",
    [
        _node("Availability", _S),
        _node("AzureServiceName", _S),
        _node("CpuSpeed", _I),
        _node("DnsSuffix", _S),
        _node("Guid", _S),
        _node("Id", _I),
        _node("JobType", _SL),  # a flags value rendered "Batch, Admin, ..."
        _node("Location", _S),
        _node("MemorySize", _I),
        _node("MoveToOffline", _B),
        _node("Name", _S),
        _node("NodeGroups", _SL),
        _node("NumCores", _I),
        _node("NumSockets", _I),
        _node("OfflineTime", _D),
        _node("OnlineTime", _D),
        _node("Reachable", _B),
        _node("State", _E, NodeState),
    ],
)

JOB_LIST_DEFAULT_PROPERTIES: Final = ("Id", "Owner", "Name", "State", "Priority")
TASK_LIST_DEFAULT_PROPERTIES: Final = (
    "TaskId",
    "Name",
    "State",
    "CommandLine",
    "ExitCode",
    "ParentJobId",
    "JobTaskId",
    "InstanceId",
)


# --- value codec ------------------------------------------------------------------------------

_INT_TEXT: Final = re.compile(r"[+-]?\d+", re.ASCII)


def _parse_int(text: str) -> int:
    t = text.strip()
    if not _INT_TEXT.fullmatch(t):
        raise ValueError(f"{text!r} is not an integer")
    return int(t)


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_value(spec: PropertySpec, raw: str | None) -> object:
    """Read the wire text of ``spec`` into a Python value.

    ``None`` (``i:nil``) stays ``None``. An empty string is ``None`` for every type but
    strings (the Python sample reads ``<Value/>`` as "no value"), and ``[]`` for lists.

    Returns:
        ``str``, ``int``, ``bool``, ``datetime``, a :class:`WireEnum` member, ``list[str]``
        or ``list[int]``, per ``spec.value_type``.

    Raises:
        ValueError: the text is not a valid value of that type.
    """
    if raw is None:
        return None
    t = spec.value_type
    if t is ValueType.STRING:
        return raw
    if t is ValueType.STRING_LIST:
        return _split(raw)
    if t is ValueType.INT_LIST:
        return [_parse_int(p) for p in _split(raw)]
    if not raw.strip():
        return None
    if t is ValueType.INT:
        return _parse_int(raw)
    if t is ValueType.BOOL:
        return parse_net_bool(raw)
    if t is ValueType.DATETIME:
        return parse_net_datetime(raw)
    assert spec.enum_type is not None, spec
    return spec.enum_type.parse(raw)


def render_value(spec: PropertySpec, value: object) -> str | None:
    """Render a value already of the type :func:`parse_value` returns (``None`` → nil).

    Raises:
        ValueError: ``value`` is not of the spec's type.
    """
    if value is None:
        return None
    t = spec.value_type
    if t is ValueType.STRING and isinstance(value, str):
        return value
    if t is ValueType.INT and isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if t is ValueType.BOOL and isinstance(value, bool):
        return format_net_bool(value)
    if t is ValueType.DATETIME and isinstance(value, datetime):
        return format_net_datetime(value)
    if t is ValueType.ENUM and isinstance(value, WireEnum):
        assert spec.enum_type is not None
        return spec.enum_type(int(value)).wire_name
    if t in (ValueType.STRING_LIST, ValueType.INT_LIST) and isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    raise ValueError(f"{spec.name}: cannot render {value!r} as {t.value}")


def to_wire(spec: PropertySpec, value: object) -> str | None:
    """Turn a caller's value for ``spec`` into validated wire text.

    Accepts the natural Python type (``int``, ``bool``, ``datetime``, an enum member or its
    number, a list/tuple for list properties) or a string, which is parsed and re-rendered
    in canonical form (``"normal"`` → ``"Normal"``, ``"true"`` → ``"True"``).

    Raises:
        ValueError: the value is not valid for the property (the message names it).
    """
    if value is None:
        return None
    try:
        if isinstance(value, str):
            if spec.value_type is ValueType.STRING:
                return value
            return render_value(spec, parse_value(spec, value))
        t = spec.value_type
        if t is ValueType.ENUM and isinstance(value, int) and not isinstance(value, bool):
            assert spec.enum_type is not None
            return spec.enum_type.parse(str(int(value))).wire_name
        if t is ValueType.STRING_LIST and isinstance(value, list | tuple | set | frozenset):
            items = [str(v) for v in value]
            if any("," in v for v in items):
                raise ValueError("list items cannot contain ','")
            return ",".join(items)
        if t is ValueType.INT_LIST and isinstance(value, list | tuple | set | frozenset):
            return ",".join(str(_parse_int(str(v))) for v in value)
        if t is ValueType.STRING and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return render_value(spec, value)
    except ValueError as exc:
        raise ValueError(f"invalid value for {spec.name}: {exc}") from None


def select(catalog: Catalog, names: Sequence[str]) -> list[str]:
    """Canonical spellings of ``names`` (order kept, duplicates dropped).

    Raises:
        ValueError: a name is unknown or not gettable (the message lists it).
    """
    out: list[str] = []
    for name in names:
        spec = catalog.lookup(name)
        if spec is None or not spec.get:
            raise ValueError(f"{name!r} is not a valid {catalog.kind} property")
        if spec.name not in out:
            out.append(spec.name)
    return out
