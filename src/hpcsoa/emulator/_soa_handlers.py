"""Handlers of the SOA operations (spec §4) plus Get Clusters / Get Version (§6.1, §6.2).

Each handler validates its input, calls the broker synchronously (so a sequence of checks and
changes is atomic with respect to other requests) and renders the result. Errors are
:class:`FaultError` with the §3.7 codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import orjson

from .._exceptions import EncodeError, FieldTooLarge, ProtocolError
from ..protocol import (
    GENERIC_REQUEST_ACTION,
    Operation,
    SessionInfo,
    parse_bool,
)
from ..protocol._datacontract import encode_object_array, encode_string, encode_version_array
from ..protocol._generic import GenericRequestDecoder
from ..protocol._session_codec import (
    decode_session_start_info,
    encode_broker_status_json,
    encode_broker_status_xml,
    encode_session_info_json,
    encode_session_info_xml,
)
from ..protocol._soap import SoapRequestArrayDecoder
from ..protocol._xml import NS_SOA, check_xml_chars, local_name, parse_xml
from ._broker import BrokerSession, Message, soa_fault, validate_batch_name
from ._context import (
    FaultError,
    Handler,
    RequestContext,
    empty_response,
    json_response,
    xml_response,
)
from ._streams import stream_responses

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["SOA_HANDLERS"]

_INT32_MAX: Final = 2**31 - 1


def _arg_error(message: str) -> FaultError:
    return soa_fault(400, "ArgumentError", message)


def _bool(ctx: RequestContext, name: str, default: bool | None) -> bool:
    raw = ctx.q(name)
    if raw is None or (raw == "" and default is not None):
        if default is None:
            raise _arg_error(f"The query parameter '{name}' is required.")
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        raise _arg_error(
            f"The query parameter '{name}' must be true or false, got {raw!r}."
        ) from None


def _session_id(ctx: RequestContext) -> int:
    raw = ctx.params["session_id"]
    try:
        value = int(raw, 10)
    except ValueError:
        raise _arg_error(f"Invalid session id {raw!r}: expected an integer.") from None
    if not 0 <= value <= 2**63 - 1:
        raise _arg_error(f"Invalid session id {raw!r}.")
    return value


def _broker_node(ctx: RequestContext) -> str:
    # The authority the client reached us on, so BrokerNode works through proxies too (§2.1).
    host = ctx.request.headers.get("Host")
    return host if host else ctx.state.authority


# §4.1 [DOC]: required members of WebSessionStartInfo (Username/Password only matter with auth).
_REQUIRED_MEMBERS: Final = ("ServiceName", "Username", "Password", "MaxMessageSize", "Runtime")
_REQUIRED_MEMBERS_NO_AUTH: Final = ("ServiceName", "MaxMessageSize", "Runtime")


def _present_members(body: bytes) -> set[str]:
    """Names of the members present in an already-decoded start info body (JSON or XML).

    The codec fills defaults (``Runtime`` = -1), so presence is checked on the raw body.
    """
    text = body.lstrip(b" \t\r\n\xef\xbb\xbf")
    if text.startswith(b"{"):
        data = orjson.loads(text)
        return set(data) if isinstance(data, dict) else set()
    root = parse_xml(body, what="WebSessionStartInfo")
    return {local_name(child.tag) for child in root if child.tag.startswith(_SOA_PREFIX)}


_SOA_PREFIX: Final = "{" + NS_SOA + "}"


def _session_body(ctx: RequestContext, session: BrokerSession, status: int) -> web.Response:
    info = SessionInfo(
        broker_node=_broker_node(ctx),
        id=session.id,
        is_durable=session.durable,
        max_message_size=session.max_message_size,
        service_operation_timeout=session.service_operation_timeout,
        service_version=session.service_version,
    )
    if ctx.accept_json:
        return json_response(encode_session_info_json(info), status)
    return xml_response(encode_session_info_xml(info), status)


# --- sessions -----------------------------------------------------------------------------------


async def create_session(ctx: RequestContext) -> web.StreamResponse:
    durable = _bool(ctx, "durable", None)
    body = await ctx.body()
    try:
        info = decode_session_start_info(
            body, ctx.request.headers.get("Content-Type"), strict_order=ctx.config.strict_order
        )
    except ProtocolError as exc:
        raise _arg_error(f"Invalid WebSessionStartInfo: {exc}") from None
    config = ctx.config
    required = _REQUIRED_MEMBERS if config.auth == "basic" else _REQUIRED_MEMBERS_NO_AUTH
    missing = [m for m in required if m not in _present_members(body)]
    if missing:
        raise _arg_error(f"Invalid WebSessionStartInfo: required member {missing[0]} is missing.")
    if durable and config.reject_durable:
        raise soa_fault(
            400,
            "Azure_NotSupportDurableSession",
            "Durable sessions are not supported by this service.",
        )
    service = ctx.state.services.get(info.service_name)
    if service is None:
        raise soa_fault(
            400, "Service_NotFound", f"The service {info.service_name!r} is not registered."
        )
    service_version = service.bind_version(info.service_version)
    max_size = (
        info.max_message_size
        if info.max_message_size is not None
        else config.default_max_message_size
    )
    if max_size <= 0:
        raise _arg_error(f"MaxMessageSize must be positive, got {max_size}.")
    op_timeout = info.service_operation_timeout
    client_idle = info.client_idle_timeout
    session_idle = info.session_idle_timeout
    session = ctx.state.broker.create_session(
        owner=ctx.user,
        service_name=service.name,
        durable=durable,
        max_message_size=max_size,
        service_operation_timeout=op_timeout
        if op_timeout is not None
        else config.service_operation_timeout_ms,
        client_idle_timeout_ms=max(0, client_idle)
        if client_idle is not None
        else config.client_idle_timeout_ms,
        session_idle_timeout_ms=max(0, session_idle)
        if session_idle is not None
        else config.session_idle_timeout_ms,
        share=bool(info.share_session),
        service_version=service_version,
        job_name=info.service_job_name or None,
    )
    return _session_body(ctx, session, 201)


async def attach_session(ctx: RequestContext) -> web.StreamResponse:
    sid = _session_id(ctx)
    durable = _bool(ctx, "durable", None)
    session = ctx.state.broker.attach(sid, ctx.user, durable=durable)
    return _session_body(ctx, session, 200)


async def close_session(ctx: RequestContext) -> web.StreamResponse:
    ctx.state.broker.close_session(_session_id(ctx), ctx.user)
    return empty_response(200)


# --- batches ------------------------------------------------------------------------------------


def _decode_generic(body: bytes, max_size: int) -> list[Message]:
    decoder = GenericRequestDecoder(max_size)
    records = decoder.feed(body)
    decoder.close()
    return [("", GENERIC_REQUEST_ACTION, r) for r in records]


def _decode_soap(body: bytes, max_size: int, batch: str) -> list[Message]:
    decoder = SoapRequestArrayDecoder(max_size)
    envelopes = decoder.feed(body)
    decoder.close()
    out: list[Message] = []
    folded = batch.casefold()
    for i, env in enumerate(envelopes):
        if env.client_id is not None and env.client_id.casefold() != folded:
            raise _arg_error(
                f"Message {i}: HPCServer2008_Broker_ClientIdNS {env.client_id!r} does not match "
                f"the batch {batch!r} of the URL."
            )
        out.append((env.message_id, env.action, env))
    return out


async def send_requests(ctx: RequestContext) -> web.StreamResponse:
    sid = _session_id(ctx)
    name = ctx.params["batch"]
    generic = _bool(ctx, "genericservice", False)
    commit = _bool(ctx, "commit", False)
    body = await ctx.body()
    # From here on everything is synchronous: checks and the append are one atomic step.
    state = ctx.state
    broker = state.broker
    session = broker.session(sid, ctx.user)
    validate_batch_name(name)
    broker.check_send(session, name, ctx.user, commit=commit)
    messages: list[Message] = []
    if body.strip():
        try:
            if generic:
                messages = _decode_generic(body, session.max_message_size)
            else:
                messages = _decode_soap(body, session.max_message_size, name)
        except FieldTooLarge as exc:
            raise _arg_error(
                f"A message exceeds the session's MaxMessageSize of {session.max_message_size} "
                f"bytes; nothing was queued. ({exc})"
            ) from None
        except ProtocolError as exc:
            raise _arg_error(f"Malformed request body; nothing was queued. ({exc})") from None
    service = state.services.get(session.service_name)
    batch, accepted = broker.send(session, name, ctx.user, messages, commit=commit)
    if service is not None:
        state.dispatcher.submit(service, batch, accepted)
    await state.dispatcher.backpressure()
    return empty_response(201 if commit else 200)


async def commit(ctx: RequestContext) -> web.StreamResponse:
    broker = ctx.state.broker
    session = broker.session(_session_id(ctx), ctx.user)
    broker.commit(session, ctx.params["batch"], ctx.user)
    return empty_response(201)


async def get_responses(ctx: RequestContext) -> web.StreamResponse:
    sid = _session_id(ctx)
    raw_count = ctx.q("count")
    count = -1
    if raw_count not in (None, ""):
        try:
            count = int(raw_count, 10)
        except ValueError:
            raise _arg_error(f"count must be an integer, got {raw_count!r}.") from None
        if not (count == -1 or 0 < count <= _INT32_MAX):
            raise _arg_error(f"count must be -1 or positive, got {count}.")
    reset = _bool(ctx, "reset", False)
    generic = _bool(ctx, "genericservice", False)
    action = ctx.q("action") or None
    clientdata = ctx.q("clientdata") or ""
    try:
        check_xml_chars(clientdata, "clientdata")
        if action is not None:
            check_xml_chars(action, "action")
    except EncodeError as exc:
        raise _arg_error(str(exc)) from None
    broker = ctx.state.broker
    session = broker.session(sid, ctx.user)
    stream = broker.open_stream(
        session, ctx.params["batch"], ctx.user, count=count, reset=reset, action=action
    )
    return await stream_responses(ctx, stream, generic=generic, callback_id=clientdata)


async def get_batch_status(ctx: RequestContext) -> web.StreamResponse:
    broker = ctx.state.broker
    session = broker.session(_session_id(ctx), ctx.user)
    status = broker.status(session, ctx.params["batch"], ctx.user)
    if ctx.accept_json:
        return json_response(encode_broker_status_json(status))
    return xml_response(encode_broker_status_xml(status))


async def purge(ctx: RequestContext) -> web.StreamResponse:
    broker = ctx.state.broker
    session = broker.session(_session_id(ctx), ctx.user)
    broker.purge(session, ctx.params["batch"], ctx.user)
    return empty_response(200)


# --- service / cluster --------------------------------------------------------------------------


async def get_service_versions(ctx: RequestContext) -> web.StreamResponse:
    """§4.9: the registered versions, newest first; ``0.0`` for an unversioned service.

    Always ``ArrayOfVersion`` XML (the only form the spec knows); faults follow ``Accept``.
    """
    name = ctx.params["service"]
    service = ctx.state.services.get(name)
    if service is None:
        raise soa_fault(404, "Service_NotFound", f"The service {name!r} is not registered.")
    return xml_response(encode_version_array(service.listed_versions))


async def get_clusters(ctx: RequestContext) -> web.StreamResponse:
    return xml_response(encode_object_array([[("Name", ctx.config.cluster)]]))


async def get_version(ctx: RequestContext) -> web.StreamResponse:
    return xml_response(encode_string(ctx.config.version))


SOA_HANDLERS: Final[dict[Operation, Handler]] = {
    Operation.CREATE_SESSION: create_session,
    Operation.ATTACH_SESSION: attach_session,
    Operation.CLOSE_SESSION: close_session,
    Operation.SEND_REQUESTS: send_requests,
    Operation.COMMIT: commit,
    Operation.GET_RESPONSES: get_responses,
    Operation.GET_BATCH_STATUS: get_batch_status,
    Operation.PURGE: purge,
    Operation.GET_SERVICE_VERSIONS: get_service_versions,
    Operation.GET_CLUSTERS: get_clusters,
    Operation.GET_VERSION: get_version,
}
