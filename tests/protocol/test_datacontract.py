"""DataContract bodies: property bags, primitive roots, string/version arrays, faults (§2.6, §2.7).

Golden samples are copied from the spec. The encoders must produce the compact form of each
sample byte for byte, and the decoders must read both the compact and the laid-out form, so
that a bug shared by an encoder/decoder pair cannot hide.
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import DecodeError, EncodeError, ProtocolError, UnsafeXMLError
from hpcsoa.protocol._datacontract import (
    decode_fault,
    decode_int,
    decode_object_array,
    decode_property_array,
    decode_string,
    decode_string_array,
    decode_version_array,
    encode_fault_json,
    encode_fault_xml,
    encode_int,
    encode_legacy_fault,
    encode_object_array,
    encode_property_array,
    encode_string,
    encode_string_array,
    encode_version_array,
)
from hpcsoa.protocol._models import ServiceVersion, WebServiceFault


def compact(pretty: str) -> bytes:
    """The spec samples without their layout whitespace (none of them has runs in text)."""
    return re.sub(r">\s+<", "><", " ".join(pretty.split())).encode()


# --- golden samples (spec text) ---------------------------------------------------------------

PROPERTY_ARRAY_26 = """
<ArrayOfProperty xmlns="http://schemas.microsoft.com/HPCS2008R2/common"
                 xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Property><Name>Name</Name><Value>nightly-build</Value></Property>
  <Property><Name>Priority</Name><Value>Normal</Value></Property>
</ArrayOfProperty>
"""

OBJECT_ARRAY_26 = """
<ArrayOfObject xmlns="http://schemas.microsoft.com/HPCS2008R2/common"
               xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Object><Properties>
    <Property><Name>Id</Name><Value>12</Value></Property>
    <Property><Name>State</Name><Value>Running</Value></Property>
  </Properties></Object>
</ArrayOfObject>
"""

# §4.10, verbatim (already compact).
CLUSTERS_410 = (
    b'<ArrayOfObject xmlns="http://schemas.microsoft.com/HPCS2008R2/common" '
    b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Object><Properties><Property>'
    b"<Name>Name</Name><Value>HPCLAB</Value></Property></Properties></Object></ArrayOfObject>"
)

NODE_64 = """
<ArrayOfProperty xmlns="http://schemas.microsoft.com/HPCS2008R2/common" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Property><Name>Name</Name><Value>CN01</Value></Property>
  <Property><Name>State</Name><Value>Online</Value></Property>
  <Property><Name>NumCores</Name><Value>16</Value></Property>
  <Property><Name>Reachable</Name><Value>True</Value></Property>
</ArrayOfProperty>
"""

STRINGS_67 = """
<ArrayOfstring xmlns="http://schemas.microsoft.com/2003/10/Serialization/Arrays" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <string>CN01</string><string>CN02</string>
</ArrayOfstring>
"""

VERSIONS_49 = """
<ArrayOfVersion xmlns="http://schemas.datacontract.org/2004/07/System" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Version><_Build>-1</_Build><_Major>1</_Major><_Minor>0</_Minor><_Revision>-1</_Revision></Version>
</ArrayOfVersion>
"""

FAULT_27 = """
<HpcWebServiceFault xmlns="http://schemas.microsoft.com/HPCS2008R2/common"
                    xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <Code>-2147220984</Code>
  <Message>Jobs in the Canceled state cannot be canceled.</Message>
  <Values i:nil="true" xmlns:a="http://schemas.datacontract.org/2004/07/System.Collections.Generic"/>
</HpcWebServiceFault>
"""

INT_26 = b'<int xmlns="http://schemas.microsoft.com/2003/10/Serialization/">17</int>'
VERSION_62 = (
    b'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">5.3.6420.0</string>'
)


# --- property bags ----------------------------------------------------------------------------


def test_property_array_golden() -> None:
    props = [("Name", "nightly-build"), ("Priority", "Normal")]
    assert encode_property_array(props) == compact(PROPERTY_ARRAY_26)
    assert decode_property_array(PROPERTY_ARRAY_26.encode()) == props
    assert decode_property_array(compact(PROPERTY_ARRAY_26)) == props


def test_node_golden() -> None:
    props = [("Name", "CN01"), ("State", "Online"), ("NumCores", "16"), ("Reachable", "True")]
    assert decode_property_array(NODE_64.encode()) == props
    assert encode_property_array(props) == compact(NODE_64)


def test_object_array_golden() -> None:
    objs = [[("Id", "12"), ("State", "Running")]]
    assert encode_object_array(objs) == compact(OBJECT_ARRAY_26)
    assert decode_object_array(OBJECT_ARRAY_26.encode()) == objs


def test_get_clusters_golden_410() -> None:
    assert decode_object_array(CLUSTERS_410) == [[("Name", "HPCLAB")]]
    assert encode_object_array([[("Name", "HPCLAB")]]) == CLUSTERS_410


def test_nil_empty_and_missing_values() -> None:
    body = (
        b'<ArrayOfProperty xmlns="http://schemas.microsoft.com/HPCS2008R2/common" '
        b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        b'<Property><Name>A</Name><Value i:nil="true"/></Property>'
        b"<Property><Name>B</Name><Value/></Property>"
        b"<Property><Name>C</Name><Value></Value></Property>"
        b"<Property><Name>D</Name></Property>"
        b"<Property><Name>E</Name><Type>String</Type><Value>x</Value></Property>"
        b"<Property><Name>F</Name><Value>  two  spaces \r\n kept </Value></Property>"
        b"</ArrayOfProperty>"
    )
    assert decode_property_array(body) == [
        ("A", None),
        ("B", ""),
        ("C", ""),
        ("D", None),
        ("E", "x"),
        ("F", "  two  spaces \n kept "),  # XML end-of-line handling turns CRLF into LF
    ]


def test_none_is_written_as_nil() -> None:
    assert encode_property_array([("A", None), ("B", "")]) == (
        b'<ArrayOfProperty xmlns="http://schemas.microsoft.com/HPCS2008R2/common" '
        b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        b'<Property><Name>A</Name><Value i:nil="true"/></Property>'
        b"<Property><Name>B</Name><Value></Value></Property></ArrayOfProperty>"
    )


def test_escaping_and_carriage_return_round_trip() -> None:
    props = [("Cmd", 'echo "a<b" & c > d\r\n\ttab ]]>'), ("Name", "naïve ✓ 𝄞")]
    body = encode_property_array(props)
    assert b"&lt;b" in body
    assert b"&amp; c" in body
    assert b"&#13;" in body
    assert decode_property_array(body) == props


@pytest.mark.parametrize("body", [b"", b"   \r\n", b"\xef\xbb\xbf"])
def test_empty_body_is_empty_list(body: bytes) -> None:
    assert decode_property_array(body) == []
    assert decode_object_array(body) == []
    assert decode_string_array(body) == []


def test_empty_arrays() -> None:
    assert decode_property_array(encode_property_array([])) == []
    assert decode_object_array(encode_object_array([])) == []
    assert decode_object_array(encode_object_array([[]])) == [[]]
    assert decode_string_array(encode_string_array([])) == []


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<ArrayOfObject/>", "expected root <ArrayOfProperty>"),
        (
            b"<ArrayOfProperty><Property><Value>x</Value></Property></ArrayOfProperty>",
            "without a Name",
        ),
        (
            b'<ArrayOfProperty xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
            b'<Property><Name i:nil="true"/></Property></ArrayOfProperty>',
            "Name is nil",
        ),
        (
            b"<ArrayOfProperty><Property><Name>a</Name><Value><b/></Value></Property></ArrayOfProperty>",
            "child element",
        ),
        (b"<ArrayOfProperty><Property>", "malformed"),
        (b"not xml", "malformed"),
    ],
)
def test_property_array_bad_input(body: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_property_array(body)


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\ufffe", "\ud800"])
def test_unrepresentable_characters_raise_encode_error(bad: str) -> None:
    with pytest.raises(EncodeError, match=r"ArrayOfProperty\[0\] .*XML 1\.0 cannot represent"):
        encode_property_array([("Name", f"a{bad}b")])
    with pytest.raises(EncodeError, match=r"\[0\]\.Name"):
        encode_property_array([(bad, "v")])
    with pytest.raises(EncodeError):
        encode_string(bad)
    with pytest.raises(EncodeError):
        encode_string_array(["ok", bad])
    with pytest.raises(EncodeError):
        encode_fault_xml(WebServiceFault(1, bad))


_xml_chars = st.characters(
    exclude_categories=["Cs"],
    exclude_characters="\ufffe\uffff",
).filter(lambda c: c in "\t\n\r" or c >= " ")
_xml_text = st.text(_xml_chars, max_size=30)


@settings(max_examples=150)
@given(
    st.lists(
        st.lists(st.tuples(_xml_text, st.none() | _xml_text), max_size=5),
        max_size=4,
    )
)
def test_round_trip_arbitrary_text(objects: list[list[tuple[str, str | None]]]) -> None:
    # `\r` must survive (escape_text writes it as &#13;); a bare "\r\n" in text would not.
    assert decode_object_array(encode_object_array(objects)) == objects
    for props in objects:
        assert decode_property_array(encode_property_array(props)) == props
    strings = [name for props in objects for name, _ in props]
    assert decode_string_array(encode_string_array(strings)) == strings


# --- primitive roots, string and version arrays -----------------------------------------------


def test_int_golden() -> None:
    assert encode_int(17) == INT_26
    assert decode_int(INT_26) == 17
    assert decode_int(b"<int> -5 </int>") == -5
    assert decode_int(encode_int(-(2**63))) == -(2**63)


@pytest.mark.parametrize(
    "body",
    [
        b"<int>1.5</int>",
        b"<int></int>",
        b"<int>\xef\xbc\x91</int>",
        b"<int>1_000</int>",
        b"<int>99999999999999999999</int>",
        b"<string>1</string>",
        b'<int xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>',
    ],
)
def test_int_rejects(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_int(body)


def test_string_golden() -> None:
    assert encode_string("5.3.6420.0") == VERSION_62
    assert decode_string(VERSION_62) == "5.3.6420.0"
    assert decode_string(b"<string/>") == ""
    assert encode_string("a<b&c") == (
        b'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">a&lt;b&amp;c</string>'
    )
    with pytest.raises(DecodeError, match="expected root <string>"):
        decode_string(INT_26)


def test_string_array_golden() -> None:
    assert decode_string_array(STRINGS_67.encode()) == ["CN01", "CN02"]
    assert encode_string_array(["CN01", "CN02"]) == compact(STRINGS_67)


def test_string_array_in_common_namespace_doc_variant() -> None:
    # §6.7: the doc shows the common namespace; decoding goes by local name (G17).
    body = (
        b'<ArrayOfstring xmlns="http://schemas.microsoft.com/HPCS2008R2/common">'
        b"<string>HN</string><string/></ArrayOfstring>"
    )
    assert decode_string_array(body) == ["HN", ""]


def test_job_templates_golden() -> None:
    body = compact(
        '<ArrayOfstring xmlns="http://schemas.microsoft.com/2003/10/Serialization/Arrays" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        "<string>Default</string> <string>GPU</string></ArrayOfstring>"
    )
    assert encode_string_array(["Default", "GPU"]) == body
    assert decode_string_array(body) == ["Default", "GPU"]


def test_version_array_golden() -> None:
    versions = [ServiceVersion(1, 0, -1, -1)]
    assert encode_version_array(versions) == compact(VERSIONS_49)
    assert decode_version_array(VERSIONS_49.encode()) == versions
    assert str(versions[0]) == "1.0"
    two = [ServiceVersion(0, 0), ServiceVersion(2, 1, 3, 4)]
    assert decode_version_array(encode_version_array(two)) == two


def test_version_array_bad_component() -> None:
    with pytest.raises(DecodeError, match=r"ArrayOfVersion\[0\]\._Major"):
        decode_version_array(
            b"<ArrayOfVersion><Version><_Major>x</_Major></Version></ArrayOfVersion>"
        )


# --- faults (§2.7) ----------------------------------------------------------------------------

CANCELED = WebServiceFault(-2147220984, "Jobs in the Canceled state cannot be canceled.")


def test_fault_xml_golden() -> None:
    assert encode_fault_xml(CANCELED) == compact(FAULT_27)
    assert decode_fault(FAULT_27.encode(), "application/xml") == CANCELED
    assert decode_fault(compact(FAULT_27), None) == CANCELED


def test_fault_xml_with_values() -> None:
    fault = WebServiceFault(
        33554447,
        "Broker of session {0} is not active.",
        (("sessionId", "7"), ("x", "<&>")),
    )
    body = encode_fault_xml(fault)
    assert body == (
        b'<HpcWebServiceFault xmlns="http://schemas.microsoft.com/HPCS2008R2/common" '
        b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Code>33554447</Code>'
        b"<Message>Broker of session {0} is not active.</Message>"
        b'<Values xmlns:a="http://schemas.datacontract.org/2004/07/System.Collections.Generic">'
        b"<a:KeyValuePairOfstringstring><a:key>sessionId</a:key><a:value>7</a:value>"
        b"</a:KeyValuePairOfstringstring><a:KeyValuePairOfstringstring><a:key>x</a:key>"
        b"<a:value>&lt;&amp;&gt;</a:value></a:KeyValuePairOfstringstring></Values>"
        b"</HpcWebServiceFault>"
    )
    assert decode_fault(body, "application/xml") == fault
    empty = WebServiceFault(1, "m", ())
    assert decode_fault(encode_fault_xml(empty), None) == empty


def test_fault_json_golden() -> None:
    assert encode_fault_json(CANCELED) == (
        b'{"Code":-2147220984,"Message":"Jobs in the Canceled state cannot be canceled.",'
        b'"Values":null}'
    )
    fault = WebServiceFault(5, "m {0}", (("k", "v"),))
    assert (
        encode_fault_json(fault)
        == b'{"Code":5,"Message":"m {0}","Values":[{"Key":"k","Value":"v"}]}'
    )
    assert decode_fault(encode_fault_json(fault), "application/json") == fault
    assert decode_fault(encode_fault_json(CANCELED), "application/json") == CANCELED


def test_fault_json_tolerant_variants() -> None:
    assert decode_fault(b'{"code":"7","message":"m","values":{"a":"b"}}', None) == (
        WebServiceFault(7, "m", (("a", "b"),))
    )
    assert decode_fault(b'{"Message":"only text"}', None) == "only text"
    assert decode_fault(b'"bare string"', None) == "bare string"
    assert decode_fault(b'{"Code":true,"Message":1}', None) is None
    assert decode_fault(b'{"Code":[1],"Message":"m"}', None) is None


def test_legacy_fault() -> None:
    body = encode_legacy_fault("Only jobs that are in the Canceled or Failed state can be requeued")
    assert body == (
        b'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">'
        b"Only jobs that are in the Canceled or Failed state can be requeued</string>"
    )
    assert decode_fault(body, "application/xml") == (
        "Only jobs that are in the Canceled or Failed state can be requeued"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"<!DOCTYPE html><html><body>oops</body></html>",
        b"Internal Server Error",
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe\x00garbage",
        b"<HpcWebServiceFault><Code>abc</Code></HpcWebServiceFault>",
        b"<HpcWebServiceFault><Code>1<",
        b'<?xml version="1.0" encoding="no-such-encoding"?><string>x</string>',
    ],
)
def test_decode_fault_returns_none_for_non_faults(body: bytes) -> None:
    assert decode_fault(body, "text/html") is None


@given(st.binary(max_size=300))
def test_decode_fault_never_raises(body: bytes) -> None:
    result = decode_fault(body, None)
    assert result is None or isinstance(result, str | WebServiceFault)


# --- unsafe XML -------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ArrayOfProperty><Property><Name>x</Name><Value>&lol3;</Value></Property></ArrayOfProperty>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE string [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">&xxe;</string>"""


@pytest.mark.parametrize(
    "decoder",
    [
        decode_property_array,
        decode_object_array,
        decode_int,
        decode_string,
        decode_string_array,
        decode_version_array,
    ],
)
@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_dtd_and_entities_rejected(decoder: object, body: bytes) -> None:
    with pytest.raises(UnsafeXMLError):
        decoder(body)  # type: ignore[operator]


def test_unsafe_fault_body_is_not_a_fault() -> None:
    assert decode_fault(EXTERNAL_ENTITY, "application/xml") is None


# --- fuzz: arbitrary input raises only ProtocolError ------------------------------------------

_DECODERS = [
    decode_property_array,
    decode_object_array,
    decode_int,
    decode_string,
    decode_string_array,
    decode_version_array,
]

_fragments = st.sampled_from(
    [
        b"<ArrayOfProperty>",
        b"</ArrayOfProperty>",
        b"<Property>",
        b"</Property>",
        b"<Name>",
        b"</Name>",
        b"<Value>",
        b"</Value>",
        b'<Value i:nil="true"/>',
        b"<ArrayOfObject>",
        b"<Object>",
        b"<Properties>",
        b"<int>",
        b"</int>",
        b"<string>",
        b"</string>",
        b"<ArrayOfstring>",
        b"<ArrayOfVersion>",
        b"<Version>",
        b"<_Major>",
        b"</_Major>",
        b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"',
        b"&amp;",
        b"&#0;",
        b"&#x1F600;",
        b"<!ENTITY",
        b"<!DOCTYPE",
        b"-12",
        b"99999999999999999999",
        b"\xff",
        b"\x00",
        b" ",
    ]
)


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.lists(_fragments, max_size=25).map(b"".join))
def test_decoders_raise_only_protocol_errors(body: bytes) -> None:
    for decoder in _DECODERS:
        try:
            decoder(body)
        except ProtocolError:
            pass


def test_orjson_is_not_leaking_through_fault_decoder() -> None:
    # Deeply nested JSON trips orjson's recursion limit: still "not a fault", not an exception.
    body = b"[" * 2000 + b"]" * 2000
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    assert decode_fault(body, "application/json") is None
