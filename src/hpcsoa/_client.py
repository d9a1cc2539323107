"""``HpcClient``: the facade users hold. Owns the transport; hands out sessions and APIs.

States: *unopened* (constructed; nothing touches the network or the event loop yet), *opened*
(first call or ``async with``; the aiohttp session and connector exist), *closed*
(``aclose()``; every later call raises :class:`~hpcsoa.ClientClosed`). ``aclose()`` detaches
the SOA sessions opened through this client (their local streams and maps stop; the sessions
themselves keep running on the cluster unless they were closed) and closes the connection
pool, unless the ``aiohttp.ClientSession`` was supplied by the caller, which is never closed.
"""

from __future__ import annotations

import enum
import logging
import os
import ssl
import weakref
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._config import BasicAuth, ClientConfig, PoolLimits, RetryPolicy, Timeouts
from ._exceptions import ClientClosed
from ._recovery import AMBIGUOUS, find_session_job, job_name_with_token
from .soa._session import SoaSession, attach_session, create_session
from .transport import AiohttpTransport, Requester

if TYPE_CHECKING:
    import aiohttp

    from .protocol import SessionStartInfo, UriForm

if TYPE_CHECKING:
    from .scheduler import ClusterApi, JobsApi, NodesApi, TasksApi

__all__ = ["HpcClient"]

logger = logging.getLogger("hpcsoa.client")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class HpcClient:
    """An asyncio client of the HPC Pack REST web service.

    Args:
        base_url: ``https://head:443`` (scheme, host, port, optional path prefix).
        username, password: Basic credentials (``DOMAIN\\user``); or pass ``auth``.
        auth: a :class:`~hpcsoa.BasicAuth` (instead of ``username``/``password``). Credentials
            go to the base URL's origin and to the ``BrokerNode`` (a plain ``host[:port]``,
            same scheme) that Create/Attach Session name for batch calls (spec §2.1); never
            anywhere else (redirects are not followed).
        cluster: ``None`` detects the URI form (Get Clusters, cached; unsupported → the HPC
            Pack 2016 form); a name forces the pre-2016 form; ``""`` forces the 2016 form.
        api_version: the ``api-version`` sent on every call.
        verify: ``True`` (system CAs), ``False`` (no verification; emulators only), a CA
            bundle path, or an ``ssl.SSLContext``.
        pin_sha256: hex SHA-256 fingerprint of the server certificate (replaces CA checks).
        limits: connection pool limits.
        retry: the retry policy; ``None`` disables retries.
        timeouts: connect / read / pool / total / stream-idle timeouts.
        session: an ``aiohttp.ClientSession`` to use (never closed by the client; its own
            connector limits apply). Also the hook for other authentication (NTLM,
            Kerberos; spec G34): give it a client middleware that authenticates each request
            and pass no ``username``/``password``; ``create_session`` then needs the
            service job's run-as ``username=``/``password=`` (spec §4.1).

    Raises:
        ValueError: inconsistent arguments (e.g. both ``auth`` and ``username``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        auth: BasicAuth | None = None,
        cluster: str | None = None,
        api_version: str = "2011-11-01",
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        pin_sha256: str | None = None,
        limits: PoolLimits | None = None,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen, shared safely
        timeouts: Timeouts | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if auth is not None and (username is not None or password is not None):
            raise ValueError("pass either auth= or username=/password=, not both")
        if username is not None:
            auth = BasicAuth(username, password or "")
        elif password is not None:
            raise ValueError("password= given without username=")
        self._config = ClientConfig(
            base_url=base_url,
            cluster=cluster,
            api_version=api_version,
            auth=auth,
            verify=verify,
            pin_sha256=pin_sha256,
            limits=limits or PoolLimits(),
            retry=retry,
            timeouts=timeouts or Timeouts(),
        )
        self._transport = AiohttpTransport(self._config, session=session)
        self._requester = Requester(self._config, self._transport)
        self._state = _State.UNOPENED
        self._sessions: weakref.WeakSet[SoaSession] = weakref.WeakSet()
        self._apis: dict[str, Any] = {}

    # -- state -------------------------------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def requester(self) -> Requester:
        """The shared :class:`~hpcsoa.transport.Requester` (routing, errors, retries)."""
        self._check_open()
        return self._requester

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClientClosed(
                "this HpcClient is closed; create a new one (and use it as "
                "'async with HpcClient(...) as client:' so it closes when done)"
            )
        self._state = _State.OPENED

    def pool_stats(self) -> dict[str, int]:
        """``{"limit", "in_use", "idle"}`` connections of the pool."""
        return self._transport.pool_stats()

    async def uri_form(self) -> UriForm:
        """The URI form in use (detected with Get Clusters on first use, then cached)."""
        self._check_open()
        return await self._requester.resolve_uri_form()

    @property
    def cluster_name(self) -> str | None:
        """The detected or configured cluster name (``None`` in the 2016 URI form)."""
        return self._requester.cluster

    # -- SOA ---------------------------------------------------------------------------------------

    async def create_session(
        self,
        service: str,
        *,
        durable: bool = False,
        start_info: SessionStartInfo | None = None,
        **members: Any,
    ) -> SoaSession:
        """Create an SOA session (spec §4.1) and return it, open.

        Args:
            service: the SOA service name, e.g. ``"CcpEchoSvc"``.
            durable: a durable session (requests and responses persisted).
            start_info: a full ``SessionStartInfo``; ``members`` override its fields.
            members: ``SessionStartInfo`` fields, e.g. ``max_message_size=65536``,
                ``client_idle_timeout=60000``. ``username``/``password`` default to the
                client's Basic credentials.

        Create Session is never repeated once its body may have arrived (that would start a
        second service job). Unless ``service_job_name`` is given, the service job is named
        ``"<service> [hpcsoa <token>]"``; if the call then fails without telling whether the
        session was created (connection lost or timed out after sending), the client looks
        for that job and attaches to its session, or raises the error with a note saying no
        session was left behind.

        Raises:
            AuthenticationError: the credentials were rejected.
            ApiError: e.g. unknown service (``code_name == "Service_NotFound"``).
            TransportError / RetryError: the service could not be reached (or, after an
                ambiguous failure, no session of this call exists).
        """
        self._check_open()
        job_name: str | None = None
        named = "service_job_name" in members or (
            start_info is not None and start_info.service_job_name is not None
        )
        if not named:
            job_name = members["service_job_name"] = job_name_with_token(
                service or (start_info.service_name if start_info else "")
            )
        try:
            info = await create_session(
                self._requester,
                service,
                durable=durable,
                start_info=start_info,
                members=members,
                auth=self._config.auth,
            )
        except AMBIGUOUS as failure:
            if job_name is None:
                raise
            session_id = await find_session_job(self.jobs, job_name, failure)
            if session_id is None:
                failure.add_note(
                    f"hpcsoa: no running service job is named {job_name!r}: this call left "
                    "no session behind, creating it again is safe"
                )
                raise
            info = await attach_session(self._requester, session_id, durable=durable)
            logger.warning(
                "recovered session %d (service job %r) after the ambiguous failure",
                session_id,
                job_name,
            )
        return self._adopt(SoaSession(self._requester, info, service=service))

    async def attach_session(self, session_id: int, *, durable: bool = False) -> SoaSession:
        """Attach to a running session (spec §4.2), e.g. from another process.

        Raises:
            SessionNotFound: no such session, or it is closed.
            ApiError: e.g. ``durable`` does not match the session.
        """
        self._check_open()
        info = await attach_session(self._requester, session_id, durable=durable)
        return self._adopt(SoaSession(self._requester, info))

    def _adopt(self, session: SoaSession) -> SoaSession:
        self._sessions.add(session)
        return session

    @property
    def sessions(self) -> Iterable[SoaSession]:
        """The sessions opened through this client that are not closed yet."""
        return [s for s in self._sessions if not s.is_closed()]

    # -- scheduler APIs (built lazily; the scheduler package plugs in here) ------------------------

    def _api(self, name: str) -> Any:
        self._check_open()
        api = self._apis.get(name)
        if api is None:
            from . import scheduler  # lazily: a client used only for SOA never needs it

            api = getattr(scheduler, name)(self._requester)
            self._apis[name] = api
        return api

    @property
    def jobs(self) -> JobsApi:
        """Job operations (spec §7)."""
        api: JobsApi = self._api("JobsApi")
        return api

    @property
    def tasks(self) -> TasksApi:
        """Task and subtask operations (spec §8)."""
        api: TasksApi = self._api("TasksApi")
        return api

    @property
    def nodes(self) -> NodesApi:
        """Node and node-group operations (spec §6)."""
        api: NodesApi = self._api("NodesApi")
        return api

    @property
    def cluster(self) -> ClusterApi:
        """Cluster-wide operations: version, active head node, templates (spec §6)."""
        api: ClusterApi = self._api("ClusterApi")
        return api

    # -- lifecycle ---------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Detach open sessions and close the connection pool (idempotent)."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            for session in list(self._sessions):
                if not session.is_closed():
                    logger.warning(
                        "closing the client with session %d still open: it is detached and "
                        "keeps running on the cluster (close it with 'async with session' or "
                        "session.aclose())",
                        session.id,
                    )
                    await session.detach()
        finally:
            # Even if a detach failed or this task was cancelled: the pool must not outlive
            # the client (the state is already CLOSED, so no later aclose() would do it).
            await self._transport.aclose()

    async def __aenter__(self) -> HpcClient:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        stats = self._transport.pool_stats()
        user = self._config.auth.username if self._config.auth else None
        return (
            f"<HpcClient {self._config.base_url} {self._state.value} user={user!r} "
            f"sessions={len(list(self.sessions))} connections={stats['in_use']} in use/"
            f"{stats['idle']} idle/{stats['limit']} max calls={self._requester.calls} "
            f"retries={self._requester.retries}>"
        )
