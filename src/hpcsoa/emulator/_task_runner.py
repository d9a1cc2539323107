"""Task runners of the emulated scheduler and the driver that keeps the scheduler moving.

* ``simulate`` (default): a task "runs" for ``task_runtime_ms`` without executing anything.
  :func:`simulate_outcome` reads a tiny command language so that tests can script outcomes:
  ``echo TEXT`` (output), ``sleep SECONDS`` (duration), ``exit N`` (exit code), parts joined
  with ``&&`` or ``;``; any other command containing ``fail`` exits 1, everything else 0.
* ``local``: the task's command line runs as a **real subprocess** through the shell, in its
  working directory, with the job's and the task's environment variables (plus ``CCP_*``),
  on at most the configured number of cores (the scheduler only starts what fits). Standard
  output and error are captured into ``Output`` (last 4000 characters) unless redirected with
  ``StdOutFilePath``/``StdErrFilePath``; the exit code goes to ``ExitCode``. Cancel kills the
  process group. This executes whatever authenticated users submit, with the emulator's own
  rights: enable it only on a loopback-bound emulator with authentication on.

:class:`SchedulerDriver` owns the asyncio side: it calls ``state.step()`` whenever the state
signals a change (``state.wake``) and at the next deadline, and runs the ``local`` launches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._sched_dispatch import SchedulerDispatch
    from ._sched_engine import Launch, RunKey

__all__ = ["OUTPUT_LIMIT", "SchedulerDriver", "simulate_outcome"]

log = logging.getLogger("hpcsoa.emulator.scheduler")

OUTPUT_LIMIT: Final = 4000  # characters of Output kept (the tail)
_EXIT: Final = re.compile(r"^exit(?:\s+/b)?\s+([+-]?\d+)$", re.I | re.ASCII)
_SLEEP: Final = re.compile(r"^(?:sleep|timeout(?:\s+/t)?)\s+(\d+(?:\.\d*)?)$", re.I | re.ASCII)
_SPLIT: Final = re.compile(r"\s*(?:&&|;)\s*")
# Characters XML 1.0 cannot carry: replaced so that any output can be rendered in a body.
_XML_INVALID: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def simulate_outcome(
    command: str, default_s: float, limit_s: float | None
) -> tuple[float, int | None, str, str | None]:
    """What a simulated run of ``command`` does: ``(seconds, exit_code, output, error)``.

    ``limit_s`` is the task's ``RuntimeSeconds``: a longer run is stopped there and fails.
    """
    seconds: float | None = None
    code = 0
    out: list[str] = []
    for part in _SPLIT.split(command.strip()):
        if not part:
            continue
        if m := _EXIT.match(part):
            code = int(m.group(1))
            break
        if m := _SLEEP.match(part):
            seconds = (seconds or 0.0) + float(m.group(1))
        elif part.lower() == "echo" or part.lower().startswith("echo "):
            out.append(part[5:] + "\n")
        elif "fail" in part.lower():
            code = 1
            break
    duration = default_s if seconds is None else seconds
    if limit_s is not None and duration > limit_s:
        return limit_s, None, "".join(out), _over_limit(limit_s)
    return duration, code, "".join(out), None


def _over_limit(limit_s: float) -> str:
    return f"The task exceeded its maximum run time of {limit_s:g} seconds and was stopped."


def _clean(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")[-OUTPUT_LIMIT:]
    return _XML_INVALID.sub("\ufffd", text)


def _work_dir(launch: Launch) -> str | None:
    """The run's directory (the home directory by default); ``None`` when it is missing."""
    cwd = os.path.expanduser(launch.work_dir or "~")
    return cwd if os.path.isdir(cwd) else None


class _Files:
    """Redirection files of one local run (opened synchronously: they are local paths)."""

    def __init__(self, launch: Launch, cwd: str) -> None:
        self.opened: list[IO[bytes]] = []
        self.stdin = self._open(launch.stdin_path, cwd, "rb")
        self.stdout = self._open(launch.stdout_path, cwd, "wb")
        self.stderr = self._open(launch.stderr_path, cwd, "wb")

    def _open(self, path: str | None, cwd: str, mode: str) -> IO[bytes] | None:
        if not path:
            return None
        f = open(os.path.join(cwd, path), mode)  # closed in close()
        self.opened.append(f)
        return f

    def close(self) -> None:
        for f in self.opened:
            f.close()


class SchedulerDriver:
    """Calls ``step()`` on changes and deadlines; runs ``local`` launches as subprocesses."""

    def __init__(self, state: SchedulerDispatch) -> None:
        self.state = state
        self._changed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._runs: dict[RunKey, asyncio.Task[None]] = {}
        self._procs: dict[RunKey, asyncio.subprocess.Process] = {}

    def __repr__(self) -> str:
        return f"<SchedulerDriver runs={len(self._runs)} processes={len(self._procs)}>"

    def start(self) -> None:
        """Start the step loop (call from within the running event loop)."""
        self.state.wake = self._changed.set
        self._loop_task = asyncio.create_task(self._loop(), name="hpcsoa-scheduler")

    async def aclose(self) -> None:
        self.state.wake = lambda: None
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for key in list(self._procs):
            self._kill(key)
        runs = list(self._runs.values())
        for run in runs:
            run.cancel()
        if runs:
            await asyncio.gather(*runs, return_exceptions=True)
        self._runs.clear()

    async def _loop(self) -> None:
        while True:
            self._changed.clear()
            try:
                deadline = self.state.step()
                launches, kills = self.state.take_actions()
            except Exception:  # never let one bad step stop the scheduler
                log.exception("scheduler step failed")
                deadline, launches, kills = None, [], []
            for key in kills:
                self._kill(key)
            for launch in launches:
                run = asyncio.create_task(self._run(launch), name=f"hpcsoa-task-{launch.key}")
                self._runs[launch.key] = run
                run.add_done_callback(self._forget(launch.key))
            if deadline is None:
                await self._changed.wait()
                continue
            delay = max(0.0, deadline - self.state.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._changed.wait()

    def _forget(self, key: RunKey) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._runs.pop(key, None)

        return done

    def _kill(self, key: RunKey) -> None:
        proc = self._procs.get(key)
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: shells fork children
            else:  # pragma: no cover - Windows
                proc.kill()

    async def _run(self, launch: Launch) -> None:
        key = launch.key
        cwd = _work_dir(launch)
        if cwd is None:
            message = f"The working directory {launch.work_dir} does not exist."
            self.state.complete_unit(key, None, "", message)
            return
        try:
            files = _Files(launch, cwd)
        except OSError as exc:
            self.state.complete_unit(key, None, "", f"Cannot open a redirection file: {exc}")
            return
        try:
            await self._run_process(launch, cwd, files)
        finally:
            files.close()
            self._procs.pop(key, None)

    async def _run_process(self, launch: Launch, cwd: str, files: _Files) -> None:
        key = launch.key
        try:
            proc = await asyncio.create_subprocess_shell(
                launch.command,
                cwd=cwd,
                env={**os.environ, **dict(launch.env)},
                stdin=files.stdin or asyncio.subprocess.DEVNULL,
                stdout=files.stdout or asyncio.subprocess.PIPE,
                stderr=files.stderr
                or (
                    asyncio.subprocess.STDOUT
                    if files.stdout is None
                    else asyncio.subprocess.DEVNULL
                ),
                start_new_session=True,
            )
        except OSError as exc:
            self.state.complete_unit(key, None, "", f"The task could not be started: {exc}")
            return
        self._procs[key] = proc
        if key not in self.state.running:  # canceled while starting
            self._kill(key)
        timed_out = False
        try:
            async with asyncio.timeout(launch.timeout_s):
                output = await self._read(proc)
                await proc.wait()
        except TimeoutError:
            timed_out = True
            self._kill(key)
            await proc.wait()
            output = b""
        except asyncio.CancelledError:
            self._kill(key)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise
        error = _over_limit(launch.timeout_s or 0.0) if timed_out else None
        self.state.complete_unit(key, None if timed_out else proc.returncode, _clean(output), error)

    @staticmethod
    async def _read(proc: asyncio.subprocess.Process) -> bytes:
        if proc.stdout is None:
            return b""
        keep = bytearray()
        while chunk := await proc.stdout.read(65536):
            keep += chunk
            if len(keep) > 8 * OUTPUT_LIMIT:  # bounded: only the tail is kept
                del keep[: len(keep) - 4 * OUTPUT_LIMIT]
        return bytes(keep)
