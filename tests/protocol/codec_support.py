"""Helpers shared by the codec tests: golden fixtures, chunk splitting, spec example values."""

from __future__ import annotations

from pathlib import Path

from hpcsoa._exceptions import ProtocolError
from hpcsoa.protocol._models import EndOfResponses, EndOfResponsesReason, SoapRequest, SoapResponse
from hpcsoa.protocol._soap import (
    RESPONSE_ARRAY_CLOSE,
    RESPONSE_ARRAY_OPEN,
    SoapRequestArrayDecoder,
    SoapResponseDecoder,
    encode_soap_response,
    wcf_reply_body,
)

SPEC = Path(__file__).resolve().parent.parent / "fixtures" / "spec"
TEMPURI = "http://tempuri.org/"
ECHO_BODY = '<Echo xmlns="http://tempuri.org/"><input>hello</input></Echo>'
ECHO_REPLY = (
    '<EchoResponse xmlns="http://tempuri.org/"><EchoResult>CN01:hello</EchoResult></EchoResponse>'
)


def golden(name: str) -> bytes:
    return (SPEC / name).read_bytes()


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` cut at ``points`` (taken modulo its length + 1)."""
    cuts = sorted({p % (len(data) + 1) for p in points})
    chunks, last = [], 0
    for cut in cuts:
        chunks.append(data[last:cut])
        last = cut
    chunks.append(data[last:])
    return chunks


def run(decoder, chunks):
    """Feed every chunk then close; return (items, exception type or None)."""
    items: list[object] = []
    try:
        for chunk in chunks:
            items.extend(decoder.feed(chunk))
        decoder.close()
    except ProtocolError as exc:
        return items, type(exc)
    return items, None


def responses(body: bytes, *, fast_path: bool = True, cap: int = 1 << 20):
    items, error = run(SoapResponseDecoder(cap, fast_path=fast_path), [body])
    assert error is None, error
    return items


def requests(body: bytes, *, fast_path: bool = True, cap: int = 1 << 20):
    items, error = run(SoapRequestArrayDecoder(cap, fast_path=fast_path), [body])
    assert error is None, error
    return items


def array(*envelopes: bytes | str) -> bytes:
    parts = [e.encode() if isinstance(e, str) else e for e in envelopes]
    return RESPONSE_ARRAY_OPEN + b"".join(parts) + RESPONSE_ARRAY_CLOSE


def canonical_response(**overrides: object) -> bytes:
    values: dict[str, object] = {
        "action": "http://tempuri.org/IEchoSvc/EchoResponse",
        "relates_to": "urn:uuid:1",
        "request_action": "http://tempuri.org/IEchoSvc/Echo",
        "user_data": "7",
        "callback_id": "",
        "body": wcf_reply_body("Echo", "hi", TEMPURI),
    }
    values.update(overrides)
    return encode_soap_response(**values)  # type: ignore[arg-type]


SPEC_REQUEST = SoapRequest(  # the §3.5 example
    action="http://tempuri.org/IEchoSvc/Echo",
    body=ECHO_BODY,
    message_id="urn:uuid:6f1c2b52-6e0f-4c53-9a0b-0d2a4bb0c001",
    user_data="row-1",
    client_id="nightly",
)
SPEC_ARRAY_REQUEST = SoapRequest(  # the §4.4 example
    action="http://tempuri.org/IEchoSvc/Echo",
    body=ECHO_BODY,
    message_id="urn:uuid:0b6d3c2e-39f7-4d1e-9f0e-5a1d2a7c0001",
    user_data="0",
)
SPEC_RESPONSES = [  # the §4.6 example
    SoapResponse(
        action="http://tempuri.org/IEchoSvc/EchoResponse",
        relates_to="urn:uuid:0b6d3c2e-39f7-4d1e-9f0e-5a1d2a7c0001",
        request_action="http://tempuri.org/IEchoSvc/Echo",
        user_data="0",
        callback_id="",
        body=ECHO_REPLY,
        result="CN01:hello",
    ),
    EndOfResponses(1, EndOfResponsesReason.SUCCESS),
]
