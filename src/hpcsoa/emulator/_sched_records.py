"""Records of the emulated scheduler: jobs, tasks, subtasks, nodes, and their property values.

Plain mutable objects owned by :class:`~._scheduler_state.SchedulerState`; nothing here does
I/O or reads a clock. Property values are kept as typed Python values (catalog types, see
``protocol._catalog``) and rendered to text only by the handlers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ..protocol._catalog import JobPriority, JobState, NodeState, TaskState, TaskType, UnitType

__all__ = [
    "JOB_DEFAULTS",
    "TASK_DEFAULTS",
    "Codes",
    "Job",
    "Node",
    "SchedulerFault",
    "Subtask",
    "Task",
    "Unit",
    "job_value",
    "node_value",
    "parse_exit_codes",
    "sweep_substitute",
    "task_value",
]


def _hresult(value: int) -> int:
    return value - 0x1_0000_0000 if value >= 0x8000_0000 else value


class Codes:
    """Fault codes of scheduler errors.

    ``CANCEL_INVALID_STATE`` is documented (spec §2.7). The others are emulator-assigned in
    the same HRESULT family so that clients can key on them; they are not HPC Pack's numbers.
    """

    CANCEL_INVALID_STATE: Final = _hresult(0x80040208)  # -2147220984 [DOC]
    JOB_NOT_FOUND: Final = _hresult(0x80040200)
    TASK_NOT_FOUND: Final = _hresult(0x80040201)
    SUBTASK_NOT_FOUND: Final = _hresult(0x80040202)
    SUBTASK_NOT_EXPANDED: Final = _hresult(0x80040203)
    NODE_NOT_FOUND: Final = _hresult(0x80040204)
    NODE_GROUP_NOT_FOUND: Final = _hresult(0x80040205)
    INVALID_PROPERTY: Final = _hresult(0x80040206)
    INVALID_VALUE: Final = _hresult(0x80040207)
    SUBMIT_INVALID_STATE: Final = _hresult(0x80040209)
    REQUEUE_INVALID_STATE: Final = _hresult(0x8004020A)
    MODIFY_INVALID_STATE: Final = _hresult(0x8004020B)
    NO_TASKS: Final = _hresult(0x8004020C)
    ACCESS_DENIED: Final = _hresult(0x8004020D)
    INVALID_ARGUMENT: Final = _hresult(0x8004020E)
    INVALID_QUERY: Final = _hresult(0x8004020F)


class SchedulerFault(Exception):
    """A scheduler operation failed; the handlers turn it into an error response.

    Args:
        status: HTTP status (400, 403, 404).
        code: fault ``Code`` (see :class:`Codes`).
        message: fault ``Message``.
    """

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# --- runnable units -------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Unit:
    """What runs: a basic task, or one subtask of a sweep. Holds the runtime fields."""

    state: TaskState = TaskState.CONFIGURING
    previous_state: TaskState | None = None
    create_time: datetime | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    change_time: datetime | None = None
    exit_code: int | None = None
    output: str | None = None
    error_message: str | None = None
    requeue_count: int = 0
    node: str | None = None  # where it runs (one node per unit in the emulator)
    core_ids: tuple[int, ...] = ()
    run_token: int = 0  # bumped per dispatch: a late report from an older run is ignored
    sim_end: float | None = None  # simulate runner: when the current run ends
    sim_exit: int | None = 0
    sim_output: str | None = None
    sim_error: str | None = None


@dataclass(slots=True, eq=False)
class Subtask(Unit):
    """One parametric-sweep instance (``InstanceId`` 1..n) with its sweep index."""

    instance_id: int = 0
    index: int = 0
    overrides: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Task(Unit):
    """A task; for a sweep it is the master whose state aggregates its subtasks."""

    job_id: int = 0
    nice_id: int = 0  # JobTaskId: the {task_id} of the URIs
    global_id: int = 0  # the cluster-wide Id of job XML
    props: dict[str, object] = field(default_factory=dict)
    custom: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower name → (name, v)
    env: dict[str, tuple[str, str]] = field(default_factory=dict)
    subtasks: list[Subtask] | None = None  # None: not expanded yet (or not a sweep)

    @property
    def is_sweep(self) -> bool:
        return self.props.get("Type") is TaskType.PARAMETRIC_SWEEP

    def units(self) -> list[Unit]:
        """What actually runs: the subtasks of an expanded sweep, else the task itself."""
        return list(self.subtasks) if self.subtasks is not None else [self]


@dataclass(slots=True, eq=False)
class Job:
    """A job with its settable properties, lifecycle fields and tasks."""

    id: int
    owner: str
    props: dict[str, object] = field(default_factory=dict)
    state: JobState = JobState.CONFIGURING
    previous_state: JobState | None = None
    create_time: datetime | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    change_time: datetime | None = None
    error_message: str | None = None
    requeue_count: int = 0
    custom: dict[str, tuple[str, str]] = field(default_factory=dict)
    env: dict[str, tuple[str, str]] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    submit_seq: int = 0  # FIFO order among equal priorities
    is_service: bool = False
    password: str | None = field(default=None, repr=False)  # write-only run-as password

    def task(self, nice_id: int) -> Task | None:
        if 1 <= nice_id <= len(self.tasks):
            return self.tasks[nice_id - 1]
        return None


@dataclass(slots=True, eq=False)
class Node:
    """A compute or head node of the emulated cluster."""

    id: int
    name: str
    cores: int
    sockets: int
    memory_mb: int
    groups: list[str]
    guid: str
    online_time: datetime
    state: NodeState = NodeState.ONLINE
    offline_time: datetime | None = None
    change_time: datetime | None = None
    is_compute: bool = True
    busy: set[int] = field(default_factory=set)  # allocated core ids

    def free_cores(self) -> list[int]:
        return [c for c in range(self.cores) if c not in self.busy]


# --- defaults and values --------------------------------------------------------------------

JOB_DEFAULTS: Final[dict[str, object]] = {
    "Name": "",
    "Project": "",
    "MinCores": 1,
    "MaxCores": 1,
    "MinNodes": 1,
    "MaxNodes": 1,
    "MinSockets": 1,
    "MaxSockets": 1,
    "UnitType": UnitType.CORE,
    "RequestedNodes": [],
    "IsExclusive": False,
    "RunUntilCanceled": False,
    "NodeGroups": [],
    "FailOnTaskFailure": False,
    "AutoCalculateMax": True,
    "AutoCalculateMin": True,
    "Preemptable": True,
    "Progress": 0,
    "TargetResourceCount": 0,
    "ExpandedPriority": 2000,
    "JobTemplate": "Default",
    "NotifyOnStart": False,
    "NotifyOnCompletion": False,
    "Priority": JobPriority.NORMAL,
    "Pool": "Default",
    "ParentJobIds": [],
    "FailDependentTasks": False,
    "NodeGroupOp": "Intersect",
    "SingleNode": False,
    "ChildJobIds": [],
    "EstimatedProcessMemory": 0,
}

TASK_DEFAULTS: Final[dict[str, object]] = {
    "Name": "",
    "MinCores": 1,
    "MaxCores": 1,
    "MinNodes": 1,
    "MaxNodes": 1,
    "MinSockets": 1,
    "MaxSockets": 1,
    "CommandLine": "",
    "RequiredNodes": [],
    "DependsOn": [],
    "IsExclusive": False,
    "IsRerunnable": True,
    "StartValue": 1,
    "EndValue": 1,
    "IncrementValue": 1,
    "Type": TaskType.BASIC,
    "FailJobOnFailure": False,
    "FailJobOnFailureCount": 1,
}


def job_value(job: Job, name: str, allocated: list[str]) -> object:
    """The typed value of job property ``name`` (canonical spelling).

    ``allocated`` is the job's current node list (computed by the state).
    """
    match name:
        case "Id":
            return job.id
        case "Owner":
            return job.owner
        case "UserName":
            return job.props.get("UserName", job.owner)
        case "State":
            return job.state
        case "PreviousState":
            return job.previous_state
        case "CreateTime":
            return job.create_time
        case "SubmitTime":
            return job.submit_time
        case "StartTime":
            return job.start_time
        case "EndTime":
            return job.end_time
        case "ChangeTime":
            return job.change_time
        case "ErrorMessage":
            return job.error_message
        case "RequeueCount":
            return job.requeue_count
        case "HasRuntime":
            return bool(job.props.get("RuntimeSeconds"))
        case "CanGrow" | "CanShrink":
            return True
        case "AllocatedNodes":
            return allocated
        case "ExcludedNodes":
            return []
        case "Password":
            return None  # write-only
    return job.props.get(name, JOB_DEFAULTS.get(name))


_STAR_RUN: Final = re.compile(r"\*+")


def sweep_substitute(text: str, index: int) -> str:
    """Replace each run of ``*`` by the sweep index, zero-padded to the run's length."""
    return _STAR_RUN.sub(lambda m: str(index).zfill(len(m.group())), text)


_SWEPT: Final = frozenset(
    {"CommandLine", "WorkDirectory", "StdOutFilePath", "StdInFilePath", "StdErrFilePath"}
)


def task_value(job: Job, task: Task, unit: Unit, name: str) -> object:
    """The typed value of task property ``name`` for ``unit`` (the task or one subtask)."""
    sub = unit if isinstance(unit, Subtask) else None
    match name:
        case "TaskId":
            base = f"{job.id}.{task.nice_id}"
            return f"{base}.{sub.instance_id}" if sub is not None else base
        case "State":
            return unit.state
        case "PreviousState":
            return unit.previous_state
        case "CreateTime":
            return unit.create_time or task.create_time
        case "SubmitTime":
            return unit.submit_time
        case "StartTime":
            return unit.start_time
        case "EndTime":
            return unit.end_time
        case "ChangeTime":
            return unit.change_time
        case "ExitCode":
            return unit.exit_code
        case "Output":
            return unit.output
        case "ErrorMessage":
            return unit.error_message
        case "RequeueCount":
            return unit.requeue_count
        case "AllocatedNodes":
            return [unit.node] if unit.node else []
        case "AllocatedCoreIds":
            return [str(c) for c in unit.core_ids]
        case "ParentJobId":
            return job.id
        case "JobTaskId":
            return task.nice_id
        case "InstanceId":
            return sub.instance_id if sub is not None else 0
        case "HasRuntime":
            return bool(task_setting(task, sub, "RuntimeSeconds"))
        case "IsServiceConcluded":
            return False
    value = task_setting(task, sub, name)
    if sub is not None and name in _SWEPT and isinstance(value, str):
        return sweep_substitute(value, sub.index)
    return value


def task_setting(task: Task, sub: Subtask | None, name: str) -> object:
    """A settable task property: the subtask's override, else the task's, else the default."""
    if sub is not None and name in sub.overrides:
        return sub.overrides[name]
    return task.props.get(name, TASK_DEFAULTS.get(name))


def node_value(node: Node, name: str) -> object:
    """The typed value of node property ``name`` (§A.3)."""
    match name:
        case "Availability":
            return "AlwaysOn"
        case "AzureServiceName" | "Location":
            return None
        case "CpuSpeed":
            return 2400
        case "DnsSuffix":
            return "hpc.local"
        case "Guid":
            return node.guid
        case "Id":
            return node.id
        case "JobType":
            return ["Batch", "Admin", "Service", "Broker"] if node.is_compute else ["Broker"]
        case "MemorySize":
            return node.memory_mb
        case "MoveToOffline":
            return False
        case "Name":
            return node.name
        case "NodeGroups":
            return list(node.groups)
        case "NumCores":
            return node.cores
        case "NumSockets":
            return node.sockets
        case "OfflineTime":
            return node.offline_time
        case "OnlineTime":
            return node.online_time
        case "Reachable":
            return node.state is not NodeState.OFFLINE
        case "State":
            return node.state
    return None


_RANGE: Final = re.compile(r"^\s*(min|[+-]?\d+)\s*\.\.\s*(max|[+-]?\d+)\s*$", re.ASCII | re.I)


def parse_exit_codes(text: str) -> list[tuple[int, int]]:
    """Parse a ``ValidExitCodes`` value: ``0,1,10..20``, ``min..-1``, ``5..max``.

    Raises:
        ValueError: an item is neither an integer nor a range.
    """
    lo_all, hi_all = -(2**31), 2**31 - 1
    out: list[tuple[int, int]] = []
    for item in text.split(","):
        if not item.strip():
            continue
        m = _RANGE.match(item)
        if m is not None:
            lo = lo_all if m.group(1).lower() == "min" else int(m.group(1))
            hi = hi_all if m.group(2).lower() == "max" else int(m.group(2))
            if lo > hi:
                raise ValueError(f"empty exit-code range {item.strip()!r}")
            out.append((lo, hi))
            continue
        if not re.fullmatch(r"\s*[+-]?\d+\s*", item, re.ASCII):
            raise ValueError(f"{item.strip()!r} is not an exit code or a range (a..b)")
        n = int(item)
        out.append((n, n))
    if not out:
        raise ValueError("no exit codes given")
    return out
