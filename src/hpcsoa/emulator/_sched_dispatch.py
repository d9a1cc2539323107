"""The time-driven part of the emulated scheduler: ``step()``, dispatch, job completion.

``step()`` moves submitted jobs through validation to Queued, ends simulated runs whose time
is up, starts queued work on free cores (highest priority first, then submission order,
honouring ``DependsOn``, ``ParentJobIds``, ``HoldUntil``, node groups and required nodes)
and finishes jobs whose work is done. With the ``local`` runner it queues :class:`Launch`
actions for the driver in ``_task_runner`` instead of simulating.
"""

from __future__ import annotations

from datetime import datetime

from ..protocol._catalog import JobPriority, JobState, NodeState, TaskState, UnitType
from ._sched_engine import Launch, SchedulerEngine
from ._sched_records import Job, Node, Subtask, Task, Unit, task_value
from ._task_runner import SchedulerDriver, simulate_outcome

__all__ = ["SchedulerDispatch"]


class SchedulerDispatch(SchedulerEngine):
    """Adds the step loop and the runner lifecycle to :class:`SchedulerEngine`."""

    def step(self) -> float | None:
        """Advance time-driven state; return the monotonic time of the next deadline."""
        now_m = self.clock()
        for job in list(self.active.values()):
            if job.state in (JobState.SUBMITTED, JobState.VALIDATING):
                self.set_job_state(job, JobState.VALIDATING)
                problem = self._validation_error(job)
                if problem is not None:
                    self.fail_job(job, problem)
                    continue
                self.set_job_state(job, JobState.QUEUED)
                for task in job.tasks:
                    for unit in [task, *(task.subtasks or ())]:
                        if unit.state in (TaskState.SUBMITTED, TaskState.CONFIGURING):
                            self.set_unit_state(unit, TaskState.QUEUED)
        if self.simulate:
            for job, task, unit in list(self.running.values()):
                if unit.sim_end is not None and unit.sim_end <= now_m:
                    self.finish_unit(
                        job, task, unit, unit.sim_exit, unit.sim_output, unit.sim_error
                    )
        # A job that ends can release a child job (ParentJobIds): dispatch again then.
        deadline: float | None = None
        for _ in range(8):
            deadline = self._dispatch(now_m)
            ended = [self._maybe_finish_job(job) for job in list(self.active.values())]
            if not any(ended):
                break
        sims = [u.sim_end for _, _, u in self.running.values() if u.sim_end is not None]
        if sims:
            deadline = min(sims) if deadline is None else min(deadline, *sims)
        return deadline

    @staticmethod
    def _validation_error(job: Job) -> str | None:
        # Submit does not validate (§7.6); problems surface here and fail the job.
        for suffix in ("Cores", "Nodes", "Sockets", "Memory", "CoresPerNode"):
            lo, hi = job.props.get(f"Min{suffix}"), job.props.get(f"Max{suffix}")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                return (
                    f"The job is not valid: Min{suffix} ({lo}) is greater than Max{suffix} ({hi})."
                )
        return None

    def _maybe_finish_job(self, job: Job) -> bool:
        if job.state not in (JobState.QUEUED, JobState.RUNNING):
            return False
        units = [u for t in job.tasks for u in t.units()]
        if not units or not all(u.state.is_terminal() for u in units):
            return False
        if job.props.get("RunUntilCanceled"):
            return False
        failed = sum(1 for u in units if u.state is not TaskState.FINISHED)
        if job.state is JobState.QUEUED:
            self.set_job_state(job, JobState.RUNNING)
        self.set_job_state(job, JobState.FINISHING)
        if failed:
            job.error_message = f"{failed} of {len(units)} tasks did not finish successfully."
            self.set_job_state(job, JobState.FAILED)
        else:
            self.set_job_state(job, JobState.FINISHED)
        return True

    def _dispatch(self, now_m: float) -> float | None:
        deadline: float | None = None
        now = self.now()
        order = sorted(
            (j for j in self.active.values() if j.state in (JobState.QUEUED, JobState.RUNNING)),
            key=lambda j: (-self._expanded_priority(j), j.submit_seq),
        )
        for job in order:
            if not any(n.free_cores() for n in self.nodes.values() if n.is_compute):
                break
            hold = job.props.get("HoldUntil")
            if isinstance(hold, datetime) and hold > now:
                at = now_m + (hold - now).total_seconds()
                deadline = at if deadline is None else min(deadline, at)
                continue
            if not self._parents_done(job):
                continue
            for task in job.tasks:
                for unit in task.units():
                    if unit.state is TaskState.QUEUED and self._deps_ready(job, task, unit):
                        self._try_start(job, task, unit, now_m)
        return deadline

    @staticmethod
    def _expanded_priority(job: Job) -> int:
        value = job.props.get("ExpandedPriority")
        if isinstance(value, int):
            return value
        prio = job.props.get("Priority", JobPriority.NORMAL)
        return int(prio) * 1000 if isinstance(prio, int) else 2000

    def _parents_done(self, job: Job) -> bool:
        parents = job.props.get("ParentJobIds") or []
        assert isinstance(parents, list)
        for pid in parents:
            parent = self.jobs.get(pid) if isinstance(pid, int) else None
            if parent is not None and not parent.state.is_terminal():
                return False
        return True

    def _deps_ready(self, job: Job, task: Task, unit: Unit) -> bool:
        names = task.props.get("DependsOn") or []
        assert isinstance(names, list)
        if not names:
            return True
        wanted = {str(n).lower() for n in names}
        parents = [t for t in job.tasks if str(t.props.get("Name", "")).lower() in wanted]
        if not all(p.state.is_terminal() for p in parents):
            return False
        if job.props.get("FailDependentTasks") and any(
            p.state is not TaskState.FINISHED for p in parents
        ):
            self.stop_unit(
                job, task, unit, TaskState.FAILED, "A task this task depends on did not finish."
            )
            return False
        return True

    def _cores_needed(self, job: Job, task: Task, unit: Unit, node: Node) -> int:
        sub = unit if isinstance(unit, Subtask) else None
        unit_type = job.props.get("UnitType", UnitType.CORE)
        if unit_type is UnitType.NODE:
            return node.cores
        if unit_type is UnitType.SOCKET:
            per_socket = max(1, node.cores // max(1, node.sockets))
            sockets = task_value(job, task, sub or task, "MinSockets")
            return min(node.cores, per_socket * max(1, sockets if isinstance(sockets, int) else 1))
        cores = task_value(job, task, sub or task, "MinCores")
        return min(node.cores, max(1, cores if isinstance(cores, int) else 1))

    def _candidates(self, job: Job, task: Task, unit: Unit) -> list[Node]:
        nodes = [n for n in self.nodes.values() if n.is_compute and n.state is NodeState.ONLINE]
        required = task_value(job, task, unit, "RequiredNodes") or []
        requested = job.props.get("RequestedNodes") or []
        groups = job.props.get("NodeGroups") or []
        for names in (required, requested):
            if isinstance(names, list) and names:
                wanted = {str(n).lower() for n in names}
                nodes = [n for n in nodes if n.name.lower() in wanted]
        if isinstance(groups, list) and groups:
            wanted_groups = {str(g).lower() for g in groups}
            nodes = [n for n in nodes if wanted_groups <= {g.lower() for g in n.groups}]
        return nodes

    def _try_start(self, job: Job, task: Task, unit: Unit, now_m: float) -> None:
        candidates = self._candidates(job, task, unit)
        if not candidates:
            if not any(
                n.is_compute and n.state is not NodeState.ONLINE for n in self.nodes.values()
            ):
                self.stop_unit(
                    job, task, unit, TaskState.FAILED, "No node satisfies the task's requirements."
                )
            return
        for node in candidates:
            need = self._cores_needed(job, task, unit, node)
            free = node.free_cores()
            if len(free) >= need:
                self._start(job, task, unit, node, tuple(free[:need]), now_m)
                return

    def _start(
        self, job: Job, task: Task, unit: Unit, node: Node, cores: tuple[int, ...], now_m: float
    ) -> None:
        node.busy.update(cores)
        unit.node, unit.core_ids = node.name, cores
        unit.run_token += 1
        unit.exit_code = None
        unit.output = unit.error_message = None
        unit.start_time = self.now()
        unit.end_time = None
        self.set_unit_state(unit, TaskState.RUNNING)
        if job.state is JobState.QUEUED:
            self.set_job_state(job, JobState.RUNNING)
            job.start_time = job.start_time or unit.start_time
        if isinstance(unit, Subtask):
            self.refresh_master(task)
        self.running[self._key(job, task, unit)] = (job, task, unit)
        command = str(task_value(job, task, unit, "CommandLine") or "")
        limit = task_value(job, task, unit, "RuntimeSeconds")
        limit_s = float(limit) if isinstance(limit, int) and limit > 0 else None
        if self.simulate:
            seconds, code, out, err = simulate_outcome(
                command, self.config.task_runtime_ms / 1000.0, limit_s
            )
            unit.sim_end = now_m + seconds
            unit.sim_exit, unit.sim_output, unit.sim_error = code, out, err
            return
        self.launches.append(self._launch(job, task, unit, command, limit_s))

    def _launch(
        self, job: Job, task: Task, unit: Unit, command: str, limit_s: float | None
    ) -> Launch:
        env = dict(job.env.values())
        env.update(task.env.values())
        inst = unit.instance_id if isinstance(unit, Subtask) else 0
        env.update(
            {
                "CCP_JOBID": str(job.id),
                "CCP_TASKID": str(task.nice_id),
                "CCP_TASKINSTANCEID": str(inst),
                "CCP_NUMCPUS": str(len(unit.core_ids)),
                "CCP_NODES": f"1 {unit.node} {len(unit.core_ids)}",
                "CCP_CLUSTER_NAME": self.config.cluster,
                "CCP_OWNER_SID": job.owner,
            }
        )

        def text(name: str) -> str | None:
            value = task_value(job, task, unit, name)
            return str(value) if value else None

        return Launch(
            key=self._key(job, task, unit),
            command=command,
            work_dir=text("WorkDirectory"),
            env=tuple(env.items()),
            stdin_path=text("StdInFilePath"),
            stdout_path=text("StdOutFilePath"),
            stderr_path=text("StdErrFilePath"),
            timeout_s=limit_s,
        )

    # --- runner lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the driver that calls :meth:`step` and runs local processes (idempotent)."""
        self.ensure_started()

    def ensure_started(self) -> None:
        """Start the driver if it is not running; needs a running event loop."""
        if self._driver is None:
            driver = SchedulerDriver(self)
            self._driver = driver
            driver.start()

    async def aclose(self) -> None:
        """Stop the driver and kill any local process (idempotent)."""
        driver, self._driver = self._driver, None
        if driver is not None:
            await driver.aclose()
