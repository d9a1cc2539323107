"""Get Responses as a long-lived chunked stream (spec §4.6).

The handler sends the headers at once, then loops: take every response that is ready (up
to a bound), encode them, write them in **one** ``write`` (several ready responses are
coalesced; a ready response never waits for more), and wait for the broker's ``wake`` when
nothing is ready. The end marker and the closing root tag go into the same write as the last
responses. A client that goes away cancels the handler (``handler_cancellation``); the
``finally`` detaches the cursor.

Fault-plan actions that act on the stream (truncate, garble, duplicate, abort after) are
applied by :class:`_Sink`, per envelope / record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from aiohttp import web

from .._exceptions import EncodeError
from ..protocol import GENERIC_NAMESPACE, SoaFault
from ..protocol._generic import encode_generic_response, encode_generic_trailer
from ..protocol._soap import (
    RESPONSE_ARRAY_CLOSE,
    RESPONSE_ARRAY_OPEN,
    encode_end_of_responses,
    encode_soap_fault_response,
    encode_soap_response,
    fault_action,
    wcf_reply_body,
)
from ._context import CT_OCTET, CT_XML, RequestContext
from ._faults import FaultRule, garble_bytes

if TYPE_CHECKING:
    from ._broker import ResponseStream, StoredResponse

__all__ = ["stream_responses"]

log = logging.getLogger("hpcsoa.emulator")

# Upper bound of responses per write: keeps one write's latency and memory bounded.
_MAX_PER_WRITE: Final = 512
_FAULT_ACTION: Final = fault_action("RetryOperationError")


def _encode_generic(r: StoredResponse) -> bytes:
    action, _, _, user_data, output, _, _ = r
    try:
        return encode_generic_response(action, output, user_data or "")
    except EncodeError as exc:  # e.g. a service output holding U+FFFF or NUL
        return encode_generic_response(_FAULT_ACTION, _unrepresentable(exc), "")


def _encode_soap(r: StoredResponse, index: int, batch_uid: int, callback_id: str) -> bytes:
    action, request_action, relates_to, user_data, output, body, fault = r
    if not relates_to:
        # Generic requests carry no MessageID; the REST front end assigns one (§3.3). Derive
        # it from the batch and the position, so a replay shows the same id.
        relates_to = f"urn:uuid:{batch_uid & 0xFFFFFFFF:08x}-0000-4000-8000-{index:012x}"
    try:
        if fault is not None:
            return encode_soap_fault_response(
                fault=fault,
                relates_to=relates_to,
                request_action=request_action,
                user_data=user_data,
                callback_id=callback_id,
            )
        if body is None:  # a generic request read in SOAP form: the GenericOperation reply
            body = wcf_reply_body("GenericOperation", output, GENERIC_NAMESPACE)
        return encode_soap_response(
            action=action,
            relates_to=relates_to,
            request_action=request_action,
            user_data=user_data,
            callback_id=callback_id,
            body=body,
        )
    except EncodeError as exc:  # e.g. a generic output with characters XML cannot carry
        fault = SoaFault(kind="RetryOperationError", code="Receiver", reason=_unrepresentable(exc))
        return encode_soap_fault_response(
            fault=fault, relates_to=relates_to, callback_id=callback_id
        )


def _unrepresentable(exc: EncodeError) -> str:
    return f"The response cannot be represented in this format: {exc}"


class _Sink:
    """Writes envelopes, applying the fault plan's stream actions."""

    def __init__(
        self, resp: web.StreamResponse, request: web.Request, rule: FaultRule | None, generic: bool
    ) -> None:
        self._resp = resp
        self._request = request
        self._rule = rule
        self._generic = generic
        self._items = 0
        self._bytes = 0
        self.aborted = False

    async def write(self, head: bytes, envelopes: list[bytes], tail: bytes) -> None:
        """Write ``head`` + envelopes + ``tail`` in one go (``head``/``tail``: root tags)."""
        rule = self._rule
        if rule is None:
            await self._resp.write(head + b"".join(envelopes) + tail)
            return
        out: list[bytes] = [head]
        for part in envelopes:
            self._items += 1
            if rule.garble is not None and self._items == rule.garble:
                part = garble_bytes(part, generic=self._generic)
            out.append(part)
            if rule.duplicate is not None and self._items == rule.duplicate:
                out.append(part)
        out.append(tail)
        data = b"".join(out)
        if rule.abort == "after":
            self._abort()
            return
        if rule.truncate_after is not None and self._bytes + len(data) > rule.truncate_after:
            data = data[: rule.truncate_after - self._bytes]
            if data:
                await self._resp.write(data)
            self._abort(flush=True)
            return
        self._bytes += len(data)
        await self._resp.write(data)

    def _abort(self, *, flush: bool = False) -> None:
        self.aborted = True
        transport = self._request.transport
        if transport is not None:
            if flush:
                transport.close()
            else:
                transport.abort()


async def stream_responses(
    ctx: RequestContext, stream: ResponseStream, *, generic: bool, callback_id: str
) -> web.StreamResponse:
    """Serve one Get Responses call from ``stream`` until it ends."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": CT_OCTET if generic else CT_XML})
    resp.enable_chunked_encoding()
    event = asyncio.Event()
    stream.wake = event.set
    rule = ctx.fault.rule if ctx.fault is not None else None
    try:
        await resp.prepare(ctx.request)
        sink = _Sink(resp, ctx.request, rule, generic)
        encode = encode_generic_response
        head = b"" if generic else RESPONSE_ARRAY_OPEN  # the root opens with the first write
        while True:
            event.clear()
            items = stream.take(_MAX_PER_WRITE)
            if generic:
                try:  # one codec call per response, nothing else: this is the hot loop
                    parts = [encode(r[0], r[4], r[3] or "") for r in items]
                except EncodeError:
                    parts = [_encode_generic(r) for r in items]
            else:
                uid = stream.batch.uid
                parts = [
                    _encode_soap(r, i, uid, callback_id)
                    for r, i in zip(items, stream.indices, strict=True)
                ]
            tail = b""
            if stream.ended:
                if stream.eor is not None:
                    parts.append(
                        encode_generic_trailer(stream.eor)
                        if generic
                        else encode_end_of_responses(stream.eor, callback_id)
                    )
                if not generic:
                    tail = RESPONSE_ARRAY_CLOSE
            if parts or head or tail:
                await sink.write(head, parts, tail)
                head = b""
                if sink.aborted:
                    return resp
            if stream.ended:
                break
            if not items:
                await event.wait()
        await resp.write_eof()
    except asyncio.CancelledError:
        raise  # the server is stopping (or the handler was cancelled)
    except ConnectionError:
        # The client went away mid-stream (reader closed, process killed). Nothing to tell
        # it; the batch keeps its cursor for the next Get Responses. aiohttp finishes a
        # returned response on a dead connection quietly, instead of logging a traceback.
        return resp
    except Exception:
        # The headers are gone already, so no fault body is possible: log and drop the
        # connection, which a client sees as a truncated stream.
        log.exception("Get Responses stream failed")
        transport = ctx.request.transport
        if transport is not None:
            transport.abort()
    finally:
        stream.close()
    return resp
