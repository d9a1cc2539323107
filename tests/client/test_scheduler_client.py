"""``client.jobs`` / ``client.tasks`` / ``client.nodes`` / ``client.cluster`` against the emulator.

Every public method of the scheduler APIs runs against a real ``EmulatorServer`` on
127.0.0.1 (simulated task runner, 20 ms per task; one test uses the ``local`` runner).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

import hpcsoa
from hpcsoa import (
    AuthenticationError,
    BadRequest,
    EncodeError,
    Forbidden,
    HpcClient,
    Job,
    JobPriority,
    JobState,
    NodeState,
    NotFound,
    Task,
    TaskState,
    TaskType,
    UnitType,
)
from hpcsoa.emulator import EmulatorServer
from hpcsoa.emulator._sched_handlers import install_scheduler
from hpcsoa.emulator._scheduler_state import SchedulerState

pytestmark = pytest.mark.integration

USER = "CONTOSO\\carol"
PASSWORD = "pa55-w0rd"
OTHER = ("CONTOSO\\dave", "d4ve")
CANCELED_CODE = -2147220984


async def _serve(**config: object) -> AsyncIterator[EmulatorServer]:
    srv = EmulatorServer(
        users={USER: PASSWORD, OTHER[0]: OTHER[1]},
        nodes=2,
        cores_per_node=4,
        task_runtime_ms=20,
        **config,
    )
    sched = install_scheduler(srv.state)
    async with srv:
        await sched.start()
        try:
            yield srv
        finally:
            await sched.aclose()


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async for srv in _serve():
        yield srv


@pytest.fixture
async def client(server: EmulatorServer) -> AsyncIterator[HpcClient]:
    async with HpcClient(server.base_url, username=USER, password=PASSWORD, retry=None) as c:
        yield c


def sched(server: EmulatorServer) -> SchedulerState:
    state = server.state.scheduler
    assert isinstance(state, SchedulerState)
    return state


# --- jobs ----------------------------------------------------------------------------------------


async def test_create_get_and_typed_properties(client: HpcClient) -> None:
    job_id = await client.jobs.create(
        name="nightly",
        priority=JobPriority.ABOVE_NORMAL,
        min_cores=2,
        MaxCores="4",
        unit_type=UnitType.CORE,
        run_until_canceled=False,
        node_groups=["ComputeNodes"],
        project="ci",
    )
    job = await client.jobs.get(job_id)
    assert isinstance(job, Job)
    assert (job.id, job.name, job.state, job.priority, job.owner, job.project) == (
        job_id,
        "nightly",
        JobState.CONFIGURING,
        JobPriority.ABOVE_NORMAL,
        USER,
        "ci",
    )
    assert isinstance(job.create_time, datetime)
    assert job.end_time is None
    assert job.properties["MinCores"] == 2
    assert job.properties["RunUntilCanceled"] is False
    assert job.properties["NodeGroups"] == ["ComputeNodes"]
    assert job.raw["MinCores"] == "2"
    assert job.raw["RunUntilCanceled"] == "False"
    assert job.get("max_cores") == 4
    assert job["maxcores"] == 4
    with pytest.raises(KeyError):
        job["NoSuchProperty"]
    assert "nightly" in repr(job)
    assert not job.is_terminal()
    only = await client.jobs.get(job_id, properties=["Id", "State"])
    assert (only.id, only.state, only.name) == (job_id, JobState.CONFIGURING, None)
    assert list(only.raw) == ["Id", "State"]


async def test_argument_checks_happen_before_sending(
    client: HpcClient, server: EmulatorServer
) -> None:
    with pytest.raises(EncodeError, match="'colour' is not a job property"):
        await client.jobs.create(name="x", colour="blue")
    with pytest.raises(EncodeError, match="MinCores"):
        await client.jobs.create(min_cores="two")
    with pytest.raises(EncodeError, match="State cannot be set"):
        await client.jobs.create(State="Running")
    with pytest.raises(ValueError, match="Priority"):
        await client.jobs.create(priority=17)
    assert sched(server).jobs == {}


async def test_server_side_validation_errors(client: HpcClient) -> None:
    with pytest.raises(BadRequest) as info:
        await client.jobs.create(job_template="NoSuchTemplate")
    assert "job template" in info.value.message
    assert info.value.status == 400
    job_id = await client.jobs.create()
    with pytest.raises(BadRequest, match="Bogus"):
        await client.jobs.get(job_id, properties="Id,Bogus")


async def test_submit_wait_and_password_stays_secret(
    client: HpcClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job_id = await client.jobs.create(name="run")
    task_id = await client.tasks.add(job_id, "echo hello", name="greet")
    assert task_id == 1
    secret = "Sup3r-S3cret-Value"
    await client.jobs.submit(job_id, username=USER, password=secret, progress_message="go")
    job = await client.jobs.wait(job_id, timeout=10, poll=0.02)
    assert job.state is JobState.FINISHED
    assert job.is_terminal()
    assert job.raw["UserName"] == USER
    assert "Password" not in job.raw
    assert secret not in caplog.text
    assert secret not in repr(job)
    task = await client.tasks.get(job_id, task_id)
    assert (task.output, task.exit_code, task.state, task.name) == (
        "hello\n",
        0,
        TaskState.FINISHED,
        "greet",
    )


async def test_wait_times_out(client: HpcClient) -> None:
    job_id = await client.jobs.create(run_until_canceled=True)
    await client.tasks.add(job_id, "echo")
    await client.jobs.submit(job_id)
    with pytest.raises(TimeoutError, match=f"job {job_id} is still"):
        await client.jobs.wait(job_id, timeout=0.2, poll=0.05)
    with pytest.raises(ValueError, match="poll"):
        await client.jobs.wait(job_id, poll=0)


async def test_cancel_requeue_and_their_faults(client: HpcClient) -> None:
    job_id = await client.jobs.create()
    await client.tasks.add(job_id, "sleep 30")
    with pytest.raises(BadRequest) as info:
        await client.jobs.requeue(job_id)
    assert info.value.message.startswith(
        "Only jobs that are in the Canceled or Failed state can be requeued"
    )
    await client.jobs.submit(job_id)
    await client.jobs.cancel(job_id, "not today", forced=True)
    job = await client.jobs.get(job_id)
    assert (job.state, job.error_message) == (JobState.CANCELED, "not today")
    with pytest.raises(BadRequest) as info:
        await client.jobs.cancel(job_id)
    assert info.value.code == CANCELED_CODE
    assert info.value.message == "Jobs in the Canceled state cannot be canceled."
    await client.tasks.set_properties(job_id, 1, command_line="echo again")
    await client.jobs.requeue(job_id)
    job = await client.jobs.wait(job_id, timeout=10, poll=0.02)
    assert (job.state, job.requeue_count) == (JobState.FINISHED, 1)
    with pytest.raises(ValueError, match="128"):
        await client.jobs.cancel(job_id, "x" * 129)


async def test_set_properties_custom_properties_env(client: HpcClient) -> None:
    job_id = await client.jobs.create()
    await client.jobs.set_properties(job_id, {"Name": "renamed"}, priority="Lowest")
    job = await client.jobs.get(job_id, properties=["Name", "Priority"])
    assert (job.name, job.priority) == ("renamed", JobPriority.LOWEST)
    await client.jobs.set_custom_properties(job_id, {"color": "blue", "size": "L"})
    assert await client.jobs.get_custom_properties(job_id) == {"color": "blue", "size": "L"}
    assert await client.jobs.get_custom_properties(job_id, ["size"]) == {"size": "L"}
    await client.jobs.set_env(job_id, {"A": "1", "B": "2"})
    await client.jobs.set_env(job_id, {"B": None})
    assert await client.jobs.get_env(job_id) == {"A": "1"}
    assert await client.jobs.get_env(job_id, ["A", "Missing"]) == {"A": "1", "Missing": ""}


async def test_copy_a_job_through_xml(client: HpcClient) -> None:
    job_id = await client.jobs.create(name="template")
    await client.tasks.add(
        job_id, "echo *", type=TaskType.PARAMETRIC_SWEEP, start_value=1, end_value=2
    )
    xml = await client.jobs.get_xml(job_id)
    assert xml.startswith('<Job Version="3.000"')
    copy = await client.jobs.create_from_xml(xml)
    assert copy != job_id
    assert (await client.jobs.get(copy)).name == "template"
    assert "State=" in await client.jobs.get_xml(copy, properties=["Id", "State"])
    with pytest.raises(BadRequest):
        await client.jobs.create_from_xml("<Job><Tasks>")
    with pytest.raises(BadRequest):
        await client.jobs.create_from_xml(b'<!DOCTYPE j [<!ENTITY e "x">]><Job Name="&e;"/>')


async def test_list_filters_and_pages(client: HpcClient, server: EmulatorServer) -> None:
    a = await client.jobs.create(name="b")
    b = await client.jobs.create(name="a")
    other = sched(server).create_job(OTHER[0], [("Name", "c")])
    await client.jobs.cancel(a)
    everything = [j async for j in client.jobs.list()]
    assert [j.id for j in everything] == [a, b, other]
    assert list(everything[0].raw) == ["Id", "Owner", "Name", "State", "Priority"]
    canceled = [j.id async for j in client.jobs.list(state=JobState.CANCELED)]
    assert canceled == [a]  # $filter sent with api-version 2012-11-01 for this call
    either = [j.id async for j in client.jobs.list(state=["Canceled", "configuring"])]
    assert either == [a, b, other]
    mine = [j.id async for j in client.jobs.list(owner=USER)]
    assert mine == [a, b]
    recent = [j.id async for j in client.jobs.list(changed_since=datetime(2000, 1, 1))]
    assert recent == [a, b, other]
    by_name = [j.name async for j in client.jobs.list(sort_by="Name", properties=["Name"])]
    assert by_name == ["a", "b", "c"]
    pager = client.jobs.list(page_size=2, properties="Id")
    pages = [[j.id for j in page] async for page in pager.by_page()]
    assert pages == [[a, b], [other]]
    assert pager.continuation_token is None
    with pytest.raises(hpcsoa.StreamConsumed):
        async for _ in pager:
            pass
    with pytest.raises(EncodeError):
        client.jobs.list(state="Sleeping")
    with pytest.raises(ValueError, match="page_size"):
        client.jobs.list(page_size=0)


async def test_paging_through_1000_jobs_seven_at_a_time(
    client: HpcClient, server: EmulatorServer
) -> None:
    state = sched(server)
    ids = [state.create_job(USER, [("Name", f"job-{i}")]) for i in range(1000)]
    seen: list[int] = []
    pager = client.jobs.list(page_size=7, properties=["Id", "Name"])
    pages = 0
    async for page in pager.by_page():
        assert 1 <= len(page) <= 7
        seen += [j.id for j in page if j.id is not None]
        pages += 1
    assert seen == ids
    assert pages == 143  # ceil(1000 / 7), no empty trailing page
    assert pager.pages_fetched == 143
    # resume a listing from a saved token
    first = client.jobs.list(page_size=7, properties="Id")
    it = first.by_page()
    await anext(it)
    token = first.continuation_token
    assert token is not None
    await it.aclose()
    resumed = client.jobs.list(page_size=7, properties="Id")
    rest = [j.id async for page in resumed.by_page(continuation_token=token) for j in page]
    assert rest == ids[7:]


async def test_unknown_ids_are_not_found(client: HpcClient) -> None:
    with pytest.raises(NotFound) as info:
        await client.jobs.get(424242)
    assert info.value.status == 404
    job_id = await client.jobs.create()
    with pytest.raises(NotFound):
        await client.tasks.get(job_id, 7)
    with pytest.raises(NotFound):
        await client.nodes.get("CN99")
    with pytest.raises(NotFound):
        await client.nodes.group_members("NoSuchGroup")
    with pytest.raises(NotFound):
        await client.jobs.cancel(424242)


async def test_wrong_credentials(server: EmulatorServer) -> None:
    async with HpcClient(
        server.base_url, username=USER, password="wrong-secret-123", retry=None
    ) as bad:
        with pytest.raises(AuthenticationError) as info:
            await bad.jobs.create(name="x")
    assert "wrong-secret-123" not in str(info.value)
    assert "wrong-secret-123" not in repr(info.value)


async def test_other_users_jobs_are_read_only(client: HpcClient, server: EmulatorServer) -> None:
    theirs = sched(server).create_job(OTHER[0], [("Name", "theirs")])
    assert (await client.jobs.get(theirs)).name == "theirs"
    with pytest.raises(Forbidden):
        await client.jobs.set_properties(theirs, name="mine")


# --- tasks and subtasks --------------------------------------------------------------------------


async def test_tasks_crud(client: HpcClient) -> None:
    job_id = await client.jobs.create(run_until_canceled=True)
    first = await client.tasks.add(job_id, "sleep 30", name="long")
    second = await client.tasks.add(job_id, command_line="echo hi", MinCores=1)
    assert (first, second) == (1, 2)
    await client.tasks.set_properties(job_id, second, {"Name": "short"}, is_rerunnable=False)
    await client.tasks.set_custom_properties(job_id, second, {"k": "v"})
    assert await client.tasks.get_custom_properties(job_id, second) == {"k": "v"}
    await client.tasks.set_env(job_id, second, {"X": "1"})
    assert await client.tasks.get_env(job_id, second, ["X", "Y"]) == {"X": "1", "Y": ""}
    task = await client.tasks.get(job_id, second, properties=["Name", "IsRerunnable", "TaskId"])
    assert (task.name, task.properties["IsRerunnable"], task.full_id) == (
        "short",
        False,
        f"{job_id}.2",
    )
    assert (task.job_id, task.task_id, task.instance_id) == (job_id, 2, 0)
    assert "short" in repr(task)
    xml = await client.tasks.get_xml(job_id, second)
    assert xml.startswith('<Task Version="3.000"')
    assert "IsRerunnable" not in await client.tasks.get_xml(job_id, second, properties="Name")
    await client.jobs.submit(job_id)
    async with asyncio.timeout(10):
        while (await client.tasks.get(job_id, first)).state is not TaskState.RUNNING:
            await asyncio.sleep(0.02)
    await client.tasks.cancel(job_id, first, "enough")
    canceled = await client.tasks.get(job_id, first)
    assert (canceled.state, canceled.error_message) == (TaskState.FAILED, "enough")
    with pytest.raises(BadRequest) as info:
        await client.tasks.cancel(job_id, first)
    assert info.value.code == CANCELED_CODE
    await client.tasks.requeue(job_id, first)
    requeued = await client.tasks.get(job_id, first)
    assert requeued.requeue_count == 1
    assert requeued.state in (TaskState.QUEUED, TaskState.RUNNING)
    async with asyncio.timeout(10):
        while (await client.tasks.get(job_id, second)).state is not TaskState.FINISHED:
            await asyncio.sleep(0.02)
    await client.jobs.cancel(job_id)
    rows = [t async for t in client.tasks.list(job_id)]
    assert all(isinstance(t, Task) for t in rows)
    assert [t.task_id for t in rows] == [1, 2]
    states = [t.task_id async for t in client.tasks.list(job_id, state=TaskState.FINISHED)]
    assert states == [2]


async def test_sweep_and_subtasks(client: HpcClient) -> None:
    job_id = await client.jobs.create()
    sweep = await client.tasks.add(
        job_id,
        "sleep 30",
        type=TaskType.PARAMETRIC_SWEEP,
        start_value=1,
        end_value=3,
    )
    await client.tasks.add(job_id, "echo basic")
    with pytest.raises(BadRequest, match="has not been expanded yet"):
        await client.tasks.subtasks.get(job_id, sweep, 1)
    await client.jobs.submit(job_id)
    expanded = [t async for t in client.tasks.list(job_id, page_size=3)]
    assert [(t.task_id, t.instance_id) for t in expanded] == [(1, 1), (1, 2), (1, 3), (2, 0)]
    masters = [t async for t in client.tasks.list(job_id, expand_parametric=False)]
    assert len(masters) == 2
    await client.tasks.subtasks.cancel(job_id, sweep, 2, "skip", forced=True)
    sub = await client.tasks.subtasks.get(job_id, sweep, 2)
    assert (sub.state, sub.error_message, sub.instance_id, sub.full_id) == (
        TaskState.FAILED,
        "skip",
        2,
        f"{job_id}.1.2",
    )
    await client.tasks.subtasks.set_properties(job_id, sweep, 2, command_line="echo patched")
    await client.tasks.subtasks.requeue(job_id, sweep, 2)
    for instance in (1, 3):
        await client.tasks.subtasks.cancel(job_id, sweep, instance)
        await client.tasks.subtasks.set_properties(job_id, sweep, instance, command_line="echo ok")
        await client.tasks.subtasks.requeue(job_id, sweep, instance)
    job = await client.jobs.wait(job_id, timeout=10, poll=0.02)
    assert job.state is JobState.FINISHED
    assert (await client.tasks.subtasks.get(job_id, sweep, 2)).output == "patched\n"
    xml = await client.tasks.subtasks.get_xml(job_id, sweep, 3, properties="InstanceId")
    assert 'InstanceId="3"' in xml
    with pytest.raises(NotFound):
        await client.tasks.subtasks.get(job_id, sweep, 4)
    with pytest.raises(BadRequest):
        await client.tasks.subtasks.requeue(job_id, sweep, 1)  # Finished


async def test_local_runner_sweep_to_completion() -> None:
    async for srv in _serve(task_runner="local"):
        async with HpcClient(srv.base_url, username=USER, password=PASSWORD) as client:
            job_id = await client.jobs.create(name="local sweep")
            await client.jobs.set_env(job_id, {"OFFSET": "100"})
            task_id = await client.tasks.add(
                job_id,
                f'"{sys.executable}" -c "import os; print(*+int(os.environ[\'OFFSET\']))"',
                type=TaskType.PARAMETRIC_SWEEP,
                start_value=1,
                end_value=5,
            )
            await client.jobs.submit(job_id)
            job = await client.jobs.wait(job_id, timeout=30, poll=0.05)
            assert job.state is JobState.FINISHED, job.error_message
            subtasks = [t async for t in client.tasks.list(job_id, properties=["Output"])]
            assert [t.output for t in subtasks] == [f"{100 + i}\n" for i in range(1, 6)]
            one = await client.tasks.subtasks.get(job_id, task_id, 5)
            assert (one.exit_code, one.state) == (0, TaskState.FINISHED)


# --- nodes and cluster ---------------------------------------------------------------------------


async def test_nodes(client: HpcClient) -> None:
    node = await client.nodes.get("cn01")
    assert (node.name, node.state, node.num_cores, node.reachable) == (
        "CN01",
        NodeState.ONLINE,
        4,
        True,
    )
    assert node.node_groups == ("ComputeNodes",)
    assert node.memory_size == 8192
    assert "CN01" in repr(node)
    names = [n.name async for n in client.nodes.list(page_size=1)]
    assert names == ["HN01", "CN01", "CN02"]
    online = [n.name async for n in client.nodes.list(state=NodeState.ONLINE, properties="Name")]
    assert online == names
    assert [n async for n in client.nodes.list(state="Offline")] == []
    by_name = [n.name async for n in client.nodes.list(sort_by="Name", properties=["Name"])]
    assert by_name == ["CN01", "CN02", "HN01"]
    groups = await client.nodes.groups()
    assert [g.name for g in groups] == ["HeadNodes", "ComputeNodes", "WCFBrokerNodes"]
    assert all(g.description for g in groups)
    assert await client.nodes.group_members("ComputeNodes") == ["CN01", "CN02"]


async def test_cluster(client: HpcClient) -> None:
    assert await client.cluster.names() == ["HPCLAB"]
    assert await client.cluster.version() == "5.3.6420.0"
    assert await client.cluster.active_head_node() == "HN01"
    assert await client.cluster.job_templates() == ["Default"]


async def test_apis_are_exported_and_described(client: HpcClient) -> None:
    assert isinstance(client.jobs, hpcsoa.JobsApi)
    assert isinstance(client.tasks, hpcsoa.TasksApi)
    assert isinstance(client.tasks.subtasks, hpcsoa.SubtasksApi)
    assert isinstance(client.nodes, hpcsoa.NodesApi)
    assert isinstance(client.cluster, hpcsoa.ClusterApi)
    for api in (client.jobs, client.tasks, client.tasks.subtasks, client.nodes, client.cluster):
        assert type(api).__name__ in repr(api)
