"""SOAP decoding paths (spec §3.5, §4.6): fast tiers vs the full parser, round trips, chunking.

Every envelope the fast path (``_soap_fast``: canonical layout, then any header order and
layout) accepts must decode exactly as the full expat-based parser decodes it; shapes it
declines must still decode correctly through the parser. hypothesis drives round trips of
arbitrary XML-legal text through both paths and any split of the body into chunks, and
arbitrary or mutated bytes must raise only ``ProtocolError``.
"""

from __future__ import annotations

import re

import pytest
from codec_support import (
    SPEC_ARRAY_REQUEST,
    SPEC_REQUEST,
    SPEC_RESPONSES,
    array,
    canonical_response,
    golden,
    requests,
    responses,
    run,
    split_at,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import DecodeError, EncodeError
from hpcsoa.protocol._models import (
    EndOfResponses,
    EndOfResponsesReason,
    SoaFault,
    SoapRequest,
    SoapResponse,
)
from hpcsoa.protocol._soap import (
    RESPONSE_ARRAY_CLOSE,
    RESPONSE_ARRAY_OPEN,
    SoapRequestArrayDecoder,
    SoapResponseDecoder,
    encode_end_of_responses,
    encode_request_array,
    encode_soap_request,
    encode_soap_response,
    parse_wcf_body,
    wcf_body,
    wcf_reply_body,
)
from hpcsoa.protocol._soap_fast import fast_request, fast_response

S = "http://www.w3.org/2003/05/soap-envelope"
A = "http://www.w3.org/2005/08/addressing"
H = "http://www.microsoft.com/hpc"
ENV = f'<s:Envelope xmlns:s="{S}" xmlns:a="{A}">'
TEMPURI = "http://tempuri.org/"
ECHO_BODY = '<Echo xmlns="http://tempuri.org/"><input>hello</input></Echo>'


# --- both paths give the same results ------------------------------------------------------------


CANONICAL = [
    canonical_response(),
    canonical_response(user_data=None, relates_to=None, request_action=None),
    canonical_response(user_data="", callback_id="cb"),
    canonical_response(user_data="a&b<c>\"d'\r\n\te", relates_to=" urn:uuid:2 "),
    canonical_response(user_data="naïve ☃ 𝄞 \u2028"),
    canonical_response(body='<PingResponse xmlns="urn:p"/>'),
    canonical_response(body='<Other xmlns="urn:p"><OtherResult>x</OtherResult></Other>'),
    canonical_response(body='<GetResponse xmlns="urn:p"><GetResult/><More>1</More></GetResponse>'),
    canonical_response(body='<GetResponse xmlns="urn:p"><Value>1</Value></GetResponse>'),
    canonical_response(
        body='<GetResponse xmlns=""><GetResult>&#x1F600;&#65;</GetResult></GetResponse>'
    ),
    encode_end_of_responses(EndOfResponses(3)),
    encode_end_of_responses(EndOfResponses(0, EndOfResponsesReason.CLIENT_TIMEOUT), "x"),
]


@pytest.mark.parametrize("envelope", CANONICAL)
def test_canonical_envelopes_take_the_fast_path_and_match_the_full_parser(envelope):
    fast = fast_response(envelope.decode())
    assert fast is not None
    assert responses(array(envelope)) == [fast]
    assert responses(array(envelope), fast_path=False) == [fast]


def test_fast_path_resolves_references_like_the_parser():
    [item] = responses(array(canonical_response(user_data="a&b<c>\r\n\t")))
    assert item.user_data == "a&b<c>\r\n\t"
    [item] = responses(array(CANONICAL[9]))
    assert item.result == "😀A"
    assert item.body == '<GetResponse xmlns=""><GetResult>&#x1F600;&#65;</GetResult></GetResponse>'
    [item] = responses(array(canonical_response(relates_to=" urn:uuid:2 ")))
    assert item.relates_to == "urn:uuid:2"  # URIs are stripped, user data is not


def test_result_only_for_response_wrapper_with_result_first():
    results = [responses(array(e))[0].result for e in CANONICAL[5:10]]
    assert results == [None, None, "", None, "😀A"]


def test_canonical_requests_take_the_fast_path():
    for request in (
        SPEC_REQUEST,
        SoapRequest("urn:a", '<Op xmlns="urn:x"><a>1</a><b/><c>&amp;</c></Op>', "m", "", None, -3),
        SoapRequest("urn:a", '<Op xmlns="urn:x"/>', ""),
    ):
        envelope = encode_soap_request(request)
        assert fast_request(envelope.decode()) == request
        body = encode_request_array([envelope])
        assert requests(body) == requests(body, fast_path=False) == [request]


def test_pretty_printed_spec_envelopes_take_the_second_fast_tier():
    for name, decode in (
        ("4.6-get-responses.response.xml", fast_response),
        ("4.4-send-requests.request.xml", fast_request),
        ("3.5-send-requests.envelope.xml", fast_request),
    ):
        text = golden(name).decode()
        envelopes = re.findall(r"<s:Envelope.*?</s:Envelope>", text, flags=re.S)
        assert envelopes
        assert all(decode(e) is not None for e in envelopes)


# Envelopes with the canonical start tag but another layout: the second fast tier decodes
# them, and must agree with the full parser exactly.
REORDERED = [
    f"{ENV}\n <s:Header>\n  "
    f'<HPCServer2008_Broker_UserDataNS xmlns="{H}">u &amp; v</HPCServer2008_Broker_UserDataNS>\n'
    "  <a:To s:mustUnderstand='1'>x</a:To>\n"  # single quotes: not for the fast path
    '  <a:Action s:mustUnderstand="1">urn:act</a:Action>\n </s:Header>\n'
    ' <s:Body><EchoResponse xmlns="urn:e"><EchoResult>r</EchoResult></EchoResponse></s:Body>\n'
    "</s:Envelope>",
    f"{ENV}<s:Header>"
    f'<HPCPack2008_Broker_UserDataNS xmlns="{H}">first</HPCPack2008_Broker_UserDataNS>'
    f'<HPCServer2008_Broker_UserNameNS xmlns="{H}">ignored</HPCServer2008_Broker_UserNameNS>'
    "<a:MessageID>urn:uuid:5</a:MessageID><a:RelatesTo>urn:uuid:4</a:RelatesTo>"
    '<Unknown xmlns="urn:other">ignored</Unknown><s:Extra/>'
    '<a:Action s:mustUnderstand="1"> urn:act </a:Action>'
    f'<HPCServer2008_Broker_ResponseCallbackId xmlns="{H}"/>'
    "</s:Header><s:Body>\r\n"
    '<EchoResponse xmlns="urn:e">\r\n  <EchoResult>a&#13;b</EchoResult>\r\n  <More/>\r\n'
    "</EchoResponse>\r\n</s:Body></s:Envelope>",
    f'{ENV}<s:Header><a:Action s:mustUnderstand="1">http://hpc.microsoft.com/EndOfGetResponse'
    f'</a:Action><a:To s:mustUnderstand="1">x</a:To><HPCServer2008_Broker_ResponseCallbackId '
    f'xmlns="{H}">c</HPCServer2008_Broker_ResponseCallbackId></s:Header><s:Body>\n'
    '<EndOfResponses xmlns="urn:any">\n<Count>7</Count>\n<Reason>ClientPurged</Reason>\n'
    "</EndOfResponses>\n</s:Body></s:Envelope>",
]


@pytest.mark.parametrize("envelope", REORDERED)
def test_other_header_orders_and_layout_agree_with_the_full_parser(envelope):
    full = responses(array(envelope), fast_path=False)
    fast = fast_response(envelope)
    if "mustUnderstand='1'" in envelope:
        assert fast is None
    else:
        assert [fast] == full
    assert responses(array(envelope)) == full


def test_second_tier_values():
    [item] = responses(array(REORDERED[1]))
    assert (item.action, item.user_data, item.relates_to, item.callback_id) == (
        "urn:act",
        "first",
        "urn:uuid:4",
        "",
    )
    assert item.result == "a\rb"
    assert item.body.startswith('<EchoResponse xmlns="urn:e">\r\n  <EchoResult>')
    assert responses(array(REORDERED[2])) == [EndOfResponses(7, EndOfResponsesReason.CLIENT_PURGED)]


def test_duplicate_known_header_first_wins():
    envelope = REORDERED[1].replace(
        "<a:MessageID>",
        f'<HPCServer2008_Broker_UserDataNS xmlns="{H}">second</HPCServer2008_Broker_UserDataNS>'
        "<a:MessageID>",
    )
    assert fast_response(envelope) is None  # the fast path leaves duplicates to the parser
    [item] = responses(array(envelope))
    assert item.user_data == "first"


def test_second_tier_declines_reserved_namespaces():
    envelope = REORDERED[1].replace('xmlns="urn:other"', 'xmlns="http://www.w3.org/2000/xmlns/"')
    assert fast_response(envelope) is None
    with pytest.raises(DecodeError, match="malformed"):
        SoapResponseDecoder().feed(array(envelope))


# Envelopes the fast path declines: (envelope, expected item).
FULL_ONLY = [
    (
        f'<soap:Envelope xmlns:soap="{S}" xmlns:wsa="{A}"><soap:Header>'
        '<wsa:Action soap:mustUnderstand="1">urn:act</wsa:Action>'
        "<wsa:RelatesTo>urn:uuid:1</wsa:RelatesTo>"
        f'<HPCPack2008_Broker_UserDataNS xmlns="{H}">ud</HPCPack2008_Broker_UserDataNS>'
        f'<HPCPack2008_Broker_RequestActionNS xmlns="{H}">urn:req'
        "</HPCPack2008_Broker_RequestActionNS>"
        "</soap:Header><soap:Body><R xmlns='urn:r'><RResult>r</RResult></R></soap:Body>"
        "</soap:Envelope>",
        SoapResponse(
            "urn:act",
            "urn:uuid:1",
            "urn:req",
            "ud",
            None,
            "<R xmlns='urn:r'><RResult>r</RResult></R>",
        ),
    ),
    (
        f'<Envelope xmlns="{S}"><Header><Action xmlns="{A}">urn:act</Action></Header>'
        '<Body><EchoResponse xmlns="urn:e"><EchoResult>r</EchoResult></EchoResponse></Body>'
        "</Envelope >",
        SoapResponse(
            "urn:act",
            body='<EchoResponse xmlns="urn:e"><EchoResult>r</EchoResult></EchoResponse>',
            result="r",
        ),
    ),
    (
        f'{ENV}<s:Header><a:Action s:mustUnderstand="1">urn:act</a:Action></s:Header><s:Body>'
        "<EchoResponse xmlns='urn:e'><EchoResult><![CDATA[a<b & </s:Envelope>]]></EchoResult>"
        "</EchoResponse></s:Body></s:Envelope>",
        SoapResponse(
            "urn:act",
            body="<EchoResponse xmlns='urn:e'><EchoResult><![CDATA[a<b & </s:Envelope>]]>"
            "</EchoResult></EchoResponse>",
            result="a<b & </s:Envelope>",
        ),
    ),
    (
        f"{ENV}\r\n  <s:Header>\r\n    <!-- c -->"
        "<a:Action s:mustUnderstand='1'>urn:act</a:Action>\r\n"
        f'    <HPCServer2008_Broker_UserDataNS xmlns="{H}">line1\r\nline2'
        "</HPCServer2008_Broker_UserDataNS>"
        "\r\n  </s:Header>\r\n  <s:Body>\r\n    <EchoResponse xmlns='urn:e'>\r\n      "
        "<EchoResult i:nil='true' xmlns:i='http://www.w3.org/2001/XMLSchema-instance'/>\r\n"
        "    </EchoResponse>\r\n  </s:Body>\r\n</s:Envelope>",
        SoapResponse(
            "urn:act",
            user_data="line1\nline2",
            body="<EchoResponse xmlns='urn:e'>\r\n      <EchoResult i:nil='true' "
            "xmlns:i='http://www.w3.org/2001/XMLSchema-instance'/>\r\n    </EchoResponse>",
            result=None,
        ),
    ),
    (
        f'{ENV}<s:Header><a:Action s:mustUnderstand="1">urn:act</a:Action></s:Header><s:Body>'
        "<EchoResponse xmlns='urn:e'><EchoResult><x>1</x></EchoResult></EchoResponse>"
        "<Second/></s:Body></s:Envelope>",
        SoapResponse(
            "urn:act",
            body="<EchoResponse xmlns='urn:e'><EchoResult><x>1</x></EchoResult></EchoResponse>",
        ),
    ),
    (
        f'{ENV}<s:Header><a:Action s:mustUnderstand="1">urn:act</a:Action></s:Header>'
        f'<s:Body><Fault xmlns="{S}"><Reason><Text>r</Text></Reason></Fault></s:Body></s:Envelope>',
        SoapResponse(
            "urn:act",
            body=f'<Fault xmlns="{S}"><Reason><Text>r</Text></Reason></Fault>',
            fault=SoaFault("Fault", "", "r"),
        ),
    ),
]


@pytest.mark.parametrize(
    "action",
    [
        b" http://hpc.microsoft.com/EndOfGetResponse\n",
        b"&#104;ttp://hpc.microsoft.com/EndOfGetResponse",
    ],
)
def test_end_marker_action_spelled_differently_is_still_an_end_marker(action):
    end = encode_end_of_responses(EndOfResponses(4)).replace(
        b">http://hpc.microsoft.com/EndOfGetResponse<", b">" + action + b"<"
    )
    for fast_path in (True, False):
        assert responses(array(end), fast_path=fast_path) == [EndOfResponses(4)]
    # A response-shaped envelope with that action is an end marker without a valid body.
    reply = canonical_response().replace(
        b">http://tempuri.org/IEchoSvc/EchoResponse<", b">" + action + b"<"
    )
    for fast_path in (True, False):
        with pytest.raises(DecodeError, match="EndOfResponses body"):
            SoapResponseDecoder(fast_path=fast_path).feed(array(reply))


@pytest.mark.parametrize(("envelope", "expected"), FULL_ONLY)
def test_other_shapes_go_through_the_full_parser(envelope, expected):
    assert fast_response(envelope) is None
    body = array(envelope)
    assert responses(body) == responses(body, fast_path=False) == [expected]


def test_namespaces_declared_on_the_root_are_copied_onto_the_body():
    body = (
        f'<Array xmlns:s="{S}" xmlns:a="{A}" xmlns:t="urn:t" xmlns="urn:default">'
        '<s:Envelope><s:Header><a:Action s:mustUnderstand="1">urn:act</a:Action></s:Header>'
        "<s:Body><t:OpResponse t:attr='1'><OpResult>r</OpResult></t:OpResponse></s:Body>"
        "</s:Envelope></Array>"
    ).encode()
    [item] = responses(body)
    assert item.body == (
        '<t:OpResponse xmlns:t="urn:t" xmlns="urn:default" t:attr=\'1\'>'
        "<OpResult>r</OpResult></t:OpResponse>"
    )
    assert item.result == "r"
    assert parse_wcf_body(item.body) == ("OpResponse", "urn:t", [("OpResult", "r")])


def test_dotnet_style_request_with_extra_headers():
    envelope = (
        f'<s:Envelope xmlns:s="{S}" xmlns:a="{A}"><s:Header>'
        '<a:Action s:mustUnderstand="1">http://tempuri.org/IEchoSvc/Echo</a:Action>'
        f'<HPCServer2008_Broker_UserNameNS xmlns="{H}">CONTOSO\\alice'
        "</HPCServer2008_Broker_UserNameNS>"
        f'<HPCPack2008_Broker_ClientInstanceIdNS xmlns="{H}"> 3 '
        "</HPCPack2008_Broker_ClientInstanceIdNS>"
        "<a:MessageID>urn:uuid:abc</a:MessageID><a:ReplyTo><a:Address>"
        "http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>"
        '<a:To s:mustUnderstand="1">https://hn/x</a:To></s:Header>'
        f"<s:Body>{ECHO_BODY}</s:Body></s:Envelope>"
    )
    body = f"<anything>{envelope}{envelope}</anything>".encode()
    expected = SoapRequest(
        "http://tempuri.org/IEchoSvc/Echo", ECHO_BODY, "urn:uuid:abc", None, None, 3
    )
    assert requests(body) == [expected, expected]


def test_request_without_message_id_gets_an_empty_one():
    envelope = (
        f'{ENV}<s:Header><a:Action s:mustUnderstand="1">urn:a</a:Action></s:Header>'
        f"<s:Body>{ECHO_BODY}</s:Body></s:Envelope>"
    )
    for fast_path in (True, False):
        [item] = requests(f"<r>{envelope}</r>".encode(), fast_path=fast_path)
        assert item.message_id == ""


# --- hypothesis: round trips and chunking --------------------------------------------------------

xml_char = st.characters(blacklist_categories=("Cs",)).filter(
    lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")
)
xml_text = st.text(xml_char, max_size=30)
uri = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
names = st.sampled_from(["Echo", "Compute", "Op_1", "a.b-c"])


@st.composite
def response_items(draw):
    op = draw(names)
    result = draw(xml_text)
    values = {
        "action": draw(uri),
        "relates_to": draw(st.none() | uri),
        "request_action": draw(st.none() | uri),
        "user_data": draw(st.none() | xml_text),
        "callback_id": draw(xml_text),
        "body": wcf_reply_body(op, result, draw(uri)),
    }
    expected = SoapResponse(result=result, **values)  # type: ignore[arg-type]
    return encode_soap_response(**values), expected  # type: ignore[arg-type]


@st.composite
def response_bodies(draw):
    pairs = draw(st.lists(response_items(), max_size=5))
    envelopes = [e for e, _ in pairs]
    expected: list[object] = [x for _, x in pairs]
    if draw(st.booleans()):
        end = EndOfResponses(
            draw(st.integers(0, 10**6)), draw(st.sampled_from(EndOfResponsesReason))
        )
        envelopes.append(encode_end_of_responses(end, draw(xml_text)))
        expected.append(end)
    separator = draw(st.sampled_from([b"", b"\n", b"\r\n  "]))
    body = RESPONSE_ARRAY_OPEN + separator.join(envelopes) + RESPONSE_ARRAY_CLOSE
    return body, expected


@given(response_bodies(), st.lists(st.integers(0, 10**5), max_size=10))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_response_round_trip_same_for_both_paths_and_any_split(sample, points):
    body, expected = sample
    chunks = split_at(body, points)
    for fast_path in (True, False):
        assert run(SoapResponseDecoder(fast_path=fast_path), [body]) == (expected, None)
        assert run(SoapResponseDecoder(fast_path=fast_path), chunks) == (expected, None)


@given(
    st.lists(
        st.builds(
            SoapRequest,
            action=uri,
            body=st.builds(wcf_body, names, st.lists(st.tuples(names, xml_text), max_size=3), uri),
            message_id=st.just("") | uri,
            user_data=st.none() | xml_text,
            client_id=st.none() | xml_text,
            client_instance_id=st.none() | st.integers(-(2**31), 2**31 - 1),
        ),
        max_size=4,
    ),
    st.lists(st.integers(0, 10**5), max_size=8),
)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_request_round_trip_same_for_both_paths_and_any_split(items, points):
    body = encode_request_array(encode_soap_request(r) for r in items)
    chunks = split_at(body, points)
    expected = [
        SoapRequest(
            r.action.strip(),
            r.body,
            r.message_id.strip(),
            r.user_data,
            r.client_id,
            r.client_instance_id,
        )
        for r in items
    ]
    for fast_path in (True, False):
        assert run(SoapRequestArrayDecoder(fast_path=fast_path), [body]) == (expected, None)
        assert run(SoapRequestArrayDecoder(fast_path=fast_path), chunks) == (expected, None)


@given(xml_text, st.sampled_from(["\x00", "\x08", "\x0b", "\x1f", "\ufffe", "\uffff", "\udfff"]))
@settings(max_examples=50, deadline=None)
def test_forbidden_code_points_raise(text, bad):
    value = text + bad
    with pytest.raises(EncodeError, match="user_data"):
        encode_soap_response(action="a", user_data=value, body="<x/>")
    with pytest.raises(EncodeError, match="result"):
        wcf_reply_body("Op", value, "urn:x")


@pytest.mark.parametrize(
    "name", ["4.6-get-responses.response.xml", "4.6-get-responses.response.compact.xml"]
)
@pytest.mark.parametrize("fast_path", [True, False])
def test_one_byte_at_a_time(name, fast_path):
    body = golden(name)
    one = [body[i : i + 1] for i in range(len(body))]
    assert run(SoapResponseDecoder(fast_path=fast_path), one) == (SPEC_RESPONSES, None)


def test_every_two_chunk_split_of_the_golden_request_body():
    body = golden("4.4-send-requests.request.xml")
    for cut in range(len(body) + 1):
        assert run(SoapRequestArrayDecoder(), [body[:cut], body[cut:]]) == (
            [SPEC_ARRAY_REQUEST],
            None,
        )


@given(st.binary(max_size=400), st.lists(st.integers(0, 500), max_size=5))
@settings(max_examples=250, deadline=None)
def test_arbitrary_bytes_raise_only_protocol_errors(data, points):
    for cls in (SoapResponseDecoder, SoapRequestArrayDecoder):
        for fast_path in (True, False):
            whole = run(cls(256, fast_path=fast_path), [data])
            split = run(cls(256, fast_path=fast_path), split_at(data, points))
            if whole[1] is None:
                assert split == whole
            else:
                assert split[1] is not None


SEED = golden("4.6-get-responses.response.compact.xml")


@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 3), st.binary(max_size=3)),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(0, 2000), max_size=4),
)
@settings(max_examples=300, deadline=None)
def test_mutated_golden_body_raises_only_protocol_errors(edits, points):
    data = bytearray(SEED)
    for at, delete, insert in edits:
        data[at : at + delete] = insert
    body = bytes(data)
    for fast_path in (True, False):
        whole = run(SoapResponseDecoder(fast_path=fast_path), [body])
        split = run(SoapResponseDecoder(fast_path=fast_path), split_at(body, points))
        if whole[1] is None:
            assert split == whole
        else:
            assert split[1] is not None
