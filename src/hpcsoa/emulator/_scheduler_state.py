"""The emulated HPC job scheduler: jobs, tasks, subtasks, nodes (spec §6–§8, Appendix A).

Theory of operation. All state lives in one :class:`SchedulerState` and changes only through
its methods, synchronously; the clock is injected, so the whole state machine is testable
without an event loop. Operations (create, submit, cancel, ...) validate and apply at once
and raise :class:`SchedulerFault` (status, fault code, message) when refused. Time-driven
progress happens in ``step()`` (``_sched_dispatch``), which the runner's driver calls whenever
something changed and at the next deadline::

    Job:  Configuring --Submit--> Submitted -> Validating -> Queued -> Running
              -> Finishing -> Finished | Failed            (a task did not finish)
          Submitted..Running --Cancel--> Canceling -> Canceled
          Configuring --Cancel--> Canceled
          Canceled | Failed --Requeue--> Queued
          RunUntilCanceled jobs stay Running when their tasks are done.
    Task: Configuring -> Submitted -> Queued -> Running -> Finished | Failed | Canceled
          Cancel Task: -> Failed (the job then fails, §8.5)
          Requeue Task: Failed | Canceled | Queued -> Queued (active job) or Configuring
          A parametric sweep master aggregates its subtasks 1..n, created at submission.

Ownership: everyone may read every job; only the owner may change one (403 otherwise).
Set Job Properties follows the §7.5 [PROPOSAL] per-state rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from ..protocol._catalog import (
    JOB_PROPERTIES,
    TASK_PROPERTIES,
    Catalog,
    JobState,
    TaskState,
    TaskType,
)
from ._sched_dispatch import SchedulerDispatch
from ._sched_engine import HEAD_NODE, Launch, Pairs, RunKey, bad_request
from ._sched_records import (
    TASK_DEFAULTS,
    Codes,
    Job,
    SchedulerFault,
    Subtask,
    Task,
    Unit,
)

if TYPE_CHECKING:
    from ..protocol._jobxml import JobXml

__all__ = ["HEAD_NODE", "Launch", "RunKey", "SchedulerFault", "SchedulerState"]

Store = dict[str, tuple[str, str]]

MAX_SUBTASKS: Final = 100_000
MAX_MESSAGE: Final = 128
_RUNNING_SETTABLE: Final = frozenset(
    {
        "Name",
        "Project",
        "Priority",
        "ExpandedPriority",
        "Progress",
        "ProgressMessage",
        "RunUntilCanceled",
        "MinCores",
        "MaxCores",
        "MinNodes",
        "MaxNodes",
        "MinSockets",
        "MaxSockets",
    }
)
_PENDING: Final = frozenset(
    {JobState.SUBMITTED, JobState.VALIDATING, JobState.EXTERNAL_VALIDATION, JobState.QUEUED}
)
_TASK_FROZEN: Final = frozenset(
    {
        TaskState.DISPATCHING,
        TaskState.RUNNING,
        TaskState.FINISHING,
        TaskState.CANCELING,
        TaskState.FINISHED,
    }
)
_SWEEP_PROPS: Final = frozenset({"Type", "StartValue", "EndValue", "IncrementValue"})


_bad = bad_request


class SchedulerState(SchedulerDispatch):
    """The scheduler half of one emulator (see the module docstring).

    Construct with ``SchedulerState(config, clock=time.monotonic, wall_clock=None)``.
    """

    # --- lookups -------------------------------------------------------------------------------

    def job(self, job_id: int) -> Job:
        """Raises ``SchedulerFault`` 404 for an unknown job."""
        job = self.jobs.get(job_id)
        if job is None:
            raise SchedulerFault(404, Codes.JOB_NOT_FOUND, f"The job {job_id} does not exist.")
        return job

    def task(self, job_id: int, task_id: int) -> tuple[Job, Task]:
        """Raises ``SchedulerFault`` 404 for an unknown job or task."""
        job = self.job(job_id)
        task = job.task(task_id)
        if task is None:
            raise SchedulerFault(
                404, Codes.TASK_NOT_FOUND, f"The task {task_id} of job {job_id} does not exist."
            )
        return job, task

    def subtask(self, job_id: int, task_id: int, sub_id: int) -> tuple[Job, Task, Subtask]:
        """Raises ``SchedulerFault``: 404 unknown, 400 when not expanded yet (§8.9)."""
        job, task = self.task(job_id, task_id)
        if not task.is_sweep:
            raise SchedulerFault(
                404,
                Codes.SUBTASK_NOT_FOUND,
                f"The task {job_id}.{task_id} is not a parametric sweep task; it has no subtasks.",
            )
        if task.subtasks is None:
            raise _bad(
                Codes.SUBTASK_NOT_EXPANDED, "The specified subtask has not been expanded yet."
            )
        if not 1 <= sub_id <= len(task.subtasks):
            raise SchedulerFault(
                404,
                Codes.SUBTASK_NOT_FOUND,
                f"The subtask {job_id}.{task_id}.{sub_id} does not exist.",
            )
        return job, task, task.subtasks[sub_id - 1]

    @staticmethod
    def _owner(job: Job, user: str) -> None:
        if job.owner.lower() != user.lower():
            raise SchedulerFault(
                403,
                Codes.ACCESS_DENIED,
                f"Access denied: job {job.id} belongs to {job.owner}; "
                "only its owner may change it.",
            )

    @staticmethod
    def _check_sweep(props: dict[str, object]) -> None:
        if props.get("Type") is not TaskType.PARAMETRIC_SWEEP:
            return

        def get(name: str) -> int:
            value = props.get(name, TASK_DEFAULTS[name])
            assert isinstance(value, int)
            return value

        start, end, step = get("StartValue"), get("EndValue"), get("IncrementValue")
        if start > end:
            raise _bad(
                Codes.INVALID_VALUE, f"StartValue ({start}) is greater than EndValue ({end})."
            )
        if (end - start) // step + 1 > MAX_SUBTASKS:
            raise _bad(Codes.INVALID_VALUE, f"A sweep may have at most {MAX_SUBTASKS} steps.")

    def _expand(self, task: Task) -> None:
        if not task.is_sweep or task.subtasks is not None:
            return
        props = task.props
        start = props.get("StartValue", 1)
        end = props.get("EndValue", 1)
        step = props.get("IncrementValue", 1)
        assert isinstance(start, int)
        assert isinstance(end, int)
        assert isinstance(step, int)
        now = self.now()
        task.subtasks = [
            Subtask(
                state=task.state,
                create_time=now,
                submit_time=task.submit_time,
                change_time=now,
                instance_id=i,
                index=index,
            )
            for i, index in enumerate(range(start, end + 1, step), start=1)
        ]

    def _apply_job(self, job: Job, changes: dict[str, object]) -> None:
        # The run-as password is kept apart, out of reprs and renderings (write-only).
        if "Password" in changes:
            secret = changes.pop("Password")
            job.password = secret if isinstance(secret, str) else None
        self._apply(job.props, changes)

    # --- jobs ----------------------------------------------------------------------------------

    def create_job(self, user: str, pairs: Pairs) -> int:
        """Create Job (§7.1): a Configuring job owned by ``user``; returns its id."""
        changes = self.coerce(JOB_PROPERTIES, pairs, "create", "Create Job")
        now = self.now()
        job = Job(id=self.allocate_job_id(), owner=user, create_time=now, change_time=now)
        self._apply_job(job, changes)
        self.jobs[job.id] = job
        return job.id

    def create_job_from_xml(self, user: str, doc: JobXml) -> int:
        """Create Job From XML (§7.2): settable attributes are used, the rest ignored."""

        def settable(
            catalog: Catalog, attrs: Iterable[tuple[str, str]]
        ) -> list[tuple[str, str | None]]:
            out: list[tuple[str, str | None]] = []
            for name, value in attrs:
                spec = catalog.lookup(name)
                if spec is not None and spec.create:
                    out.append((name, value))
            return out

        job_id = self.create_job(user, settable(JOB_PROPERTIES, doc.attributes))
        try:
            job = self.jobs[job_id]
            self.set_pairs(user, job, job.custom, doc.custom_properties, env=False)
            self.set_pairs(user, job, job.env, doc.environment, env=True)
            for t in doc.tasks:
                self.add_task(
                    user,
                    job_id,
                    settable(TASK_PROPERTIES, t.attributes),
                    custom=t.custom_properties,
                    env=t.environment,
                )
        except SchedulerFault:
            del self.jobs[job_id]
            raise
        return job_id

    def set_job_properties(self, user: str, job_id: int, pairs: Pairs) -> None:
        """Set Job Properties (§7.5) with the per-state rules of the [PROPOSAL]."""
        job = self.job(job_id)
        self._owner(job, user)
        changes = self.coerce(JOB_PROPERTIES, pairs, "set", "Set Job Properties")
        state = job.state
        if state.is_terminal() or state is JobState.CANCELING:
            raise _bad(
                Codes.MODIFY_INVALID_STATE,
                f"The properties of a job in the {state.wire_name} state cannot be changed.",
            )
        if state is not JobState.CONFIGURING:
            allowed = _RUNNING_SETTABLE - ({"Name"} if state in _PENDING else set())
            for name in changes:
                if name not in allowed:
                    raise _bad(
                        Codes.MODIFY_INVALID_STATE,
                        f"The property {name} cannot be changed "
                        f"while the job is {state.wire_name}.",
                    )
        self._apply_job(job, changes)
        job.change_time = self.now()
        self.wake()

    def submit_job(self, user: str, job_id: int, pairs: Pairs) -> None:
        """Submit Job (§7.6): only from Configuring, and only with at least one task.

        The job itself is validated later, as the real service does: an inconsistent job
        (e.g. ``MinCores`` > ``MaxCores``) ends Failed after Validating.
        """
        job = self.job(job_id)
        self._owner(job, user)
        if job.state is not JobState.CONFIGURING:
            raise _bad(
                Codes.SUBMIT_INVALID_STATE,
                f"The job cannot be submitted because it is in the {job.state.wire_name} state. "
                "Only jobs in the Configuring state can be submitted.",
            )
        changes = self.coerce(JOB_PROPERTIES, pairs, "submit", "Submit Job")
        if not job.tasks:
            raise _bad(Codes.NO_TASKS, "The job has no tasks. Add a task before submitting it.")
        self._apply_job(job, changes)
        now = self.now()
        job.submit_time = now
        job.submit_seq = self.next_seq()
        self.set_job_state(job, JobState.SUBMITTED)
        for task in job.tasks:
            self._expand(task)
            for unit in [task, *(task.subtasks or ())]:
                unit.submit_time = now
                self.set_unit_state(unit, TaskState.SUBMITTED)
        self.active[job.id] = job
        self.wake()

    def cancel_job(self, user: str, job_id: int, message: str = "", forced: bool = False) -> None:
        """Cancel Job (§7.7). ``forced`` changes nothing here: runs are stopped at once."""
        del forced
        job = self.job(job_id)
        self._owner(job, user)
        self._check_message(message)
        state = job.state
        if state.is_terminal() or state is JobState.CANCELING:
            raise _bad(
                Codes.CANCEL_INVALID_STATE,
                f"Jobs in the {state.wire_name} state cannot be canceled.",
            )
        if state is not JobState.CONFIGURING:
            self.set_job_state(job, JobState.CANCELING)
        for task in job.tasks:
            for unit in [*(task.subtasks or ()), task]:
                if not unit.state.is_terminal():
                    self.stop_unit(job, task, unit, TaskState.CANCELED)
        job.error_message = message or f"The job was canceled by {user}."
        self.set_job_state(job, JobState.CANCELED)
        if job.is_service and self.on_service_job_canceled is not None:
            self.on_service_job_canceled(job.id)
        self.wake()

    def requeue_job(self, user: str, job_id: int) -> None:
        """Requeue Job (§7.8): Canceled or Failed → Queued; unfinished work runs again."""
        job = self.job(job_id)
        self._owner(job, user)
        if job.state not in (JobState.CANCELED, JobState.FAILED) or job.is_service:
            raise _bad(
                Codes.REQUEUE_INVALID_STATE,
                "Only jobs that are in the Canceled or Failed state can be requeued. "
                f"The job is {job.state.wire_name}. To run a copy of it, get it with "
                "Render=HpcJobXml and post that XML to Jobs/JobFile.",
            )
        if not job.tasks:
            raise _bad(Codes.NO_TASKS, "The job has no tasks. Add a task before requeueing it.")
        now = self.now()
        job.requeue_count += 1
        job.error_message = None
        job.end_time = None
        job.submit_time = job.submit_time or now
        if job.submit_seq == 0:
            job.submit_seq = self.next_seq()
        for task in job.tasks:
            self._expand(task)
            for unit in task.units():
                if unit.state is not TaskState.FINISHED:
                    self._reset(unit, TaskState.QUEUED)
            if task.subtasks is not None:
                self.refresh_master(task)
        self.set_job_state(job, JobState.QUEUED)
        self.active[job.id] = job
        self.wake()

    # --- tasks ---------------------------------------------------------------------------------

    def add_task(
        self,
        user: str,
        job_id: int,
        pairs: Pairs,
        *,
        custom: Iterable[tuple[str, str]] = (),
        env: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Add Task (§8.1); returns the job-relative task id (``JobTaskId``)."""
        job = self.job(job_id)
        self._owner(job, user)
        if job.is_service or job.state.is_terminal() or job.state is JobState.CANCELING:
            kind = (
                "a service job" if job.is_service else f"a job in the {job.state.wire_name} state"
            )
            raise _bad(Codes.MODIFY_INVALID_STATE, f"Tasks cannot be added to {kind}.")
        changes = self.coerce(TASK_PROPERTIES, pairs, "create", "Add Task")
        now = self.now()
        task = Task(
            job_id=job.id,
            nice_id=len(job.tasks) + 1,
            global_id=self.next_task_global_id(),
            create_time=now,
            change_time=now,
        )
        self._apply(task.props, changes)
        self._check_sweep(task.props)
        self.set_pairs(user, job, task.custom, custom, env=False)
        self.set_pairs(user, job, task.env, env, env=True)
        if job.state is not JobState.CONFIGURING:
            target = (
                TaskState.SUBMITTED
                if job.state in (JobState.SUBMITTED, JobState.VALIDATING)
                else TaskState.QUEUED
            )
            task.submit_time = now
            self.set_unit_state(task, target)
            self._expand(task)
        job.tasks.append(task)
        self.wake()
        return task.nice_id

    def _modifiable(self, unit: Unit, what: str) -> None:
        if unit.state in _TASK_FROZEN:
            raise _bad(
                Codes.MODIFY_INVALID_STATE,
                f"The properties of a {what} in the {unit.state.wire_name} state "
                "cannot be changed.",
            )

    def set_task_properties(self, user: str, job_id: int, task_id: int, pairs: Pairs) -> None:
        """Set Task Properties (§8.4)."""
        job, task = self.task(job_id, task_id)
        self._owner(job, user)
        self._modifiable(task, "task")
        changes = self.coerce(TASK_PROPERTIES, pairs, "set", "Set Task Properties")
        if task.subtasks is not None and _SWEEP_PROPS & changes.keys():
            raise _bad(
                Codes.MODIFY_INVALID_STATE,
                "The sweep of a parametric task cannot be changed after it has been expanded.",
            )
        merged = dict(task.props)
        self._apply(merged, changes)
        self._check_sweep(merged)
        task.props = merged
        task.change_time = self.now()
        self.wake()

    def set_subtask_properties(
        self, user: str, job_id: int, task_id: int, sub_id: int, pairs: Pairs
    ) -> None:
        """Set Subtask Properties (§8.9): applies to that subtask only ([PROPOSAL])."""
        job, _task, sub = self.subtask(job_id, task_id, sub_id)
        self._owner(job, user)
        self._modifiable(sub, "subtask")
        changes = self.coerce(TASK_PROPERTIES, pairs, "set", "Set Subtask Properties")
        bad = sorted(_SWEEP_PROPS & changes.keys())
        if bad:
            raise _bad(Codes.INVALID_PROPERTY, f"The property {bad[0]} cannot be set on a subtask.")
        self._apply(sub.overrides, changes)
        sub.change_time = self.now()
        self.wake()

    def cancel_task(self, user: str, job_id: int, task_id: int, message: str = "") -> None:
        """Cancel Task (§8.5): the task ends Failed with the reason as its ErrorMessage."""
        job, task = self.task(job_id, task_id)
        self._cancel_units(user, job, task, [*(task.subtasks or ()), task], message, "task")

    def cancel_subtask(
        self, user: str, job_id: int, task_id: int, sub_id: int, message: str = ""
    ) -> None:
        """Cancel Subtask (§8.9)."""
        job, task, sub = self.subtask(job_id, task_id, sub_id)
        self._cancel_units(user, job, task, [sub], message, "subtask")

    def _cancel_units(
        self, user: str, job: Job, task: Task, units: list[Unit], message: str, what: str
    ) -> None:
        self._owner(job, user)
        self._check_message(message)
        head = units[-1] if what == "task" else units[0]
        if head.state.is_terminal():
            raise _bad(
                Codes.CANCEL_INVALID_STATE,
                f"{what.capitalize()}s in the {head.state.wire_name} state cannot be canceled.",
            )
        reason = message or f"The {what} was canceled by {user}."
        end = TaskState.CANCELED if job.state is JobState.CONFIGURING else TaskState.FAILED
        for unit in units:
            if not unit.state.is_terminal():
                self.stop_unit(job, task, unit, end, reason)
        if task.subtasks is not None:
            self.refresh_master(task)
        self.wake()

    def requeue_task(self, user: str, job_id: int, task_id: int) -> None:
        """Requeue Task (§8.6)."""
        job, task = self.task(job_id, task_id)
        self._requeue_units(user, job, task, task, task.units(), "task")

    def requeue_subtask(self, user: str, job_id: int, task_id: int, sub_id: int) -> None:
        """Requeue Subtask (§8.9)."""
        job, task, sub = self.subtask(job_id, task_id, sub_id)
        self._requeue_units(user, job, task, sub, [sub], "subtask")

    def _requeue_units(
        self, user: str, job: Job, task: Task, head: Unit, units: list[Unit], what: str
    ) -> None:
        self._owner(job, user)
        if head.state not in (TaskState.FAILED, TaskState.CANCELED, TaskState.QUEUED):
            raise _bad(
                Codes.REQUEUE_INVALID_STATE,
                f"Only {what}s in the Failed, Canceled or Queued state can be requeued. "
                f"The {what} is {head.state.wire_name}.",
            )
        if job.state in (JobState.QUEUED, JobState.RUNNING):
            target = TaskState.QUEUED
        elif job.state in (JobState.SUBMITTED, JobState.VALIDATING):
            target = TaskState.SUBMITTED
        else:
            target = TaskState.CONFIGURING
        for unit in units:
            if unit.state is not TaskState.FINISHED:
                if unit.state is TaskState.RUNNING:
                    self.release(job, task, unit)
                self._reset(unit, target)
        if task.subtasks is not None:
            self.refresh_master(task)
        self.wake()

    def _reset(self, unit: Unit, state: TaskState) -> None:
        if unit.state in (TaskState.FAILED, TaskState.CANCELED):
            unit.requeue_count += 1
        unit.exit_code = None
        unit.output = unit.error_message = None
        unit.start_time = unit.end_time = None
        unit.node, unit.core_ids = None, ()
        self.set_unit_state(unit, state)

    @staticmethod
    def _check_message(message: str) -> None:
        if len(message) > MAX_MESSAGE:
            raise _bad(
                Codes.INVALID_ARGUMENT,
                f"The message is {len(message)} characters long; "
                f"at most {MAX_MESSAGE} are allowed.",
            )

    # --- custom properties and environment variables ---------------------------------------------

    @staticmethod
    def get_pairs(
        store: Store, names: Sequence[str] | None, *, missing: str | None
    ) -> list[tuple[str, str | None]]:
        """Entries of ``store`` (all, or ``names`` in order; absent ones get ``missing``)."""
        if names is None:
            return list(store.values())
        out: list[tuple[str, str | None]] = []
        for name in names:
            entry = store.get(name.lower())
            out.append(entry if entry is not None else (name, missing))
        return out

    def set_pairs(
        self,
        user: str,
        job: Job,
        store: Store,
        pairs: Iterable[tuple[str, str | None]],
        *,
        env: bool,
    ) -> None:
        """Add or overwrite entries; ``None`` removes, and for variables so does ``""``."""
        self._owner(job, user)
        items = list(pairs)
        for name, _ in items:
            if not name.strip() or (env and ("=" in name or "\x00" in name)):
                what = "environment variable" if env else "custom property"
                raise _bad(Codes.INVALID_ARGUMENT, f"{name!r} is not a valid {what} name.")
        for name, value in items:
            if value is None or (env and value == ""):
                store.pop(name.lower(), None)
            else:
                store[name.lower()] = (name, value)
