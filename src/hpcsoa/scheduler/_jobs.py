"""``client.jobs``: job operations of the scheduler API (spec §7)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..protocol import Operation
from ..protocol._catalog import JOB_PROPERTIES, JobPriority, JobState
from ..protocol._datacontract import (
    decode_int,
    decode_property_array,
    encode_property_array,
    encode_string,
)
from ._common import (
    XML,
    encode_props,
    filter_query,
    list_pager,
    name_value_body,
    properties_query,
)
from ._models import Job

if TYPE_CHECKING:
    from .._paging import AsyncPager
    from ..transport._requester import Requester

__all__ = ["JobsApi"]

_WAIT_PROPERTIES = ("Id", "State")


class JobsApi:
    """Create, submit, inspect, change, cancel and requeue jobs (``client.jobs``).

    Property arguments take REST names (``MinCores``) or Python spellings (``min_cores``),
    any case; values may be Python values (``JobPriority.HIGHEST``, ``True``, ``datetime``,
    lists) or strings. They are checked against the catalog (§A.1) before anything is sent.

    Every method raises :class:`~hpcsoa.NotFound` for an unknown job, :class:`~hpcsoa.BadRequest`
    for a refused request (invalid value, wrong state: see ``ApiError.code``),
    :class:`~hpcsoa.Forbidden` for another user's job, and :class:`~hpcsoa.EncodeError` (a
    ``ValueError``) for an argument that fails the catalog check.
    """

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def __repr__(self) -> str:
        return f"<JobsApi {self._requester.authority}>"

    # --- create ------------------------------------------------------------------------------

    async def create(
        self,
        *,
        name: str | None = None,
        priority: JobPriority | str | int | None = None,
        **props: object,
    ) -> int:
        """Create Job (§7.1): a new job in state Configuring; returns its id.

        Args:
            name, priority: the job's ``Name`` and ``Priority``.
            **props: any other property settable at creation (§A.1), e.g. ``min_cores=2``,
                ``RunUntilCanceled=True``, ``node_groups=["ComputeNodes"]``.
        """
        values: dict[str, object] = {"Name": name, "Priority": priority, **props}
        body = encode_property_array(
            encode_props(JOB_PROPERTIES, "create", values, what="create job")
        )
        resp = await self._requester.call(
            Operation.CREATE_JOB, body=body, content_type=XML, accept="application/xml"
        )
        return decode_int(resp.body)

    async def create_from_xml(self, job_xml: str | bytes) -> int:
        """Create Job From XML (§7.2): post a job XML document (e.g. from :meth:`get_xml`)."""
        body = job_xml.encode("utf-8") if isinstance(job_xml, str) else job_xml
        resp = await self._requester.call(
            Operation.CREATE_JOB_FROM_XML, body=body, content_type=XML, accept="application/xml"
        )
        return decode_int(resp.body)

    # --- read --------------------------------------------------------------------------------

    async def get(self, job_id: int, *, properties: Sequence[str] | str | None = None) -> Job:
        """Get Job (§7.3): all properties, or only ``properties`` (REST names)."""
        resp = await self._requester.call(
            Operation.GET_JOB,
            path_params={"job_id": job_id},
            query=properties_query(properties),
            accept="application/xml",
        )
        return Job.from_properties(decode_property_array(resp.body))

    async def get_xml(self, job_id: int, *, properties: Sequence[str] | str | None = None) -> str:
        """Get Job with ``Render=HpcJobXml``: the job XML (input for :meth:`create_from_xml`)."""
        resp = await self._requester.call(
            Operation.GET_JOB,
            path_params={"job_id": job_id},
            query=[*properties_query(properties), ("Render", "HpcJobXml")],
            accept="application/xml",
        )
        return resp.body.decode("utf-8")

    def list(
        self,
        *,
        owner: str | None = None,
        state: JobState | str | Iterable[JobState | str] | None = None,
        changed_since: datetime | None = None,
        properties: Sequence[str] | str | None = None,
        page_size: int | None = None,
        sort_by: str | None = None,
    ) -> AsyncPager[Job]:
        """Get Job List (§7.4) as a pager: ``async for job in client.jobs.list(): ...``.

        Args:
            owner: only jobs of this owner (``DOMAIN\\user``).
            state: only jobs in this state (or any of these states); sent as
                ``$filter=JobState eq ...`` with ``Render=RestPropRender`` (this needs
                ``api-version`` 2012-11-01, which is sent for this call when the client's is
                older).
            changed_since: only jobs changed at or after this time (``ChangeTimeFrom``).
            properties: properties to return (default ``Id,Owner,Name,State,Priority``).
            page_size: ``RowsPerRead`` (default 10 on the server).
            sort_by: ``SortJobsBy`` (an unknown name sorts by id).
        """
        query = properties_query(properties)
        if owner is not None:
            query.append(("Owner", owner))
        return list_pager(
            self._requester,
            Operation.LIST_JOBS,
            path_params=None,
            query=query,
            filt=filter_query("JobState", JobState, state, changed_since),
            sort=("SortJobsBy", sort_by),
            page_size=page_size,
            build=Job.from_properties,
        )

    # --- change --------------------------------------------------------------------------------

    async def set_properties(
        self, job_id: int, properties: Mapping[str, object] | None = None, **props: object
    ) -> None:
        """Set Job Properties (§7.5). Which properties may change depends on the job's state."""
        values = {**(properties or {}), **props}
        body = encode_property_array(encode_props(JOB_PROPERTIES, "set", values, what="set job"))
        await self._requester.call(
            Operation.SET_JOB_PROPERTIES,
            path_params={"job_id": job_id},
            body=body,
            content_type=XML,
        )

    async def submit(
        self,
        job_id: int,
        *,
        username: str | None = None,
        password: str | None = None,
        **props: object,
    ) -> None:
        """Submit Job (§7.6): Configuring → Submitted (the job needs at least one task).

        Args:
            username, password: run-as credentials, when they are not cached on the head
                node (``UserName``/``Password``). The password is never logged.
            **props: other properties to set just before submission.
        """
        values: dict[str, object] = {**props, "UserName": username, "Password": password}
        body = encode_property_array(
            encode_props(JOB_PROPERTIES, "submit", values, what="submit job")
        )
        await self._requester.call(
            Operation.SUBMIT_JOB, path_params={"job_id": job_id}, body=body, content_type=XML
        )

    async def cancel(self, job_id: int, message: str = "", *, forced: bool = False) -> None:
        """Cancel Job (§7.7). ``message`` (≤ 128 characters) becomes the ``ErrorMessage``.

        Raises:
            BadRequest: the job is already Canceled, Finished or Failed (``code``
                ``-2147220984``).
        """
        if len(message) > 128:
            raise ValueError("the cancel message is limited to 128 characters")
        await self._requester.call(
            Operation.CANCEL_JOB,
            path_params={"job_id": job_id},
            query=[("Forced", "True")] if forced else [],
            body=encode_string(message) if message else b"",
            content_type=XML if message else None,
        )

    async def requeue(self, job_id: int) -> None:
        """Requeue Job (§7.8): a Canceled or Failed job goes back to Queued."""
        await self._requester.call(
            Operation.REQUEUE_JOB,
            path_params={"job_id": job_id},
            body=encode_property_array([]),
            content_type=XML,
        )

    # --- custom properties and environment -----------------------------------------------------

    async def get_custom_properties(
        self, job_id: int, names: Sequence[str] | None = None
    ) -> dict[str, str | None]:
        """Get Job Custom Properties (§7.9): all, or only ``names``."""
        return await self._get_pairs(Operation.GET_JOB_CUSTOM_PROPERTIES, job_id, names)

    async def set_custom_properties(self, job_id: int, values: Mapping[str, str | None]) -> None:
        """Set Job Custom Properties (§7.9): adds or overwrites the given pairs."""
        await self._requester.call(
            Operation.SET_JOB_CUSTOM_PROPERTIES,
            path_params={"job_id": job_id},
            body=name_value_body(values),
            content_type=XML,
        )

    async def get_env(self, job_id: int, names: Sequence[str] | None = None) -> dict[str, str]:
        """Get Job Environment Variables (§7.10). A name that is not set reads as ``""``."""
        pairs = await self._get_pairs(Operation.GET_JOB_ENV, job_id, names)
        return {k: v or "" for k, v in pairs.items()}

    async def set_env(self, job_id: int, values: Mapping[str, str | None]) -> None:
        """Set Job Environment Variables (§7.10). An empty (or ``None``) value removes one."""
        await self._requester.call(
            Operation.SET_JOB_ENV,
            path_params={"job_id": job_id},
            body=name_value_body(values),
            content_type=XML,
        )

    async def _get_pairs(
        self, operation: Operation, job_id: int, names: Sequence[str] | None
    ) -> dict[str, str | None]:
        query = [("Names", ",".join(names))] if names else []
        resp = await self._requester.call(
            operation, path_params={"job_id": job_id}, query=query, accept="application/xml"
        )
        return dict(decode_property_array(resp.body))

    # --- waiting -------------------------------------------------------------------------------

    async def wait(
        self,
        job_id: int,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline spanning many polls
        poll: float = 0.25,
        max_poll: float = 5.0,
    ) -> Job:
        """Poll until the job is Finished, Failed or Canceled; return it (all properties).

        The interval starts at ``poll`` seconds and grows by half each time up to
        ``max_poll``.

        Raises:
            TimeoutError: still not done after ``timeout`` seconds.
        """
        if poll <= 0 or max_poll < poll:
            raise ValueError("need 0 < poll <= max_poll")
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll
        while True:
            job = await self.get(job_id, properties=_WAIT_PROPERTIES)
            if job.is_terminal():
                return await self.get(job_id)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    state = job.state.wire_name if job.state else "unknown"
                    raise TimeoutError(f"job {job_id} is still {state} after {timeout:g}s")
                interval = min(interval, left)
            await asyncio.sleep(interval)
            interval = min(max_poll, interval * 1.5)
