"""SOAP 1.2 envelopes (spec §3.4, §3.5, §4.4, §4.6): golden bytes, both decoder paths, chunking.

Golden fixtures (``tests/fixtures/spec``). The spec's XML examples are pretty-printed; that
whitespace is layout, so each example is kept twice: verbatim (``*.xml``) and in the compact
form our encoders emit (``*.compact.xml``: whitespace between tags removed, and the §4.4
illustrative ``<!-- more envelopes -->`` comment dropped).

* ``3.5-send-requests.envelope[.compact].xml``: §3.5 "Minimal typed request".
* ``4.4-send-requests.request[.compact].xml``: §4.4 Send Requests body.
* ``4.6-get-responses.response[.compact].xml``: §4.6 Get Responses body with the
  ``EndOfResponses`` envelope.

The encoders must reproduce the compact bytes exactly; both forms must decode to the
hand-written expected values, through the fast path and through the full parser. The
agreement of the two decoder paths, round trips and chunking are in ``test_soap_paths.py``.
"""

from __future__ import annotations

import re
import uuid

import pytest
from codec_support import (
    ECHO_BODY,
    SPEC_ARRAY_REQUEST,
    SPEC_REQUEST,
    SPEC_RESPONSES,
    TEMPURI,
    array,
    canonical_response,
    golden,
    requests,
    responses,
    run,
)

from hpcsoa._exceptions import (
    DecodeError,
    EncodeError,
    FieldTooLarge,
    IncompletePage,
    ProtocolError,
)
from hpcsoa.protocol._models import (
    EndOfResponses,
    EndOfResponsesReason,
    SoaFault,
    SoapRequest,
    SoapResponse,
)
from hpcsoa.protocol._soap import (
    REQUEST_ARRAY_CLOSE,
    REQUEST_ARRAY_OPEN,
    RESPONSE_ARRAY_CLOSE,
    RESPONSE_ARRAY_OPEN,
    SoapRequestArrayDecoder,
    SoapResponseDecoder,
    encode_end_of_responses,
    encode_request_array,
    encode_soap_fault_response,
    encode_soap_request,
    encode_soap_response,
    fault_action,
    new_message_id,
    parse_wcf_body,
    wcf_body,
    wcf_reply_body,
)

S = "http://www.w3.org/2003/05/soap-envelope"
A = "http://www.w3.org/2005/08/addressing"
H = "http://www.microsoft.com/hpc"
ENV = f'<s:Envelope xmlns:s="{S}" xmlns:a="{A}">'


def compact(pretty: bytes) -> bytes:
    text = re.sub(rb"\s*<!--.*?-->\s*", b"", pretty, flags=re.S)
    return re.sub(rb">\s+<", b"><", text.strip())


def first_error(decoder, chunks) -> ProtocolError:
    try:
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.close()
    except ProtocolError as exc:
        return exc
    raise AssertionError("no error raised")


# --- golden samples ---------------------------------------------------------------------------


def test_fixture_compact_forms_match_the_verbatim_examples():
    for stem in (
        "3.5-send-requests.envelope",
        "4.4-send-requests.request",
        "4.6-get-responses.response",
    ):
        assert compact(golden(f"{stem}.xml")) == golden(f"{stem}.compact.xml")


def test_spec_3_5_request_envelope_byte_exact():
    assert encode_soap_request(SPEC_REQUEST) == golden("3.5-send-requests.envelope.compact.xml")
    assert wcf_body("Echo", {"input": "hello"}) == ECHO_BODY
    for name in ("3.5-send-requests.envelope.compact.xml", "3.5-send-requests.envelope.xml"):
        body = REQUEST_ARRAY_OPEN + golden(name) + REQUEST_ARRAY_CLOSE
        assert requests(body) == [SPEC_REQUEST]
        assert requests(body, fast_path=False) == [SPEC_REQUEST]


def test_spec_4_4_send_requests_body_byte_exact():
    encoded = encode_request_array([encode_soap_request(SPEC_ARRAY_REQUEST)])
    assert encoded == golden("4.4-send-requests.request.compact.xml")
    for name in ("4.4-send-requests.request.compact.xml", "4.4-send-requests.request.xml"):
        for fast_path in (True, False):
            assert requests(golden(name), fast_path=fast_path) == [SPEC_ARRAY_REQUEST]


def test_spec_4_6_get_responses_body_byte_exact():
    reply = encode_soap_response(
        action="http://tempuri.org/IEchoSvc/EchoResponse",
        relates_to="urn:uuid:0b6d3c2e-39f7-4d1e-9f0e-5a1d2a7c0001",
        request_action="http://tempuri.org/IEchoSvc/Echo",
        user_data="0",
        callback_id="",
        body=wcf_reply_body("Echo", "CN01:hello", TEMPURI),
    )
    end = encode_end_of_responses(EndOfResponses(1))
    assert RESPONSE_ARRAY_OPEN + reply + end + RESPONSE_ARRAY_CLOSE == golden(
        "4.6-get-responses.response.compact.xml"
    )
    for name in ("4.6-get-responses.response.compact.xml", "4.6-get-responses.response.xml"):
        for fast_path in (True, False):
            decoder = SoapResponseDecoder(fast_path=fast_path)
            assert run(decoder, [golden(name)]) == (SPEC_RESPONSES, None)
            assert decoder.ended
            assert decoder.messages == 1


def test_array_constants():
    assert REQUEST_ARRAY_OPEN == RESPONSE_ARRAY_OPEN == b"<HPCServer2008_WebAPI_MessageArray>"
    assert REQUEST_ARRAY_CLOSE == RESPONSE_ARRAY_CLOSE == b"</HPCServer2008_WebAPI_MessageArray>"


def test_message_id_is_a_fresh_urn_uuid():
    first, second = new_message_id(), new_message_id()
    assert first != second
    assert first.startswith("urn:uuid:")
    assert uuid.UUID(first[9:]).version == 4


# --- WCF bodies and encoder details -----------------------------------------------------------


def test_wcf_bodies():
    assert wcf_body("Add", [("a", "1"), ("b", "x<&>\r")], "urn:calc") == (
        '<Add xmlns="urn:calc"><a>1</a><b>x&lt;&amp;&gt;&#13;</b></Add>'
    )
    assert wcf_body("Ping") == '<Ping xmlns="http://tempuri.org/"></Ping>'
    assert wcf_reply_body("Echo", "a&b", 'urn:"q"&') == (
        '<EchoResponse xmlns="urn:&quot;q&quot;&amp;">'
        "<EchoResult>a&amp;b</EchoResult></EchoResponse>"
    )
    assert parse_wcf_body(wcf_body("Add", [("a", "1"), ("b", "x<&>\r")], "urn:calc")) == (
        "Add",
        "urn:calc",
        [("a", "1"), ("b", "x<&>\r")],
    )
    assert parse_wcf_body("<p:Op xmlns:p='urn:p'><p:x>1</p:x><y/></p:Op>") == (
        "Op",
        "urn:p",
        [("x", "1"), ("y", "")],
    )
    assert parse_wcf_body("<Op/>") == ("Op", "", [])


@pytest.mark.parametrize("bad", ["", "<Op>", "not xml", " "])
def test_parse_wcf_body_rejects_malformed(bad):
    with pytest.raises(DecodeError):
        parse_wcf_body(bad)


@pytest.mark.parametrize(("name", "params"), [("1Op", ()), ("a:b", ()), ("Op", [("x y", "1")])])
def test_wcf_body_rejects_bad_names(name, params):
    with pytest.raises(EncodeError):
        wcf_body(name, params)


@pytest.mark.parametrize("field", ["action", "message_id", "user_data", "client_id"])
def test_request_header_with_illegal_character_names_the_field(field):
    values = {"action": "a", "body": "<x/>", "message_id": "m", field: "bad\x01"}
    with pytest.raises(EncodeError, match=field):
        encode_soap_request(SoapRequest(**values))


def test_param_with_illegal_character_names_the_parameter():
    with pytest.raises(EncodeError, match="input"):
        wcf_body("Echo", {"input": "x\ufffe"})
    with pytest.raises(EncodeError, match=r"surrogate|U\+D800"):
        wcf_body("Echo", {"input": "\ud800"})


def test_request_optional_headers():
    minimal = encode_soap_request(SoapRequest(action="urn:a", body="<x/>", message_id=""))
    assert (
        minimal
        == (
            f'{ENV}<s:Header><a:Action s:mustUnderstand="1">urn:a</a:Action></s:Header>'
            "<s:Body><x/></s:Body></s:Envelope>"
        ).encode()
    )
    full = SoapRequest("urn:a", "<x/>", "urn:uuid:1", "", "b", 7)
    encoded = encode_soap_request(full)
    assert b"<HPCServer2008_Broker_UserDataNS " + f'xmlns="{H}"/>'.encode() in encoded
    assert f'<HPCServer2008_Broker_ClientInstanceIdNS xmlns="{H}">7<'.encode() in encoded
    assert requests(encode_request_array([minimal, encoded])) == [
        SoapRequest("urn:a", "<x/>", ""),
        full,
    ]


def test_end_of_responses_encoding():
    end = encode_end_of_responses(EndOfResponses(5, EndOfResponsesReason.CLIENT_PURGED), "cb-1")
    assert f'<HPCServer2008_Broker_ResponseCallbackId xmlns="{H}">cb-1<'.encode() in end
    assert b"<Count>5</Count><Reason>ClientPurged</Reason>" in end
    assert responses(array(end)) == [EndOfResponses(5, EndOfResponsesReason.CLIENT_PURGED)]
    with pytest.raises(EncodeError):
        encode_end_of_responses(EndOfResponses(-1))


# --- faults ---------------------------------------------------------------------------------------

FAULTS = [
    (
        SoaFault("SessionFault", "Receiver", "Session failed", 33554443),
        SoaFault(
            "SessionFault",
            "Receiver",
            "Session failed",
            33554443,
            (("Code", "33554443"), ("Reason", "Session failed")),
        ),
    ),
    (
        SoaFault("RetryOperationError", "Receiver", "retry limit <5> reached"),
        SoaFault(
            "RetryOperationError",
            "Receiver",
            "retry limit <5> reached",
            None,
            (("Reason", "retry limit <5> reached"),),
        ),
    ),
    (SoaFault("Fault", "Sender", "bad request"), SoaFault("Fault", "Sender", "bad request")),
    (
        SoaFault("AuthenticationFailure", "Sender", "denied", detail=(("User", "bob"),)),
        SoaFault("AuthenticationFailure", "Sender", "denied", detail=(("User", "bob"),)),
    ),
]


@pytest.mark.parametrize(("fault", "expected"), FAULTS)
@pytest.mark.parametrize("fast_path", [True, False])
def test_fault_round_trip(fault, expected, fast_path):
    envelope = encode_soap_fault_response(
        fault=fault, relates_to="urn:uuid:9", request_action="urn:op", user_data="u7"
    )
    [item] = responses(array(envelope), fast_path=fast_path)
    assert item.action == fault_action(fault.kind)
    assert item.fault == expected
    assert item.result is None
    assert (item.relates_to, item.request_action, item.user_data, item.callback_id) == (
        "urn:uuid:9",
        "urn:op",
        "u7",
        "",
    )
    # The body is the s:Fault element, made standalone with the envelope's s prefix.
    assert item.body.startswith(f'<s:Fault xmlns:s="{S}"><s:Code><s:Value>s:')
    assert parse_wcf_body(item.body)[:2] == ("Fault", S)


def test_fault_actions():
    assert fault_action("SessionFault") == "http://hpc.microsoft.com/session/SessionFault"
    assert fault_action("Fault") == "http://www.w3.org/2005/08/addressing/soap/fault"


def test_foreign_fault_shape():
    envelope = (
        f'<e:Envelope xmlns:e="{S}" xmlns:w="{A}"><e:Header>'
        "<w:Action>http://example.org/fault</w:Action></e:Header><e:Body><e:Fault>"
        "<e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>x:Bad</e:Value></e:Subcode>"
        "</e:Code><e:Reason><e:Text xml:lang='de'>kaputt</e:Text><e:Text>broken</e:Text>"
        "</e:Reason></e:Fault></e:Body></e:Envelope>"
    )
    [item] = responses(array(envelope))
    assert item.fault == SoaFault("Fault", "Sender", "kaputt")
    assert item.relates_to is None


# --- bad input ---------------------------------------------------------------------------------

GOOD = canonical_response()


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        (b"hello", DecodeError, "not XML"),
        (b"{}", DecodeError, "not XML"),
        (
            array(GOOD.replace(S.encode(), b"http://schemas.xmlsoap.org/soap/envelope/")),
            DecodeError,
            "SOAP 1.2",
        ),
        (array("<NotAnEnvelope/>"), DecodeError, "expected a SOAP envelope"),
        (
            array(GOOD.replace(b"<a:Action", b"<a:Other").replace(b"</a:Action", b"</a:Other")),
            DecodeError,
            "Action",
        ),
        (array(f"{ENV}<s:Header/></s:Envelope>"), DecodeError, "without s:Body"),
        (array(f"<s:Envelope xmlns:s='{S}'/>"), DecodeError, "without s:Body"),
        (array(GOOD[:-30] + GOOD[-29:]), DecodeError, "malformed"),
        (array(GOOD, b"text", GOOD), DecodeError, "unexpected text"),
        (RESPONSE_ARRAY_OPEN + GOOD + b"</Other>", DecodeError, "does not match"),
        (array(GOOD) + b"<more/>", DecodeError, "after the array root"),
        (array(GOOD) + b"x", DecodeError, "after the array root"),
        (array(b"<![CDATA[ ]]>"), DecodeError, "CDATA"),
        (array(b"<!x>"), DecodeError, "invalid markup"),
        (b"<?xml version='1.0' encoding='utf-16'?>" + array(GOOD), DecodeError, "UTF-8"),
        (b"<?xml version='2.0'?>" + array(GOOD), DecodeError, "XML declaration"),
        (b" <?xml version='1.0'?>" + array(GOOD), DecodeError, "not at the start"),
        (array(b"<!-- a -- b -->"), DecodeError, "comment"),
        (b"<r xmlns:s='x' xmlns:s='y'>", DecodeError, "root start tag"),
        (b"<r a=>", DecodeError, "root"),
        (array(GOOD.replace(b"urn:uuid:1", b"&bogus;")), DecodeError, "malformed"),
        (array(GOOD.replace(b"urn:uuid:1", b"&#0;")), DecodeError, "malformed"),
        (array(GOOD.replace(b"urn:uuid:1", b"\xff\xfe")), DecodeError, "malformed"),
        (array(GOOD.replace(b"urn:uuid:1", b"<u:x/>")), DecodeError, "malformed"),  # unbound prefix
    ],
)
@pytest.mark.parametrize("fast_path", [True, False])
def test_bad_response_bodies(body, error, match, fast_path):
    decoder = SoapResponseDecoder(fast_path=fast_path)
    exc = first_error(decoder, [body])  # from feed(), or close() if good envelopes came first
    assert isinstance(exc, error)
    assert re.search(match, str(exc)), exc
    with pytest.raises(error, match=match):  # the error sticks
        decoder.close()


@pytest.mark.parametrize(
    ("end", "match"),
    [
        (encode_end_of_responses(EndOfResponses(3)).replace(b">3<", b">x<"), "Count"),
        (encode_end_of_responses(EndOfResponses(3)).replace(b">3<", b">-3<"), "Count"),
        (encode_end_of_responses(EndOfResponses(3)).replace(b"Success", b"Done"), "Reason"),
        (
            encode_end_of_responses(EndOfResponses(3)).replace(b"<Reason>Success</Reason>", b""),
            "Count and Reason",
        ),
        (
            encode_end_of_responses(EndOfResponses(3)).replace(b"EndOfResponses", b"Other"),
            "EndOfResponses body",
        ),
    ],
)
@pytest.mark.parametrize("fast_path", [True, False])
def test_malformed_end_of_responses(end, match, fast_path):
    decoder = SoapResponseDecoder(fast_path=fast_path)
    with pytest.raises(DecodeError, match=match):
        decoder.feed(array(end))


@pytest.mark.parametrize("fast_path", [True, False])
def test_envelope_after_end_of_responses(fast_path):
    body = array(encode_end_of_responses(EndOfResponses(0)), GOOD)
    decoder = SoapResponseDecoder(fast_path=fast_path)
    assert decoder.feed(body) == [EndOfResponses(0)]  # delivered first
    with pytest.raises(DecodeError, match="after EndOfResponses"):
        decoder.close()


@pytest.mark.parametrize("fast_path", [True, False])
def test_truncated_envelope_is_an_incomplete_page(fast_path):
    body = array(GOOD, GOOD)
    for cut in (len(RESPONSE_ARRAY_OPEN) + len(GOOD) + 40, len(body) - 5, 5, 0):
        decoder = SoapResponseDecoder(fast_path=fast_path)
        items = decoder.feed(body[:cut])
        assert len(items) == sum(cut >= len(RESPONSE_ARRAY_OPEN) + k * len(GOOD) for k in (1, 2))
        with pytest.raises(IncompletePage):
            decoder.close()


def test_page_without_end_marker_is_legal():
    decoder = SoapResponseDecoder()
    assert len(decoder.feed(array(GOOD, GOOD))) == 2
    decoder.close()
    assert not decoder.ended
    assert decoder.messages == 2
    assert "envelopes=2" in repr(decoder)


def test_empty_bodies():
    requests_decoder = SoapRequestArrayDecoder()
    assert requests_decoder.feed(b" \r\n") == []
    requests_decoder.close()  # an empty Send Requests body holds no requests
    assert requests(b"<HPCServer2008_WebAPI_MessageArray/>") == []
    assert (
        responses(b"\xef\xbb\xbf<?xml version='1.0' encoding='utf-8'?><!--x--><r/><?pi x?>") == []
    )
    with pytest.raises(IncompletePage):
        SoapResponseDecoder().close()


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("chunk", [1, 50, 10_000])
def test_envelope_over_the_cap(fast_path, chunk):
    cap = len(GOOD)
    ok = array(GOOD)
    assert run(SoapResponseDecoder(cap, fast_path=fast_path), [ok])[1] is None
    big = array(canonical_response(user_data="x" * 10))
    chunks = [big[i : i + chunk] for i in range(0, len(big), chunk)]
    assert run(SoapResponseDecoder(cap, fast_path=fast_path), chunks)[1] is FieldTooLarge
    endless = [RESPONSE_ARRAY_OPEN + ENV.encode()] + [b"<a:x>y</a:x>" * 20] * 50
    assert run(SoapResponseDecoder(cap, fast_path=fast_path), endless)[1] is FieldTooLarge
    assert (
        run(SoapRequestArrayDecoder(64, fast_path=fast_path), [b"<r><!--" + b"-" * 100])[1]
        is FieldTooLarge
    )


@pytest.mark.parametrize("fast_path", [True, False])
def test_bad_instance_id(fast_path):
    envelope = encode_soap_request(SoapRequest("urn:a", ECHO_BODY, "m", client_instance_id=1))
    for bad in (b"x", b"", b"99999999999"):
        body = encode_request_array([envelope.replace(b">1<", b">" + bad + b"<")])
        with pytest.raises(DecodeError, match="ClientInstanceIdNS"):
            SoapRequestArrayDecoder(fast_path=fast_path).feed(body)


def test_feed_after_close_and_invalid_cap():
    decoder = SoapResponseDecoder()
    decoder.feed(array())
    decoder.close()
    decoder.close()  # idempotent
    with pytest.raises(DecodeError, match="after close"):
        decoder.feed(b"<x/>")
    with pytest.raises(ValueError, match="positive"):
        SoapRequestArrayDecoder(0)


def test_decoded_models_are_genuine_frozen_instances():
    [item] = responses(array(GOOD))
    assert type(item) is SoapResponse
    assert item == SoapResponse(
        "http://tempuri.org/IEchoSvc/EchoResponse",
        "urn:uuid:1",
        "http://tempuri.org/IEchoSvc/Echo",
        "7",
        "",
        wcf_reply_body("Echo", "hi", TEMPURI),
        "hi",
    )
    with pytest.raises(AttributeError):
        item.result = "x"  # type: ignore[misc]
    [request] = requests(encode_request_array([encode_soap_request(SPEC_REQUEST)]))
    assert type(request) is SoapRequest
    assert hash(request) == hash(SPEC_REQUEST)


def test_accepts_any_bytes_like_chunk():
    body = golden("4.6-get-responses.response.compact.xml")
    for chunk in (bytearray(body), memoryview(body)):
        assert run(SoapResponseDecoder(), [chunk]) == (SPEC_RESPONSES, None)
