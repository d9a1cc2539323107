"""Client-side models of scheduler objects: :class:`Job`, :class:`Task`, :class:`Node`.

Each model is built from the property bag the service returned. Common fields are typed
attributes (``job.state`` is a :class:`JobState`); every property is also available parsed
per the catalog (``job.properties["MinCores"] == 1``) and as the raw text
(``job.raw["MinCores"] == "1"``). Properties the catalog does not know pass through as text,
and a value that does not parse as its catalog type is kept as text rather than rejected:
the client tolerates what a newer server may send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from ..protocol._catalog import (
    JOB_PROPERTIES,
    NODE_PROPERTIES,
    TASK_PROPERTIES,
    Catalog,
    JobPriority,
    JobState,
    NodeState,
    TaskState,
    TaskType,
    parse_value,
)

__all__ = ["Job", "Node", "NodeGroup", "Task", "parse_properties"]

_T = TypeVar("_T")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def parse_properties(
    catalog: Catalog, pairs: Iterable[tuple[str, str | None]]
) -> tuple[Mapping[str, object], Mapping[str, str | None]]:
    """``(typed, raw)`` mappings keyed by canonical name (unknown names as sent).

    A catalog property whose text does not parse keeps its text in ``typed`` too.
    """
    typed: dict[str, object] = {}
    raw: dict[str, str | None] = {}
    for name, value in pairs:
        spec = catalog.lookup(name)
        key = spec.name if spec is not None else name
        raw[key] = value
        if spec is None:
            typed[key] = value
            continue
        try:
            typed[key] = parse_value(spec, value)
        except ValueError:
            typed[key] = value
    return MappingProxyType(typed), MappingProxyType(raw)


def _typed(props: Mapping[str, object], name: str, kind: type[_T]) -> _T | None:
    value = props.get(name)
    return value if isinstance(value, kind) else None


def _int(props: Mapping[str, object], name: str) -> int | None:
    value = props.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Bag:
    """Case-insensitive read access to ``properties`` shared by the models."""

    __slots__ = ()
    properties: Mapping[str, object]

    def get(self, name: str, default: object = None) -> object:
        """A property's parsed value by name (any case, ``snake_case`` allowed)."""
        key = name.replace("_", "").lower()
        for k, v in self.properties.items():
            if k.replace("_", "").lower() == key:
                return v
        return default

    def __getitem__(self, name: str) -> object:
        marker = object()
        value = self.get(name, marker)
        if value is marker:
            raise KeyError(name)
        return value


@dataclass(frozen=True, slots=True, repr=False)
class Job(_Bag):
    """A job as returned by Get Job / Get Job List (only the requested properties are set).

    Attributes:
        id, name, owner, state, priority, project, create_time, submit_time, start_time,
        end_time, error_message, requeue_count, service_name: common properties (``None``
        when not returned).
        properties: every returned property, parsed per the catalog (§A.1).
        raw: every returned property as the text the service sent.
    """

    id: int | None = None
    name: str | None = None
    owner: str | None = None
    state: JobState | None = None
    priority: JobPriority | None = None
    project: str | None = None
    create_time: datetime | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error_message: str | None = None
    requeue_count: int | None = None
    service_name: str | None = None
    properties: Mapping[str, object] = field(default_factory=lambda: _EMPTY, hash=False)
    raw: Mapping[str, str | None] = field(default_factory=lambda: _EMPTY, hash=False)

    @classmethod
    def from_properties(cls, pairs: Iterable[tuple[str, str | None]]) -> Job:
        """Build a job from ``(name, value)`` pairs of a property bag."""
        p, raw = parse_properties(JOB_PROPERTIES, pairs)
        return cls(
            id=_int(p, "Id"),
            name=_typed(p, "Name", str),
            owner=_typed(p, "Owner", str),
            state=_typed(p, "State", JobState),
            priority=_typed(p, "Priority", JobPriority),
            project=_typed(p, "Project", str),
            create_time=_typed(p, "CreateTime", datetime),
            submit_time=_typed(p, "SubmitTime", datetime),
            start_time=_typed(p, "StartTime", datetime),
            end_time=_typed(p, "EndTime", datetime),
            error_message=_typed(p, "ErrorMessage", str),
            requeue_count=_int(p, "RequeueCount"),
            service_name=_typed(p, "ServiceName", str),
            properties=p,
            raw=raw,
        )

    def is_terminal(self) -> bool:
        """Finished, Failed or Canceled."""
        return self.state is not None and self.state.is_terminal()

    def __repr__(self) -> str:
        state = _name(self.state)
        return f"Job(id={self.id!r}, name={self.name!r}, state={state}, owner={self.owner!r})"


def _split_task_id(text: object) -> tuple[int | None, int | None, int | None]:
    parts = str(text).split(".") if isinstance(text, str) else []
    nums = [int(p) if p.isdigit() else None for p in parts]
    nums += [None] * (3 - len(nums))
    return nums[0], nums[1], nums[2]


@dataclass(frozen=True, slots=True, repr=False)
class Task(_Bag):
    """A task or subtask as returned by Get Task / Get Task List / Get Subtask.

    Attributes:
        job_id: the parent job (``ParentJobId``).
        task_id: the job-relative task number (``JobTaskId``), the ``{task_id}`` of the API.
        instance_id: the parametric sweep instance (``0`` for a task that is not a subtask).
        full_id: ``TaskId`` as rendered by the service (``job.task[.instance]``).
        name, state, type, command_line, exit_code, output, error_message, create_time,
        start_time, end_time, requeue_count: common properties.
        properties / raw: every returned property, parsed (§A.2) and as text.
    """

    job_id: int | None = None
    task_id: int | None = None
    instance_id: int | None = None
    full_id: str | None = None
    name: str | None = None
    state: TaskState | None = None
    type: TaskType | None = None
    command_line: str | None = None
    exit_code: int | None = None
    output: str | None = None
    error_message: str | None = None
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    requeue_count: int | None = None
    properties: Mapping[str, object] = field(default_factory=lambda: _EMPTY, hash=False)
    raw: Mapping[str, str | None] = field(default_factory=lambda: _EMPTY, hash=False)

    @classmethod
    def from_properties(cls, pairs: Iterable[tuple[str, str | None]]) -> Task:
        """Build a task from ``(name, value)`` pairs of a property bag."""
        p, raw = parse_properties(TASK_PROPERTIES, pairs)
        full = _typed(p, "TaskId", str)
        j, t, i = _split_task_id(full)
        instance = _int(p, "InstanceId")
        if instance is None and full is not None:
            instance = i if i is not None else 0
        return cls(
            job_id=_int(p, "ParentJobId") if "ParentJobId" in p else j,
            task_id=_int(p, "JobTaskId") if "JobTaskId" in p else t,
            instance_id=instance,
            full_id=full,
            name=_typed(p, "Name", str),
            state=_typed(p, "State", TaskState),
            type=_typed(p, "Type", TaskType),
            command_line=_typed(p, "CommandLine", str),
            exit_code=_int(p, "ExitCode"),
            output=_typed(p, "Output", str),
            error_message=_typed(p, "ErrorMessage", str),
            create_time=_typed(p, "CreateTime", datetime),
            start_time=_typed(p, "StartTime", datetime),
            end_time=_typed(p, "EndTime", datetime),
            requeue_count=_int(p, "RequeueCount"),
            properties=p,
            raw=raw,
        )

    def is_terminal(self) -> bool:
        """Finished, Failed or Canceled."""
        return self.state is not None and self.state.is_terminal()

    def __repr__(self) -> str:
        ident = self.full_id or f"{self.job_id}.{self.task_id}"
        return f"Task({ident}, name={self.name!r}, state={_name(self.state)})"


@dataclass(frozen=True, slots=True, repr=False)
class Node(_Bag):
    """A cluster node as returned by Get Node / Get Node List (§A.3).

    Attributes:
        id, name, state, num_cores, num_sockets, memory_size (MB), cpu_speed, reachable,
        node_groups: common properties.
        properties / raw: every returned property, parsed and as text.
    """

    id: int | None = None
    name: str | None = None
    state: NodeState | None = None
    num_cores: int | None = None
    num_sockets: int | None = None
    memory_size: int | None = None
    cpu_speed: int | None = None
    reachable: bool | None = None
    node_groups: tuple[str, ...] = ()
    properties: Mapping[str, object] = field(default_factory=lambda: _EMPTY, hash=False)
    raw: Mapping[str, str | None] = field(default_factory=lambda: _EMPTY, hash=False)

    @classmethod
    def from_properties(cls, pairs: Iterable[tuple[str, str | None]]) -> Node:
        """Build a node from ``(name, value)`` pairs of a property bag."""
        p, raw = parse_properties(NODE_PROPERTIES, pairs)
        groups = p.get("NodeGroups")
        return cls(
            id=_int(p, "Id"),
            name=_typed(p, "Name", str),
            state=_typed(p, "State", NodeState),
            num_cores=_int(p, "NumCores"),
            num_sockets=_int(p, "NumSockets"),
            memory_size=_int(p, "MemorySize"),
            cpu_speed=_int(p, "CpuSpeed"),
            reachable=_typed(p, "Reachable", bool),
            node_groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            properties=p,
            raw=raw,
        )

    def __repr__(self) -> str:
        return f"Node({self.name!r}, state={_name(self.state)}, cores={self.num_cores})"


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """A node group of Get Node Group List (``Name`` and ``Description``)."""

    name: str
    description: str | None = None


def _name(state: object) -> str:
    wire = getattr(state, "wire_name", None)
    return str(wire) if wire is not None else "None"
