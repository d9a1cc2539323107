"""Core of the emulated scheduler: records, nodes, state changes shared by everything else.

See ``_scheduler_state`` for the theory of operation; ``_sched_dispatch`` adds the
time-driven step loop on top of this class and ``_scheduler_state`` the REST operations.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from ..protocol._catalog import (
    Catalog,
    JobPriority,
    JobState,
    NodeState,
    PropertySpec,
    TaskState,
    ValueType,
    parse_value,
)
from ._sched_queries import QueryStore
from ._sched_records import (
    Codes,
    Job,
    Node,
    SchedulerFault,
    Subtask,
    Task,
    Unit,
    parse_exit_codes,
    task_value,
)

if TYPE_CHECKING:
    from ._config import EmulatorConfig
    from ._task_runner import SchedulerDriver

__all__ = ["HEAD_NODE", "Launch", "Pairs", "RunKey", "SchedulerEngine", "bad_request"]

HEAD_NODE: Final = "HN01"
Pairs = Sequence[tuple[str, str | None]]
RunKey = tuple[int, int, int, int]  # (job id, task id, instance id, run token)

_GROUPS: Final = (
    ("HeadNodes", "The head nodes of the cluster"),
    ("ComputeNodes", "The compute nodes of the cluster"),
    ("WCFBrokerNodes", "The nodes that run WCF brokers for SOA sessions"),
)


def bad_request(code: int, message: str) -> SchedulerFault:
    """A 400 fault."""
    return SchedulerFault(400, code, message)


_bad = bad_request


@dataclass(frozen=True, slots=True)
class Launch:
    """A unit the ``local`` runner must start as a subprocess."""

    key: RunKey
    command: str
    work_dir: str | None
    env: tuple[tuple[str, str], ...]
    stdin_path: str | None
    stdout_path: str | None
    stderr_path: str | None
    timeout_s: float | None

    def __repr__(self) -> str:  # environment values may be secrets: keep them out of logs
        return f"Launch(key={self.key}, command={self.command!r}, work_dir={self.work_dir!r})"


class SchedulerEngine:
    """State and time-driven engine of the scheduler (the operations are in ``SchedulerState``).

    Args:
        config: the emulator configuration (``nodes``, ``cores_per_node``, ``task_runner``,
            ``task_runtime_ms``, ``cluster``).
        clock: monotonic seconds (drives simulated runs and token expiry).
        wall_clock: the display clock (naive UTC). By default it follows ``clock`` from the
            current UTC time, so an injected clock moves dates too.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        if wall_clock is None:
            base_wall = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            base = clock()

            def wall_clock() -> datetime:
                return base_wall + timedelta(seconds=clock() - base)

        self._wall: Callable[[], datetime] = wall_clock
        self.jobs: dict[int, Job] = {}
        self.active: dict[int, Job] = {}  # jobs the step loop looks at (insertion ordered)
        self._job_ids = itertools.count(1)
        self._task_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self.running: dict[RunKey, tuple[Job, Task, Unit]] = {}
        self.launches: list[Launch] = []
        self.kills: list[RunKey] = []
        self.simulate = config.task_runner == "simulate"
        self.templates: list[str] = ["Default"]
        self.head_node = HEAD_NODE
        self.nodes: dict[str, Node] = {}
        self.groups: dict[str, tuple[str, str]] = {g.lower(): (g, d) for g, d in _GROUPS}
        self.queries: QueryStore[object] = QueryStore(clock)
        self.wake: Callable[[], None] = lambda: None  # set by the driver: "call step() soon"
        self.on_service_job_canceled: Callable[[int], None] | None = None
        self._driver: SchedulerDriver | None = None  # set by start()
        self._build_nodes()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} jobs={len(self.jobs)} active={len(self.active)} "
            f"running={len(self.running)} nodes={len(self.nodes)} "
            f"runner={self.config.task_runner!r}>"
        )

    # --- clocks, ids, nodes -------------------------------------------------------------------

    def now(self) -> datetime:
        """The display time (naive UTC, whole seconds)."""
        return self._wall().replace(microsecond=0)

    def allocate_job_id(self) -> int:
        """The next id of the job-id sequence (SOA sessions draw from it too, G28)."""
        while True:
            n = next(self._job_ids)
            if n not in self.jobs:
                return n

    def next_task_global_id(self) -> int:
        return next(self._task_ids)

    def next_seq(self) -> int:
        return next(self._seq)

    def _build_nodes(self) -> None:
        cfg = self.config
        now = self.now()
        width = max(2, len(str(cfg.nodes)))
        names = [self.head_node] + [f"CN{i:0{width}d}" for i in range(1, cfg.nodes + 1)]
        sockets = 2 if cfg.cores_per_node % 2 == 0 else 1
        for i, name in enumerate(names):
            head = i == 0
            self.nodes[name.lower()] = Node(
                id=i + 1,
                name=name,
                cores=cfg.cores_per_node,
                sockets=sockets,
                memory_mb=2048 * cfg.cores_per_node,
                groups=["HeadNodes", "WCFBrokerNodes"] if head else ["ComputeNodes"],
                guid=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{cfg.cluster}.hpc.local")),
                online_time=now,
                change_time=now,
                is_compute=not head,
            )

    def node(self, name: str) -> Node:
        """The node called ``name`` (any case).

        Raises:
            SchedulerFault: 404 when there is no such node.
        """
        node = self.nodes.get(name.lower())
        if node is None:
            raise SchedulerFault(404, Codes.NODE_NOT_FOUND, f"The node {name} does not exist.")
        return node

    def group_members(self, name: str) -> list[str]:
        """Node names of group ``name`` (any case).

        Raises:
            SchedulerFault: 404 when there is no such group.
        """
        entry = self.groups.get(name.lower())
        if entry is None:
            raise SchedulerFault(
                404, Codes.NODE_GROUP_NOT_FOUND, f"The node group {name} does not exist."
            )
        return [n.name for n in self.nodes.values() if entry[0] in n.groups]

    def set_node_state(self, name: str, state: NodeState) -> None:
        """Change a node's state (no REST operation does this; for tests and tooling)."""
        node = self.node(name)
        now = self.now()
        if state is NodeState.OFFLINE and node.state is not NodeState.OFFLINE:
            node.offline_time = now
        if state is NodeState.ONLINE and node.state is not NodeState.ONLINE:
            node.online_time = now
        node.state = state
        node.change_time = now
        self.wake()

    # --- SOA service jobs (G28) ---------------------------------------------------------------

    def on_session_created(
        self, session_id: int, owner: str, service_name: str, job_name: str
    ) -> None:
        """Broker hook: a session started; its service job appears as a Running job, named
        by the start info's ``ServiceJobName`` (else after the service)."""
        now = self.now()
        job = Job(
            id=session_id,
            owner=owner,
            props={"Name": job_name, "ServiceName": service_name, "RunUntilCanceled": True},
            state=JobState.RUNNING,
            previous_state=JobState.QUEUED,
            create_time=now,
            submit_time=now,
            start_time=now,
            change_time=now,
            submit_seq=self.next_seq(),
            is_service=True,
        )
        self.jobs[session_id] = job

    def on_session_closed(self, session_id: int, finished: bool) -> None:
        """Broker hook: the session ended; its job ends Finished (or Canceled)."""
        job = self.jobs.get(session_id)
        if job is None or job.state.is_terminal():
            return
        self.set_job_state(job, JobState.FINISHED if finished else JobState.CANCELED)
        job.end_time = self.now()

    # --- property validation -------------------------------------------------------------------

    def coerce(self, catalog: Catalog, pairs: Pairs, column: str, where: str) -> dict[str, object]:
        """Validate ``pairs`` against ``catalog`` column (``create``/``submit``/``set``).

        Returns canonical name → typed value (``None`` = reset to the default).

        Raises:
            SchedulerFault: 400 for an unknown or read-only name or an invalid value.
        """
        out: dict[str, object] = {}
        for name, raw in pairs:
            spec = catalog.lookup(name)
            if spec is None:
                raise _bad(
                    Codes.INVALID_PROPERTY, f"{name} is not a valid {catalog.kind} property."
                )
            if not getattr(spec, column):
                raise _bad(
                    Codes.INVALID_PROPERTY,
                    f"The {catalog.kind} property {spec.name} cannot be set by {where}.",
                )
            try:
                value = self._check(catalog.kind, spec, parse_value(spec, raw))
            except ValueError as exc:
                raise _bad(
                    Codes.INVALID_VALUE,
                    f"Invalid value for the {catalog.kind} property {spec.name}: {exc}",
                ) from None
            out[spec.name] = value
        return out

    def _check(self, kind: str, spec: PropertySpec, value: object) -> object:
        if value is None:
            return None
        name = spec.name
        if spec.value_type is ValueType.INT:
            assert isinstance(value, int)
            lo, hi = {
                "Progress": (0, 100),
                "ExpandedPriority": (0, 4000),
                "IncrementValue": (1, 2**31 - 1),
                "StartValue": (-(2**31), 2**31 - 1),
                "EndValue": (-(2**31), 2**31 - 1),
            }.get(name, (0, 2**31 - 1))
            if not lo <= value <= hi:
                raise ValueError(f"{value} is outside {lo}..{hi}")
        elif name == "JobTemplate":
            return self._canonical(str(value), self.templates, "job template")
        elif name == "NodeGroups":
            assert isinstance(value, list)
            groups = [g for g, _ in self.groups.values()]
            return [self._canonical(str(g), groups, "node group") for g in value]
        elif name in ("RequestedNodes", "RequiredNodes"):
            assert isinstance(value, list)
            names = [n.name for n in self.nodes.values()]
            return [self._canonical(str(n), names, "node") for n in value]
        elif name in ("JobValidExitCodes", "TaskValidExitCodes"):
            parse_exit_codes(str(value))
        elif name == "ParentJobIds":
            assert isinstance(value, list)
            missing = [i for i in value if i not in self.jobs]
            if missing:
                raise ValueError(f"job {missing[0]} does not exist")
        return value

    @staticmethod
    def _canonical(name: str, known: Iterable[str], what: str) -> str:
        for k in known:
            if k.lower() == name.lower():
                return k
        raise ValueError(f"the {what} {name!r} does not exist")

    @staticmethod
    def _apply(props: dict[str, object], changes: dict[str, object]) -> None:
        for name, value in changes.items():
            if value is None:
                props.pop(name, None)
            else:
                props[name] = value
        # Priority and ExpandedPriority are two views of one value (bands of 1000).
        prio, expanded = changes.get("Priority", ...), changes.get("ExpandedPriority", ...)
        if prio is not ... and expanded is ...:
            if isinstance(prio, JobPriority):
                props["ExpandedPriority"] = int(prio) * 1000
            else:
                props.pop("ExpandedPriority", None)
        elif expanded is not ... and prio is ... and isinstance(expanded, int):
            props["Priority"] = JobPriority(min(4, expanded // 1000))

    # --- state changes shared with the operations ----------------------------------------------

    def set_job_state(self, job: Job, state: JobState) -> None:
        if job.state is state:
            return
        job.previous_state, job.state = job.state, state
        job.change_time = self.now()
        if state.is_terminal():
            job.end_time = job.change_time
            self.active.pop(job.id, None)

    def set_unit_state(self, unit: Unit, state: TaskState) -> None:
        if unit.state is state:
            return
        unit.previous_state, unit.state = unit.state, state
        unit.change_time = self.now()
        if state.is_terminal():
            unit.end_time = unit.change_time

    def refresh_master(self, task: Task) -> None:
        """Aggregate a sweep master's state from its subtasks."""
        subs = task.subtasks
        if not subs:
            return
        states = {s.state for s in subs}
        if all(s.is_terminal() for s in states):
            if TaskState.FAILED in states:
                new = TaskState.FAILED
            elif TaskState.CANCELED in states:
                new = TaskState.CANCELED
            else:
                new = TaskState.FINISHED
            failed = [s for s in subs if s.state is TaskState.FAILED]
            task.error_message = (
                f"{len(failed)} of {len(subs)} subtasks failed." if failed else None
            )
        elif any(s.state in (TaskState.RUNNING, TaskState.DISPATCHING) for s in subs) or any(
            s.is_terminal() for s in states
        ):
            new = TaskState.RUNNING
        else:
            new = min(states, key=int)
        if new is TaskState.RUNNING and task.start_time is None:
            task.start_time = self.now()
        self.set_unit_state(task, new)

    def stop_unit(
        self, job: Job, task: Task, unit: Unit, state: TaskState, error: str | None = None
    ) -> None:
        """End ``unit`` in ``state``: release its cores, kill its process if one runs."""
        if unit.state in (TaskState.RUNNING, TaskState.DISPATCHING):
            self.release(job, task, unit)
        if error is not None:
            unit.error_message = error
        self.set_unit_state(unit, state)
        if isinstance(unit, Subtask):
            self.refresh_master(task)

    def release(self, job: Job, task: Task, unit: Unit) -> None:
        key = self._key(job, task, unit)
        if self.running.pop(key, None) is not None and not self.simulate:
            self.kills.append(key)
        if unit.node is not None:
            node = self.nodes.get(unit.node.lower())
            if node is not None:
                node.busy.difference_update(unit.core_ids)
        unit.sim_end = None

    @staticmethod
    def _key(job: Job, task: Task, unit: Unit) -> RunKey:
        inst = unit.instance_id if isinstance(unit, Subtask) else 0
        return (job.id, task.nice_id, inst, unit.run_token)

    def allocated_nodes(self, job: Job) -> list[str]:
        names: set[str] = set()
        for t in job.tasks:
            for u in t.units():
                if u.node is not None and u.state is TaskState.RUNNING:
                    names.add(u.node)
        return sorted(names)

    # --- the step loop --------------------------------------------------------------------------

    def take_actions(self) -> tuple[list[Launch], list[RunKey]]:
        """Launches and kills queued for the ``local`` runner since the last call."""
        launches, kills = self.launches, self.kills
        self.launches, self.kills = [], []
        return launches, kills

    def complete_unit(
        self, key: RunKey, exit_code: int | None, output: str | None, error: str | None
    ) -> None:
        """The ``local`` runner reports that the run ``key`` ended."""
        entry = self.running.get(key)
        if entry is None:
            return  # canceled or requeued meanwhile
        self.finish_unit(*entry, exit_code, output, error)
        self.wake()

    def finish_unit(
        self,
        job: Job,
        task: Task,
        unit: Unit,
        exit_code: int | None,
        output: str | None,
        error: str | None,
    ) -> None:
        """A run ended: record the outcome and apply the job's failure policy."""
        self.release(job, task, unit)
        unit.exit_code = exit_code
        unit.output = output
        ok = (
            error is None
            and exit_code is not None
            and self.exit_code_ok(job, task, unit, exit_code)
        )
        if not ok and error is None:
            error = f"Task failed with exit code {exit_code}."
        unit.error_message = None if ok else error
        self.set_unit_state(unit, TaskState.FINISHED if ok else TaskState.FAILED)
        if isinstance(unit, Subtask):
            self.refresh_master(task)
        if not ok:
            fail_now = bool(job.props.get("FailOnTaskFailure")) or bool(
                task.props.get("FailJobOnFailure")
            )
            if fail_now and job.state is JobState.RUNNING:
                self.fail_job(job, f"The job failed because task {task.nice_id} failed.")

    def exit_code_ok(self, job: Job, task: Task, unit: Unit, code: int) -> bool:
        """``code`` is valid per ``TaskValidExitCodes`` / ``JobValidExitCodes`` (default 0)."""
        spec = task_value(job, task, unit, "TaskValidExitCodes") or job.props.get(
            "JobValidExitCodes"
        )
        try:
            ranges = parse_exit_codes(str(spec)) if spec else [(0, 0)]
        except ValueError:
            ranges = [(0, 0)]
        return any(lo <= code <= hi for lo, hi in ranges)

    def fail_job(self, job: Job, message: str) -> None:
        for t in job.tasks:
            for u in t.units():
                if not u.state.is_terminal():
                    self.stop_unit(job, t, u, TaskState.CANCELED)
            if t.subtasks:
                self.refresh_master(t)
        job.error_message = message
        self.set_job_state(job, JobState.FINISHING)
        self.set_job_state(job, JobState.FAILED)

    # --- lists ----------------------------------------------------------------------------------

    def task_rows(self, job: Job, expand: bool) -> list[tuple[Task, Unit]]:
        """Rows of Get Task List: subtasks replace their master when ``expand`` (§8.3)."""
        rows: list[tuple[Task, Unit]] = []
        for task in job.tasks:
            if expand and task.subtasks is not None:
                rows.extend((task, s) for s in task.subtasks)
            else:
                rows.append((task, task))
        return rows

    @staticmethod
    def find_row(job: Job, key: tuple[int, int]) -> tuple[Task, Unit] | None:
        task = job.task(key[0])
        if task is None:
            return None
        if key[1] == 0:
            return task, task
        if task.subtasks is None or not 1 <= key[1] <= len(task.subtasks):
            return None
        return task, task.subtasks[key[1] - 1]
