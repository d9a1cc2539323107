"""The aiohttp application: request pipeline and dispatch table.

One catch-all route feeds every request through the same steps, in this order:

1. route (``protocol.match_route``: both URI forms, case-insensitive literals, §2.1–§2.2);
   in strict-length mode a POST/PUT without ``Content-Length`` and ``Transfer-Encoding``
   ends here with 411 (§2.5), as HTTP.sys answers before the service sees the request;
2. fault plan (may delay, answer with a status, or drop the connection);
3. Basic authentication (401 + ``WWW-Authenticate`` on missing or wrong credentials, §2.4);
4. 404 / 405 for unknown paths and methods, 404 for a wrong cluster segment;
5. ``api-version`` (header wins over query; 400 when missing where required or unparseable);
6. the operation's handler from the dispatch table (``state.extra_handlers`` merged over the
   SOA handlers); an operation with no handler answers 404 "not implemented".

A ``FaultError`` from any step is rendered per §2.7 by ``RequestContext.error_format``. A
logging middleware writes one INFO line per request (method, path, status, ms); credentials
never reach it. ``/hpcsoa-admin/...`` serves the fault-plan admin API to loopback peers only.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, unquote

import orjson
from aiohttp import web

from ..protocol import (
    ApiVersion,
    Operation,
    RouteMatch,
    UriForm,
    match_route,
    resolve_api_version,
    route_for,
)
from ..protocol._errors import SOA_FAULT_CODES
from ._context import (
    UNKNOWN_ERROR,
    ErrorFormat,
    FaultError,
    Handler,
    RequestContext,
    error_format_for,
    fault_response,
    wants_json,
)
from ._faults import FaultDecision, FaultPlan, garble_bytes
from ._soa_handlers import SOA_HANDLERS
from ._state import EmulatorState

if TYPE_CHECKING:
    from ..protocol._routes import Route

__all__ = ["STATE_KEY", "build_app"]

log = logging.getLogger("hpcsoa.emulator")
access_log = logging.getLogger("hpcsoa.emulator.access")

STATE_KEY: Final = web.AppKey("hpcsoa_state", EmulatorState)
ADMIN_PREFIX: Final = "/hpcsoa-admin/"
_SECRET_QUERY: Final = ("password", "pwd", "secret", "token", "key")


def _redact_target(raw: str) -> str:
    """The request target for logs, with secret-looking query values replaced."""
    path, sep, query = raw.partition("?")
    if not sep or not any(s in query.lower() for s in _SECRET_QUERY):
        return raw
    parts = []
    for k, v in parse_qsl(query, keep_blank_values=True):
        parts.append(f"{k}={'***' if any(s in k.lower() for s in _SECRET_QUERY) else v}")
    return f"{path}?{'&'.join(parts)}"


@web.middleware
async def _log_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    start = time.perf_counter()
    status = "-"
    try:
        resp = await handler(request)
        status = "aborted" if isinstance(resp, _Aborted) else str(resp.status)
        return resp
    except asyncio.CancelledError:
        status = "cancelled"  # the client went away
        raise
    finally:
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %s %.1fms",
                request.method,
                _redact_target(request.raw_path),
                status,
                (time.perf_counter() - start) * 1000.0,
            )


@functools.lru_cache(maxsize=64)
def _parse_version(value: str) -> ApiVersion:
    """``ApiVersion.parse`` cached: clients send the same value on every call."""
    return ApiVersion.parse(value)


def _parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = binascii.a2b_base64(value.strip().encode("ascii"), strict_mode=True).decode(
            "utf-8"
        )
    except (ValueError, UnicodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


_BATCH_SUFFIXES: Final[dict[str, tuple[Operation, str]]] = {
    "": (Operation.SEND_REQUESTS, "POST"),
    "response": (Operation.GET_RESPONSES, "POST"),
    "commit": (Operation.COMMIT, "POST"),
    "status": (Operation.GET_BATCH_STATUS, "GET"),
    "purge": (Operation.PURGE, "POST"),
}


class FastBatchRoutes:
    """A shortcut to ``match_route`` for the five batch operations (the hot path).

    ``match_route`` tries every row of the operation table; a busy client calls the batch
    operations hundreds of times per second. :meth:`match` recognises exactly
    ``/WindowsHPC[/{configured cluster}]/session/{sid}/batch/{name}[/suffix]`` with the right
    method and returns what ``match_route`` would; anything else (other operations, other
    clusters, wrong methods, odd paths) returns ``None`` and takes the general route. A test
    checks the two agree.
    """

    def __init__(self, cluster: str) -> None:
        # Only when the reference treats the configured name as a cluster segment (a cluster
        # named like a 2016 literal, e.g. "Jobs", would not be).
        ref = match_route("GET", f"/WindowsHPC/{cluster}/Version")
        self._cluster = cluster.lower() if ref is not None and ref.cluster == cluster else None

    def match(self, method: str, path: str) -> RouteMatch | None:
        parts = path.split("/")
        if len(parts) < 7 or parts[0] or parts[1].lower() != "windowshpc":
            return None
        if parts[-1] == "":
            parts.pop()  # a trailing slash, as match_route tolerates
        first = parts[2].lower()
        cluster: str | None = None
        if first == "session":
            rest = parts[2:]
        elif self._cluster is not None and first == self._cluster:
            cluster = parts[2]
            rest = parts[3:]
        else:
            return None
        if (
            len(rest) not in (4, 5)
            or rest[0].lower() != "session"
            or rest[2].lower() != "batch"
            or not rest[1]
            or not rest[3]
        ):
            return None
        entry = _BATCH_SUFFIXES.get(rest[4].lower() if len(rest) == 5 else "")
        if entry is None or entry[1] != method.upper():
            return None
        return RouteMatch(
            route_for(entry[0]),
            {"session_id": unquote(rest[1]), "batch": unquote(rest[3])},
            cluster,
            UriForm.PRE_2016 if cluster is not None else UriForm.HPC2016,
        )


_LENGTH_METHODS: Final = frozenset({"POST", "PUT"})


def _length_required(fmt: ErrorFormat) -> web.Response:
    """``411 Length Required`` (strict mode, §2.5): HTTP.sys refuses a POST/PUT that has
    neither ``Content-Length`` nor ``Transfer-Encoding`` before any routing or
    authentication. The body is an ``HpcWebServiceFault`` (JSON for SOA calls that accept
    JSON; never the legacy ``<string>``)."""
    error = FaultError(
        411,
        UNKNOWN_ERROR,
        "Length Required: a POST or PUT request must carry Content-Length "
        "(Content-Length: 0 when it has no body) or Transfer-Encoding: chunked.",
    )
    return fault_response(error, fmt if fmt is not ErrorFormat.LEGACY else ErrorFormat.FAULT_XML)


def _is_loopback(request: web.Request) -> bool:
    peer = request.remote
    if peer is None:
        return False
    try:
        return ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class _App:
    """The request pipeline bound to one :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.realm = f"HPC Pack ({state.config.cluster})"
        self._users = {u.casefold(): (u, p) for u, p in state.users.items()}
        self._default_user = next(iter(state.users), "anonymous")
        self._fast = FastBatchRoutes(state.config.cluster)

    def handler_for(self, operation: Operation) -> Handler | None:
        """The scheduler half's handler if registered, else the SOA one (read per request,
        so handlers registered after start are seen)."""
        return self.state.extra_handlers.get(operation) or SOA_HANDLERS.get(operation)

    def authenticate(self, request: web.Request, fmt: ErrorFormat) -> str:
        header = request.headers.get("Authorization")
        creds = _parse_basic(header) if header else None
        if self.state.config.auth == "none":
            return creds[0] if creds and creds[0] else self._default_user
        if creds is not None:
            entry = self._users.get(creds[0].casefold())
            if entry is not None and hmac.compare_digest(entry[1].encode(), creds[1].encode()):
                return entry[0]
        message = (
            "Authentication required."
            if header is None
            else "The user name or password is incorrect."
        )
        raise FaultError(
            401,
            SOA_FAULT_CODES["AuthenticationFailure"],
            message,
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        if raw_path.startswith(ADMIN_PREFIX):
            return await self.admin(request)
        state = self.state
        method = request.method
        match = self._fast.match(method, raw_path) or match_route(method, raw_path)
        route: Route | None = match.route if match is not None else None
        family = route.family if route is not None else None
        headers = request.headers
        query = list(request.rel_url.query.items())
        accept_json = wants_json(headers.get("Accept"))
        raw_version = resolve_api_version(headers, query)
        version: ApiVersion | None = None
        version_error: str | None = None
        if raw_version is not None:
            try:
                version = _parse_version(raw_version)
            except ValueError as exc:
                version_error = str(exc)
        fmt = error_format_for(
            family,
            accept_json=accept_json,
            api_version=version,
            has_api_version=raw_version is not None,
            ccp_version="CCP_Version" in headers,
        )
        if (
            state.config.strict_length
            and method in _LENGTH_METHODS
            and "Content-Length" not in headers
            and "Transfer-Encoding" not in headers
        ):
            return _length_required(fmt)
        decision = None
        if state.faults.plan is not None:
            decision = state.faults.decide(
                method, request.raw_path, route.operation.value if route else None
            )
        try:
            if decision is not None:
                early = await self._pre_fault(request, decision, fmt)
                if early is not None:
                    return early
            user = self.authenticate(request, fmt)
            if match is None or route is None:
                if match is not None and match.allowed_methods:
                    raise FaultError(
                        405,
                        SOA_FAULT_CODES["InvalidArgument"],
                        f"Method {method} is not allowed here.",
                        headers={"Allow": ", ".join(match.allowed_methods)},
                    )
                raise FaultError(404, UNKNOWN_ERROR, f"No operation at {raw_path!r}.")
            if (
                match.cluster is not None
                and match.cluster.casefold() != state.config.cluster.casefold()
            ):
                raise FaultError(
                    404,
                    UNKNOWN_ERROR,
                    f"Unknown cluster {match.cluster!r}; "
                    f"this head node serves {state.config.cluster!r}.",
                )
            self._check_version(route, raw_version, version, version_error)
            handler = self.handler_for(route.operation)
            if handler is None:
                raise FaultError(
                    404,
                    UNKNOWN_ERROR,
                    f"Operation {route.operation.value} is not implemented by the emulator.",
                )
            ctx = RequestContext(
                request=request,
                operation=route.operation,
                route=route,
                params=match.params,
                query=query,
                user=user,
                api_version=version,
                accept_json=accept_json,
                error_format=fmt,
                state=state,
                config=state.config,
                fault=decision if decision is not None and decision.rule.acts_on_output else None,
            )
            resp = await handler(ctx)
        except FaultError as exc:
            resp = fault_response(exc, fmt)
        except web.HTTPException as exc:  # e.g. 413 from request.read() beyond client_max_size
            resp = fault_response(FaultError(exc.status, UNKNOWN_ERROR, exc.reason), fmt)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("unhandled error in %s %s", method, raw_path)
            resp = fault_response(FaultError(500, UNKNOWN_ERROR, "Internal emulator error."), fmt)
        if decision is not None and decision.rule.acts_on_output and not resp.prepared:
            return await self._post_fault(request, resp, decision)
        return resp

    @staticmethod
    def _check_version(
        route: Route, raw: str | None, version: ApiVersion | None, error: str | None
    ) -> None:
        code = SOA_FAULT_CODES["WebAPI_APIVersionIncorrect"]
        if error is not None:
            raise FaultError(400, code, f"The api-version is not valid: {error}.")
        if raw is None:
            if route.api_version_required:
                raise FaultError(
                    400, code, "The api-version header or query parameter is required."
                )
            return
        if (
            route.min_version is not None
            and version is not None
            and not version.at_least(route.min_version)
        ):
            raise FaultError(
                400, code, f"This operation needs api-version {route.min_version} or later."
            )

    async def _pre_fault(
        self, request: web.Request, decision: FaultDecision, fmt: ErrorFormat
    ) -> web.StreamResponse | None:
        rule = decision.rule
        if rule.delay_ms > 0:
            await asyncio.sleep(rule.delay_ms / 1000.0)
        if rule.abort == "before":
            return _abort(request)
        if rule.status is not None:
            if rule.body is not None:
                resp = web.Response(status=rule.status, text=rule.body, headers=dict(rule.headers))
            else:
                error = FaultError(
                    rule.status,
                    UNKNOWN_ERROR,
                    "Fault injected by the emulator's fault plan.",
                    headers=rule.headers,
                )
                resp = fault_response(
                    error, fmt if fmt is not ErrorFormat.LEGACY else ErrorFormat.FAULT_XML
                )
            if rule.acts_on_output:
                return await self._post_fault(request, resp, decision)
            return resp
        return None

    async def _post_fault(
        self, request: web.Request, resp: web.StreamResponse, decision: FaultDecision
    ) -> web.StreamResponse:
        rule = decision.rule
        if rule.abort == "after":
            return _abort(request)
        body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else b""
        if rule.garble is not None:
            body = garble_bytes(body, generic=False)
        if rule.truncate_after is not None and rule.truncate_after < len(body):
            out = web.StreamResponse(status=resp.status, headers=resp.headers)
            out.content_length = len(body)
            await out.prepare(request)
            await out.write(body[: rule.truncate_after])
            if request.transport is not None:
                request.transport.close()
            return out
        if isinstance(resp, web.Response) and rule.garble is not None:
            resp.body = body
        return resp

    # --- admin (loopback only) ----------------------------------------------------------------

    async def admin(self, request: web.Request) -> web.StreamResponse:
        if not _is_loopback(request):
            return web.json_response(
                {"error": "the admin API is only served to loopback peers"}, status=403
            )
        try:
            self.authenticate(request, ErrorFormat.JSON)
        except FaultError as exc:
            return fault_response(exc, ErrorFormat.JSON)
        path = request.rel_url.raw_path[len(ADMIN_PREFIX) :].rstrip("/").lower()
        if path == "fault-plan":
            if request.method == "GET":
                return _json(self.state.faults.snapshot())
            if request.method == "PUT":
                try:
                    plan = FaultPlan.from_json(await request.read())
                except ValueError as exc:
                    return _json({"error": str(exc)}, 400)
                self.state.set_fault_plan(plan)
                return _json(self.state.faults.snapshot())
            if request.method == "DELETE":
                self.state.set_fault_plan(None)
                return _json({"plan": None})
            return _json({"error": "use GET, PUT or DELETE"}, 405)
        if path == "stats" and request.method == "GET":
            c = self.state.counters
            return _json({name: getattr(c, name) for name in c.__slots__})
        return _json({"error": "unknown admin resource"}, 404)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(data),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )


class _Aborted(web.StreamResponse):
    """Returned after the connection was dropped on purpose: aiohttp has nothing to send."""


def _abort(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return _Aborted(status=500)


def build_app(state: EmulatorState) -> web.Application:
    """The aiohttp application serving ``state`` (both URI forms, all operations)."""
    app = web.Application(
        client_max_size=state.config.client_max_size, middlewares=[_log_middleware]
    )
    app[STATE_KEY] = state
    pipeline = _App(state)
    app.router.add_route("*", "/{tail:.*}", pipeline.handle)
    return app
