"""Finding the session of a Create Session call that failed ambiguously.

Create Session is not idempotent: repeating it after the body may have arrived would start a
second service job, an orphan holding cluster cores (research §3.1). So the client never
repeats it. Instead, unless the caller named the service job, every session is created with
a ``ServiceJobName`` that carries a client token (``"CcpEchoSvc [hpcsoa 3f2a9c41d07e]"``).
When the call then fails in a way that leaves its fate unknown (the connection dropped or
timed out after the request was sent), the client looks for a *Running* job of that exact
name through the job list: found, it attaches to that session and carries on; not found,
nothing was left behind and the original error is raised with a note saying so.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from ._exceptions import HpcError, NetworkError, ReadTimeout
from .transport._retry import describe_error

if TYPE_CHECKING:
    from .scheduler import JobsApi

__all__ = ["AMBIGUOUS", "find_session_job", "job_name_with_token"]

logger = logging.getLogger("hpcsoa.soa")

# Failures after which the Create Session request may have been processed.
AMBIGUOUS = (NetworkError, ReadTimeout)

_MAX_JOB_NAME = 80  # the scheduler's limit on a job name


def job_name_with_token(service: str) -> str:
    """A service job name that no other call will use: the service name plus a token."""
    suffix = f" [hpcsoa {uuid.uuid4().hex[:12]}]"
    return service[: _MAX_JOB_NAME - len(suffix)] + suffix


async def find_session_job(jobs: JobsApi, job_name: str, failure: HpcError) -> int | None:
    """The id of the running service job named ``job_name`` (= its session id), or ``None``.

    Raises:
        HpcError: ``failure`` (with a note) when the job list itself cannot be read: whether
            a session was left running is then unknown.
    """
    logger.warning(
        "Create Session failed after the request may have arrived (%s); looking for its "
        "service job %r",
        describe_error(failure),
        job_name,
    )
    problem: HpcError | None = None
    try:
        async for job in jobs.list(state="Running", properties="Id,Name,State"):
            if job.name == job_name and job.id is not None:
                return job.id
    except HpcError as lookup:
        problem = lookup
    if problem is not None:
        failure.add_note(
            f"hpcsoa: looking for the service job {job_name!r} failed too "
            f"({describe_error(problem)}); a session may have been left running"
        )
        raise failure
    return None
