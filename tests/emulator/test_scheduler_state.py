"""The emulated scheduler as a pure state machine (emulator/_scheduler_state.py).

Synchronous tests with an injected clock: operations apply at once, ``step()`` does the
time-driven part (queueing, simulated runs, dispatch onto cores, job completion).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from hpcsoa.emulator._config import EmulatorConfig
from hpcsoa.emulator._sched_queries import QueryStore, parse_filter, sort_key
from hpcsoa.emulator._sched_records import Codes, parse_exit_codes, sweep_substitute
from hpcsoa.emulator._scheduler_state import SchedulerFault, SchedulerState
from hpcsoa.emulator._task_runner import simulate_outcome
from hpcsoa.protocol._catalog import JobPriority, JobState, NodeState, TaskState
from hpcsoa.protocol._jobxml import JobXml, TaskXml

ALICE = "HPCLAB\\alice"
BOB = "HPCLAB\\bob"
CANCELED_CODE = -2147220984


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(clock: Clock) -> Callable[..., SchedulerState]:
    def _make(**cfg: Any) -> SchedulerState:
        base = {"nodes": 2, "cores_per_node": 2, "task_runtime_ms": 100}
        base.update(cfg)
        return SchedulerState(EmulatorConfig(**base), clock)

    return _make


@pytest.fixture
def s(make: Callable[..., SchedulerState]) -> SchedulerState:
    return make()


def run_until_idle(s: SchedulerState, clock: Clock, limit: int = 200) -> None:
    """Step, jumping the clock to each deadline, until nothing is pending."""
    for _ in range(limit):
        deadline = s.step()
        if deadline is None:
            return
        clock.t = max(clock.t, deadline)
    raise AssertionError("scheduler did not settle")


def fault(fn: Callable[..., object], *args: Any) -> SchedulerFault:
    with pytest.raises(SchedulerFault) as info:
        fn(*args)
    return info.value


def new_job(s: SchedulerState, *commands: str, user: str = ALICE, **props: str) -> int:
    job_id = s.create_job(user, list(props.items()))
    for cmd in commands:
        s.add_task(user, job_id, [("CommandLine", cmd)])
    return job_id


# --- jobs: creation and properties --------------------------------------------------------------


def test_create_job_defaults_and_case_insensitive_names(s: SchedulerState) -> None:
    job_id = s.create_job(ALICE, [("name", "nightly"), ("PRIORITY", "0"), ("unittype", "2")])
    job = s.job(job_id)
    assert job.state is JobState.CONFIGURING
    assert job.owner == ALICE
    assert job.props["Name"] == "nightly"
    assert job.props["Priority"] is JobPriority.LOWEST
    assert job.props["ExpandedPriority"] == 0
    assert job.create_time is not None
    assert s.create_job(ALICE, []) == job_id + 1  # one id sequence


@pytest.mark.parametrize(
    ("pairs", "code", "text"),
    [
        ([("Bogus", "1")], Codes.INVALID_PROPERTY, "Bogus is not a valid job property"),
        ([("State", "Running")], Codes.INVALID_PROPERTY, "cannot be set by Create Job"),
        ([("HoldUntil", "1/1/2030")], Codes.INVALID_PROPERTY, "HoldUntil"),
        ([("MinCores", "many")], Codes.INVALID_VALUE, "MinCores"),
        ([("MinCores", "-1")], Codes.INVALID_VALUE, "outside"),
        ([("Priority", "Urgent")], Codes.INVALID_VALUE, "Priority"),
        ([("Progress", "101")], Codes.INVALID_VALUE, "Progress"),
        ([("JobTemplate", "GPU")], Codes.INVALID_VALUE, "job template"),
        ([("NodeGroups", "NoSuchGroup")], Codes.INVALID_VALUE, "node group"),
        ([("RequestedNodes", "CN99")], Codes.INVALID_VALUE, "node"),
        ([("JobValidExitCodes", "0,x")], Codes.INVALID_VALUE, "exit code"),
        ([("ParentJobIds", "777")], Codes.INVALID_VALUE, "777"),
        ([("RunUntilCanceled", "1")], Codes.INVALID_VALUE, "RunUntilCanceled"),
    ],
)
def test_create_job_rejects(
    s: SchedulerState, pairs: list[tuple[str, str]], code: int, text: str
) -> None:
    err = fault(s.create_job, ALICE, pairs)
    assert (err.status, err.code) == (400, code)
    assert text in err.message
    assert s.jobs == {}


def test_canonical_values(s: SchedulerState) -> None:
    job_id = s.create_job(ALICE, [("nodegroups", "computenodes"), ("jobtemplate", "default")])
    assert s.job(job_id).props["NodeGroups"] == ["ComputeNodes"]
    assert s.job(job_id).props["JobTemplate"] == "Default"


def test_priority_and_expanded_priority_are_linked(s: SchedulerState) -> None:
    job_id = s.create_job(ALICE, [("ExpandedPriority", "3500")])
    assert s.job(job_id).props["Priority"] is JobPriority.ABOVE_NORMAL
    s.set_job_properties(ALICE, job_id, [("Priority", "Highest")])
    assert s.job(job_id).props["ExpandedPriority"] == 4000


def test_unknown_job_task_subtask(s: SchedulerState) -> None:
    assert fault(s.job, 5).status == 404
    job_id = new_job(s, "echo")
    err = fault(s.task, job_id, 9)
    assert (err.status, err.code) == (404, Codes.TASK_NOT_FOUND)
    err = fault(s.subtask, job_id, 1, 1)
    assert (err.status, err.code) == (404, Codes.SUBTASK_NOT_FOUND)


def test_only_the_owner_changes_a_job(s: SchedulerState) -> None:
    job_id = new_job(s, "echo")
    for call in (
        lambda: s.set_job_properties(BOB, job_id, [("Name", "x")]),
        lambda: s.submit_job(BOB, job_id, []),
        lambda: s.cancel_job(BOB, job_id),
        lambda: s.add_task(BOB, job_id, []),
        lambda: s.set_pairs(BOB, s.job(job_id), s.job(job_id).env, [("A", "1")], env=True),
    ):
        err = fault(call)
        assert (err.status, err.code) == (403, Codes.ACCESS_DENIED)
    s.cancel_job("hpclab\\ALICE", job_id)  # user names compare case-insensitively


# --- the lifecycle -----------------------------------------------------------------------------


def test_submit_rules(s: SchedulerState) -> None:
    empty = s.create_job(ALICE, [])
    err = fault(s.submit_job, ALICE, empty, [])
    assert (err.status, err.code) == (400, Codes.NO_TASKS)
    invalid = new_job(s, "echo hi", MinCores="4", MaxCores="2")
    s.submit_job(ALICE, invalid, [])  # accepted: Submit does not validate (§7.6) ...
    s.step()
    job = s.job(invalid)
    assert job.state is JobState.FAILED  # ... validation fails the job
    assert job.error_message is not None
    assert "MinCores (4) is greater than MaxCores (2)" in job.error_message
    assert job.tasks[0].state is TaskState.CANCELED
    job_id = new_job(s, "echo hi", MinCores="4", MaxCores="2")
    s.submit_job(ALICE, job_id, [("MinCores", "1"), ("Password", "pw-Secret-1")])
    assert s.job(job_id).password == "pw-Secret-1"
    assert "pw-Secret-1" not in repr(s.job(job_id))
    assert s.job(job_id).state is JobState.SUBMITTED
    err = fault(s.submit_job, ALICE, job_id, [])
    assert (err.status, err.code) == (400, Codes.SUBMIT_INVALID_STATE)
    assert "Submitted" in err.message


def test_job_runs_to_finished(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "echo hello", "exit 0")
    s.submit_job(ALICE, job_id, [])
    s.step()
    job = s.job(job_id)
    assert job.state is JobState.RUNNING
    assert [t.state for t in job.tasks] == [TaskState.RUNNING, TaskState.RUNNING]
    assert s.allocated_nodes(job) == ["CN01"]
    run_until_idle(s, clock)
    assert job.state is JobState.FINISHED
    assert job.previous_state is JobState.FINISHING
    assert job.end_time is not None
    assert job.start_time is not None
    assert job.tasks[0].output == "hello\n"
    assert job.tasks[0].exit_code == 0
    assert job.tasks[0].state is TaskState.FINISHED
    assert s.active == {}
    assert s.running == {}
    assert all(not n.busy for n in s.nodes.values())


def test_failed_task_fails_the_job_at_the_end(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "exit 3", "sleep 1")
    s.submit_job(ALICE, job_id, [])
    s.step()
    clock.t += 0.5
    s.step()
    job = s.job(job_id)
    assert job.tasks[0].state is TaskState.FAILED
    assert job.tasks[0].exit_code == 3
    assert job.state is JobState.RUNNING  # the other task still runs
    run_until_idle(s, clock)
    assert job.state is JobState.FAILED
    assert job.error_message == "1 of 2 tasks did not finish successfully."


def test_fail_on_task_failure_stops_the_job_at_once(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "fail now", "sleep 30", FailOnTaskFailure="true")
    s.submit_job(ALICE, job_id, [])
    s.step()
    clock.t += 0.2
    s.step()
    job = s.job(job_id)
    assert job.state is JobState.FAILED
    assert job.tasks[0].state is TaskState.FAILED
    assert job.tasks[1].state is TaskState.CANCELED
    assert s.running == {}


def test_valid_exit_codes(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "exit 3", JobValidExitCodes="0,2..4")
    s.submit_job(ALICE, job_id, [])
    run_until_idle(s, clock)
    assert s.job(job_id).state is JobState.FINISHED


def test_runtime_limit(s: SchedulerState, clock: Clock) -> None:
    job_id = s.create_job(ALICE, [])
    s.add_task(ALICE, job_id, [("CommandLine", "sleep 60"), ("RuntimeSeconds", "2")])
    s.submit_job(ALICE, job_id, [])
    s.step()
    clock.t += 2.0
    s.step()
    task = s.job(job_id).tasks[0]
    assert task.state is TaskState.FAILED
    assert task.error_message is not None
    assert "maximum run time of 2 seconds" in task.error_message


def test_cores_bound_concurrency_and_priority_orders_dispatch(
    make: Callable[..., SchedulerState], clock: Clock
) -> None:
    s = make(nodes=1, cores_per_node=2)
    low = new_job(s, "sleep 1", "sleep 1", "sleep 1")
    high = new_job(s, "sleep 1", Priority="Highest")
    s.submit_job(ALICE, low, [])
    s.submit_job(ALICE, high, [])
    s.step()
    assert len(s.running) == 2  # two cores
    assert s.job(high).tasks[0].state is TaskState.RUNNING
    assert [t.state for t in s.job(low).tasks].count(TaskState.RUNNING) == 1
    run_until_idle(s, clock)
    assert s.job(low).state is JobState.FINISHED
    assert s.job(high).state is JobState.FINISHED


def test_multi_core_tasks_and_node_unit_type(make: Callable[..., SchedulerState]) -> None:
    s = make(nodes=2, cores_per_node=4)
    job_id = s.create_job(ALICE, [("UnitType", "Node")])
    s.add_task(ALICE, job_id, [("CommandLine", "sleep 1")])
    s.add_task(ALICE, job_id, [("CommandLine", "sleep 1")])
    s.add_task(ALICE, job_id, [("CommandLine", "sleep 1")])
    s.submit_job(ALICE, job_id, [])
    s.step()
    tasks = s.job(job_id).tasks
    assert [len(t.core_ids) for t in tasks[:2]] == [4, 4]
    assert tasks[2].state is TaskState.QUEUED


def test_depends_on_orders_tasks(s: SchedulerState, clock: Clock) -> None:
    job_id = s.create_job(ALICE, [])
    s.add_task(ALICE, job_id, [("Name", "second"), ("DependsOn", "first")])
    s.add_task(ALICE, job_id, [("Name", "first"), ("CommandLine", "sleep 1")])
    s.submit_job(ALICE, job_id, [])
    s.step()
    first, second = s.job(job_id).tasks[1], s.job(job_id).tasks[0]
    assert (first.state, second.state) == (TaskState.RUNNING, TaskState.QUEUED)
    run_until_idle(s, clock)
    assert second.start_time is not None
    assert first.end_time is not None
    assert second.start_time >= first.end_time


def test_hold_until_and_parent_jobs(s: SchedulerState, clock: Clock) -> None:
    parent = new_job(s, "sleep 5")
    child = new_job(s, "echo", ParentJobIds=str(parent))
    s.submit_job(ALICE, parent, [])
    s.submit_job(ALICE, child, [])
    s.step()
    assert s.job(child).state is JobState.QUEUED
    run_until_idle(s, clock)
    assert s.job(child).state is JobState.FINISHED
    held = new_job(s, "echo")
    hold = s.now().replace(year=s.now().year + 1)
    s.submit_job(ALICE, held, [("HoldUntil", f"{hold:%m/%d/%Y %H:%M:%S}")])
    deadline = s.step()
    assert s.job(held).state is JobState.QUEUED
    assert deadline is not None
    assert deadline > clock.t + 86400


# --- cancel and requeue ---------------------------------------------------------------------------


def test_cancel_configuring_and_cancel_twice(s: SchedulerState) -> None:
    job_id = new_job(s, "echo")
    s.cancel_job(ALICE, job_id, "no longer needed")
    job = s.job(job_id)
    assert job.state is JobState.CANCELED
    assert job.error_message == "no longer needed"
    assert job.tasks[0].state is TaskState.CANCELED
    err = fault(s.cancel_job, ALICE, job_id)
    assert (err.status, err.code) == (400, CANCELED_CODE)
    assert err.message == "Jobs in the Canceled state cannot be canceled."
    err = fault(s.cancel_job, ALICE, job_id, "x" * 129)
    assert err.code == Codes.INVALID_ARGUMENT


def test_cancel_running_job_goes_through_canceling(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "sleep 10")
    s.submit_job(ALICE, job_id, [])
    s.step()
    s.cancel_job(ALICE, job_id)
    job = s.job(job_id)
    assert (job.state, job.previous_state) == (JobState.CANCELED, JobState.CANCELING)
    assert job.error_message == f"The job was canceled by {ALICE}."
    assert job.tasks[0].state is TaskState.CANCELED
    assert s.running == {}
    assert all(not n.busy for n in s.nodes.values())


def test_requeue_rules(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "echo ok", "exit 1")
    err = fault(s.requeue_job, ALICE, job_id)
    assert (err.status, err.code) == (400, Codes.REQUEUE_INVALID_STATE)
    assert err.message.startswith(
        "Only jobs that are in the Canceled or Failed state can be requeued"
    )
    assert "Jobs/JobFile" in err.message
    s.submit_job(ALICE, job_id, [])
    run_until_idle(s, clock)
    job = s.job(job_id)
    assert job.state is JobState.FAILED
    first_end = job.tasks[0].end_time
    s.set_task_properties(ALICE, job_id, 2, [("CommandLine", "exit 0")])
    s.requeue_job(ALICE, job_id)
    assert (job.state, job.requeue_count) == (JobState.QUEUED, 1)
    assert job.tasks[0].state is TaskState.FINISHED  # finished work is kept
    assert (job.tasks[1].state, job.tasks[1].requeue_count) == (TaskState.QUEUED, 1)
    run_until_idle(s, clock)
    assert job.state is JobState.FINISHED
    assert job.tasks[0].end_time == first_end
    err = fault(s.requeue_job, ALICE, job_id)
    assert "The job is Finished" in err.message


def test_cancel_task_fails_it_and_the_job(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "sleep 10")
    s.submit_job(ALICE, job_id, [])
    s.step()
    s.cancel_task(ALICE, job_id, 1, "stop it")
    task = s.job(job_id).tasks[0]
    assert (task.state, task.error_message) == (TaskState.FAILED, "stop it")
    s.step()
    assert s.job(job_id).state is JobState.FAILED
    err = fault(s.cancel_task, ALICE, job_id, 1)
    assert (err.code, err.message) == (
        CANCELED_CODE,
        "Tasks in the Failed state cannot be canceled.",
    )


def test_run_until_canceled_job_keeps_running_and_requeued_task_runs_again(
    s: SchedulerState, clock: Clock
) -> None:
    job_id = new_job(s, "sleep 10", RunUntilCanceled="True")
    s.submit_job(ALICE, job_id, [])
    s.step()
    s.cancel_task(ALICE, job_id, 1)
    s.step()
    job = s.job(job_id)
    assert job.state is JobState.RUNNING
    s.requeue_task(ALICE, job_id, 1)
    assert job.tasks[0].state is TaskState.QUEUED
    s.step()
    assert job.tasks[0].state is TaskState.RUNNING
    err = fault(s.requeue_task, ALICE, job_id, 1)
    assert (err.code, "The task is Running" in err.message) == (Codes.REQUEUE_INVALID_STATE, True)
    s.add_task(ALICE, job_id, [("CommandLine", "echo late")])
    run_until_idle(s, clock)
    assert job.tasks[1].state is TaskState.FINISHED
    assert job.state is JobState.RUNNING  # until canceled
    s.set_job_properties(ALICE, job_id, [("RunUntilCanceled", "False")])
    s.step()
    assert job.state is JobState.FINISHED


def test_requeue_task_of_failed_job_goes_back_to_configuring(
    s: SchedulerState, clock: Clock
) -> None:
    job_id = new_job(s, "exit 2")
    s.submit_job(ALICE, job_id, [])
    run_until_idle(s, clock)
    s.requeue_task(ALICE, job_id, 1)
    assert s.job(job_id).tasks[0].state is TaskState.CONFIGURING


def test_set_job_properties_per_state(s: SchedulerState, clock: Clock) -> None:
    job_id = new_job(s, "sleep 100")
    s.set_job_properties(ALICE, job_id, [("MinMemory", "10"), ("Name", "a")])
    s.submit_job(ALICE, job_id, [])
    err = fault(s.set_job_properties, ALICE, job_id, [("Name", "b")])
    assert (err.code, err.message) == (
        Codes.MODIFY_INVALID_STATE,
        "The property Name cannot be changed while the job is Submitted.",
    )
    s.step()
    s.set_job_properties(
        ALICE, job_id, [("Name", "b"), ("Priority", "High" + "est"), ("Progress", "50")]
    )
    err = fault(s.set_job_properties, ALICE, job_id, [("MinMemory", "1")])
    assert "while the job is Running" in err.message
    err = fault(s.set_job_properties, ALICE, job_id, [("State", "Finished")])
    assert err.code == Codes.INVALID_PROPERTY
    s.cancel_job(ALICE, job_id)
    err = fault(s.set_job_properties, ALICE, job_id, [("Name", "c")])
    assert err.message == "The properties of a job in the Canceled state cannot be changed."
    err = fault(s.add_task, ALICE, job_id, [])
    assert err.message == "Tasks cannot be added to a job in the Canceled state."


# --- parametric sweeps ---------------------------------------------------------------------------


def test_sweep_expansion_and_substitution(s: SchedulerState, clock: Clock) -> None:
    job_id = s.create_job(ALICE, [])
    s.add_task(
        ALICE,
        job_id,
        [
            ("CommandLine", "echo * ***"),
            ("Type", "ParametricSweep"),
            ("StartValue", "2"),
            ("EndValue", "8"),
            ("IncrementValue", "3"),
        ],
    )
    err = fault(s.subtask, job_id, 1, 1)
    assert (err.status, err.code) == (400, Codes.SUBTASK_NOT_EXPANDED)
    assert "the specified subtask has not been expanded yet" in err.message.lower()
    s.submit_job(ALICE, job_id, [])
    task = s.job(job_id).tasks[0]
    assert task.subtasks is not None
    assert [(st.instance_id, st.index) for st in task.subtasks] == [(1, 2), (2, 5), (3, 8)]
    assert fault(s.subtask, job_id, 1, 4).status == 404
    run_until_idle(s, clock)
    assert [st.output for st in task.subtasks] == ["2 002\n", "5 005\n", "8 008\n"]
    assert task.state is TaskState.FINISHED
    assert s.job(job_id).state is JobState.FINISHED
    rows = s.task_rows(s.job(job_id), expand=True)
    assert len(rows) == 3
    assert len(s.task_rows(s.job(job_id), expand=False)) == 1


def test_sweep_validation(s: SchedulerState) -> None:
    job_id = s.create_job(ALICE, [])
    sweep = [("Type", "ParametricSweep")]
    err = fault(s.add_task, ALICE, job_id, [*sweep, ("StartValue", "5"), ("EndValue", "1")])
    assert "StartValue (5) is greater than EndValue (1)" in err.message
    err = fault(s.add_task, ALICE, job_id, [*sweep, ("IncrementValue", "0")])
    assert err.code == Codes.INVALID_VALUE
    err = fault(s.add_task, ALICE, job_id, [*sweep, ("EndValue", "1000000")])
    assert "at most" in err.message


def test_subtask_operations(s: SchedulerState, clock: Clock) -> None:
    job_id = s.create_job(ALICE, [])
    s.add_task(
        ALICE,
        job_id,
        [("CommandLine", "sleep 5"), ("Type", "ParametricSweep"), ("EndValue", "3")],
    )
    s.submit_job(ALICE, job_id, [])
    s.step()
    err = fault(s.set_subtask_properties, ALICE, job_id, 1, 1, [("Name", "x")])
    assert err.code == Codes.MODIFY_INVALID_STATE  # it is running
    s.cancel_subtask(ALICE, job_id, 1, 2, "enough")
    _, task, sub = s.subtask(job_id, 1, 2)
    assert (sub.state, sub.error_message) == (TaskState.FAILED, "enough")
    s.set_subtask_properties(ALICE, job_id, 1, 2, [("CommandLine", "echo fixed")])
    err = fault(s.set_subtask_properties, ALICE, job_id, 1, 2, [("EndValue", "9")])
    assert err.code == Codes.INVALID_PROPERTY
    s.requeue_subtask(ALICE, job_id, 1, 2)
    assert sub.state is TaskState.QUEUED
    assert sub.requeue_count == 1
    run_until_idle(s, clock)
    assert sub.output == "fixed\n"
    assert task.state is TaskState.FINISHED
    assert s.job(job_id).state is JobState.FINISHED


# --- custom properties, environment, XML ----------------------------------------------------------


def test_custom_properties_and_environment(s: SchedulerState) -> None:
    job_id = new_job(s, "echo")
    job = s.job(job_id)
    s.set_pairs(ALICE, job, job.env, [("PATHX", "1"), ("Other", "2")], env=True)
    s.set_pairs(ALICE, job, job.env, [("pathx", "")], env=True)  # empty removes (any case)
    assert s.get_pairs(job.env, None, missing="") == [("Other", "2")]
    assert s.get_pairs(job.env, ["other", "Missing"], missing="") == [
        ("Other", "2"),
        ("Missing", ""),
    ]
    s.set_pairs(ALICE, job, job.custom, [("k", ""), ("j", "v")], env=False)
    assert s.get_pairs(job.custom, None, missing=None) == [("k", ""), ("j", "v")]
    s.set_pairs(ALICE, job, job.custom, [("k", None)], env=False)
    assert s.get_pairs(job.custom, ["k"], missing=None) == [("k", None)]
    err = fault(lambda: s.set_pairs(ALICE, job, job.env, [("A=B", "1")], env=True))
    assert err.code == Codes.INVALID_ARGUMENT


def test_create_job_from_xml(s: SchedulerState) -> None:
    doc = JobXml(
        attributes=(("Name", "copy"), ("Id", "999"), ("State", "Finished"), ("Owner", "x")),
        tasks=(
            TaskXml((("CommandLine", "echo a"), ("Id", "5"), ("State", "Failed"))),
            TaskXml((("CommandLine", "echo *"), ("Type", "ParametricSweep"), ("EndValue", "2"))),
        ),
        custom_properties=(("k", "v"),),
        environment=(("E", "1"),),
    )
    job_id = s.create_job_from_xml(ALICE, doc)
    job = s.job(job_id)
    assert (job.id, job.owner, job.state, job.props["Name"]) == (
        job_id,
        ALICE,
        JobState.CONFIGURING,
        "copy",
    )
    assert len(job.tasks) == 2
    assert job.tasks[0].state is TaskState.CONFIGURING
    assert list(job.custom.values()) == [("k", "v")]
    bad = JobXml(attributes=(("Name", "x"),), tasks=(TaskXml((("MinCores", "lots"),)),))
    before = set(s.jobs)
    assert fault(s.create_job_from_xml, ALICE, bad).code == Codes.INVALID_VALUE
    assert set(s.jobs) == before  # nothing half-created


# --- nodes and SOA service jobs ----------------------------------------------------------------


def test_nodes_and_groups(make: Callable[..., SchedulerState]) -> None:
    s = make(nodes=3, cores_per_node=6)
    assert [n.name for n in s.nodes.values()] == ["HN01", "CN01", "CN02", "CN03"]
    assert s.node("cn02").cores == 6
    assert s.group_members("computenodes") == ["CN01", "CN02", "CN03"]
    assert s.group_members("HeadNodes") == ["HN01"]
    assert s.group_members("WCFBrokerNodes") == ["HN01"]
    assert fault(s.node, "CN09").status == 404
    assert fault(s.group_members, "GPUs").code == Codes.NODE_GROUP_NOT_FOUND
    assert [n.name for n in make(nodes=120).nodes.values()][1] == "CN001"


def test_offline_nodes_are_not_used(make: Callable[..., SchedulerState], clock: Clock) -> None:
    s = make(nodes=2, cores_per_node=1)
    s.set_node_state("CN01", NodeState.OFFLINE)
    job_id = new_job(s, "sleep 1", "sleep 1")
    s.submit_job(ALICE, job_id, [])
    s.step()
    assert [t.node for t in s.job(job_id).tasks] == ["CN02", None]
    assert s.node("CN01").offline_time is not None


def test_service_jobs_of_soa_sessions(s: SchedulerState) -> None:
    sid = s.allocate_job_id()
    s.on_session_created(sid, ALICE, "CcpEchoSvc", "CcpEchoSvc")
    job = s.job(sid)
    assert (job.state, job.props["ServiceName"], job.is_service) == (
        JobState.RUNNING,
        "CcpEchoSvc",
        True,
    )
    assert s.create_job(ALICE, []) == sid + 1
    err = fault(s.add_task, ALICE, sid, [])
    assert "service job" in err.message
    closed: list[int] = []
    s.on_service_job_canceled = closed.append
    s.cancel_job(ALICE, sid)
    assert closed == [sid]
    s.on_session_closed(sid, True)  # already canceled: unchanged
    assert job.state is JobState.CANCELED
    other = s.allocate_job_id()
    s.on_session_created(other, ALICE, "CcpEchoSvc", "CcpEchoSvc")
    s.on_session_closed(other, True)
    assert s.job(other).state is JobState.FINISHED


# --- helpers: queries, filters, exit codes, simulation ------------------------------------------


def test_query_store_pages_and_expiry(clock: Clock) -> None:
    store: QueryStore[int] = QueryStore(clock, ttl=300)
    rows = list(range(7))
    page, token = store.page(rows, 3, user="u", operation="list_jobs", scope=None, params="p")
    assert (page, token is not None) == ([0, 1, 2], True)
    assert token is not None
    assert store.resume(token, user="v", operation="list_jobs", scope=None) is None
    assert store.resume(token, user="u", operation="list_tasks", scope=None) is None
    got = store.resume(token, user="u", operation="list_jobs", scope=None)
    assert got == ([3, 4, 5], token, "p")
    clock.t += 301
    assert store.resume(token, user="u", operation="list_jobs", scope=None) is None
    assert len(store) == 0
    exact, none = store.page(rows[:3], 3, user="u", operation="o", scope=None, params=None)
    assert (exact, none) == ([0, 1, 2], None)  # exactly one page: no token


def test_query_store_is_bounded(clock: Clock) -> None:
    store: QueryStore[int] = QueryStore(clock, capacity=3)
    tokens = [
        store.page([1, 2], 1, user="u", operation="o", scope=None, params=None)[1] for _ in range(5)
    ]
    assert len(store) == 3
    assert tokens[0] is not None
    assert store.resume(tokens[0], user="u", operation="o", scope=None) is None


def test_filter_grammar() -> None:
    f = parse_filter("JobState eq running and jobstate eq 512", "JobState", JobState)
    assert f.states == {JobState.RUNNING, JobState.CANCELED}
    f = parse_filter("ChangeTimeFrom eq 2015-10-16 and JobState eq Finished", "JobState", JobState)
    assert f.change_time_from == datetime(2015, 10, 16)
    assert f.matches(JobState.FINISHED, datetime(2015, 10, 17))
    assert not f.matches(JobState.FINISHED, datetime(2015, 10, 15))
    assert not f.matches(JobState.FAILED, datetime(2015, 10, 17))
    nodes = parse_filter("NodeState eq draining", "NodeState", NodeState)
    assert nodes.states == {NodeState.DRAINING}
    for bad in (
        "",
        "JobState",
        "JobState eq",
        "JobState eq Bogus",
        "Owner eq x",
        "JobState = Running",
        "ChangeTimeFrom eq tomorrow",
        "TaskState eq Running",
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - each message differs
            parse_filter(bad, "JobState", JobState)


def test_sort_key_orders_none_last() -> None:
    values = [(None, 1), ("b", 2), ("A", 3), (None, 0)]
    ordered = sorted(values, key=lambda v: sort_key(v[0], v[1]))
    assert ordered == [("A", 3), ("b", 2), (None, 0), (None, 1)]


def test_exit_codes_and_substitution() -> None:
    assert parse_exit_codes("0, 2..4,min..-5,10..max") == [
        (0, 0),
        (2, 4),
        (-(2**31), -5),
        (10, 2**31 - 1),
    ]
    for bad in ("", "a", "5..1", "1..2..3"):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_exit_codes(bad)
    assert sweep_substitute("run * -o out****.txt", 7) == "run 7 -o out0007.txt"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo hi", (0.1, 0, "hi\n", None)),
        ("hostname", (0.1, 0, "", None)),
        ("exit 4", (0.1, 4, "", None)),
        ("cmd /c exit /b 2", (0.1, 0, "", None)),
        ("exit /b 2", (0.1, 2, "", None)),
        ("sleep 2 && echo a; exit 1", (2.0, 1, "a\n", None)),
        ("please FAIL", (0.1, 1, "", None)),
        ("timeout /t 3", (3.0, 0, "", None)),
    ],
)
def test_simulate_outcome(command: str, expected: tuple[object, ...]) -> None:
    assert simulate_outcome(command, 0.1, None) == expected


def test_simulate_outcome_runtime_limit() -> None:
    seconds, code, _out, error = simulate_outcome("sleep 10", 0.1, 1.5)
    assert (seconds, code) == (1.5, None)
    assert error is not None
    assert "1.5 seconds" in error
