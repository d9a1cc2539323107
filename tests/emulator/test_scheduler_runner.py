"""The ``local`` task runner and the scheduler driver (emulator/_task_runner.py).

Real subprocesses through the shell, driven by the real event loop and clock; every wait is
bounded. The ``simulate`` runner is covered by test_scheduler_state.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hpcsoa.emulator._config import EmulatorConfig
from hpcsoa.emulator._scheduler_state import SchedulerState
from hpcsoa.protocol._catalog import JobState, TaskState

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell commands")

ALICE = "HPCLAB\\alice"


@pytest.fixture
async def local() -> AsyncIterator[SchedulerState]:
    s = SchedulerState(EmulatorConfig(nodes=1, cores_per_node=2, task_runner="local"))
    await s.start()
    try:
        yield s
    finally:
        await s.aclose()


async def wait_job(s: SchedulerState, job_id: int, timeout: float = 10.0) -> JobState:
    async with asyncio.timeout(timeout):
        while not s.job(job_id).state.is_terminal():
            await asyncio.sleep(0.01)
    return s.job(job_id).state


async def test_sweep_runs_as_processes_with_environment(
    local: SchedulerState, tmp_path: Path
) -> None:
    job_id = local.create_job(ALICE, [])
    job = local.job(job_id)
    local.set_pairs(ALICE, job, job.env, [("GREETING", "hello"), ("SHARED", "job")], env=True)
    local.add_task(
        ALICE,
        job_id,
        [
            ("CommandLine", 'echo "$GREETING * $SHARED $CCP_TASKINSTANCEID"; pwd'),
            ("Type", "ParametricSweep"),
            ("StartValue", "1"),
            ("EndValue", "3"),
            ("WorkDirectory", str(tmp_path)),
        ],
    )
    local.set_pairs(ALICE, job, job.tasks[0].env, [("SHARED", "task")], env=True)
    local.submit_job(ALICE, job_id, [])
    assert await wait_job(local, job_id) is JobState.FINISHED
    subs = job.tasks[0].subtasks
    assert subs is not None
    assert [s.output for s in subs] == [
        f"hello {i} task {i}\n{tmp_path.resolve()}\n" for i in (1, 2, 3)
    ]
    assert [s.exit_code for s in subs] == [0, 0, 0]


async def test_exit_code_stderr_and_missing_directory(
    local: SchedulerState, tmp_path: Path
) -> None:
    job_id = local.create_job(ALICE, [])
    local.add_task(ALICE, job_id, [("CommandLine", "echo out; echo err >&2; exit 7")])
    local.add_task(
        ALICE,
        job_id,
        [("CommandLine", "echo never"), ("WorkDirectory", str(tmp_path / "missing"))],
    )
    local.add_task(
        ALICE,
        job_id,
        [
            ("CommandLine", "echo to-file"),
            ("WorkDirectory", str(tmp_path)),
            ("StdOutFilePath", "out.txt"),
        ],
    )
    local.submit_job(ALICE, job_id, [])
    assert await wait_job(local, job_id) is JobState.FAILED
    first, second, third = local.job(job_id).tasks
    assert (first.state, first.exit_code, first.output) == (TaskState.FAILED, 7, "out\nerr\n")
    assert first.error_message == "Task failed with exit code 7."
    assert second.state is TaskState.FAILED
    assert second.error_message is not None
    assert "does not exist" in second.error_message
    assert (third.state, third.output) == (TaskState.FINISHED, "")
    assert (tmp_path / "out.txt").read_text() == "to-file\n"


async def test_cancel_kills_the_process_group(local: SchedulerState, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job_id = local.create_job(ALICE, [])
    local.add_task(ALICE, job_id, [("CommandLine", f"sleep 30 & echo $! > {pid_file}; wait")])
    local.submit_job(ALICE, job_id, [])
    async with asyncio.timeout(10):
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    os.kill(pid, 0)  # the grandchild is alive
    local.cancel_job(ALICE, job_id, "stop")
    assert local.job(job_id).state is JobState.CANCELED
    async with asyncio.timeout(10):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.02)
            # a killed child may linger as a zombie until its parent shell is reaped
            if (
                Path(f"/proc/{pid}/status").exists()
                and "zombie" in Path(f"/proc/{pid}/status").read_text()
            ):
                break
    assert local.running == {}


async def test_runtime_limit_and_core_bound(local: SchedulerState, tmp_path: Path) -> None:
    job_id = local.create_job(ALICE, [])
    local.add_task(ALICE, job_id, [("CommandLine", "sleep 30"), ("RuntimeSeconds", "1")])
    for _ in range(3):
        local.add_task(ALICE, job_id, [("CommandLine", "sleep 0.2")])
    local.submit_job(ALICE, job_id, [])
    peak = 0
    async with asyncio.timeout(10):
        while not local.job(job_id).state.is_terminal():
            peak = max(peak, len(local.running))
            await asyncio.sleep(0.005)
    assert peak == 2  # one node with two cores
    limited = local.job(job_id).tasks[0]
    assert limited.state is TaskState.FAILED
    assert limited.error_message is not None
    assert "maximum run time of 1 seconds" in limited.error_message
    assert local.job(job_id).state is JobState.FAILED


async def test_aclose_kills_running_processes(tmp_path: Path) -> None:
    s = SchedulerState(EmulatorConfig(nodes=1, cores_per_node=1, task_runner="local"))
    await s.start()
    pid_file = tmp_path / "pid"
    job_id = s.create_job(ALICE, [])
    s.add_task(ALICE, job_id, [("CommandLine", f"echo $$ > {pid_file}; exec sleep 30")])
    s.submit_job(ALICE, job_id, [])
    async with asyncio.timeout(10):
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
    await s.aclose()
    await s.aclose()  # idempotent
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
