"""WebSessionStartInfo / WebSessionInfo / BrokerClientStatus codecs (§2.6, §4.1, §4.7, §4.10)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import DecodeError, EncodeError, ProtocolError, UnsafeXMLError
from hpcsoa.protocol._models import (
    BrokerClientStatus,
    ServiceVersion,
    SessionInfo,
    SessionStartInfo,
)
from hpcsoa.protocol._session_codec import (
    SESSION_START_INFO_MEMBERS,
    decode_broker_status,
    decode_session_info,
    decode_session_start_info,
    encode_broker_status_json,
    encode_broker_status_xml,
    encode_session_info_json,
    encode_session_info_xml,
    encode_session_start_info_json,
    encode_session_start_info_xml,
)

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"


def compact(pretty: str) -> bytes:
    return re.sub(r">\s+<", "><", " ".join(pretty.split())).encode()


# --- golden samples ---------------------------------------------------------------------------

START_JSON_41 = (
    b'{"MaxMessageSize":65536,"Password":"s3cret","Runtime":-1,"ServiceName":"CcpEchoSvc",'
    b'"Username":"CONTOSO\\\\alice"}'
)
START_JSON_410 = (
    b'{"MaxMessageSize":2147483647,"Password":"s3cret","Runtime":-1,"ServiceName":"CcpEchoSvc",'
    b'"Username":"CONTOSO\\\\alice"}'
)
START_XML_41 = """
<WebSessionStartInfo xmlns="http://hpc.microsoft.com/" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <MaxMessageSize>65536</MaxMessageSize>
  <Password>s3cret</Password>
  <Runtime>-1</Runtime>
  <ServiceName>CcpEchoSvc</ServiceName>
  <Username>CONTOSO\\alice</Username>
</WebSessionStartInfo>
"""
INFO_JSON_41 = (
    b'{"BrokerNode":"hn01.contoso.com","Id":1043,"IsDurable":false,"MaxMessageSize":65536,'
    b'"ServiceOperationTimeout":86400000,"ServiceVersion":null}'
)
INFO_JSON_410 = (
    b'{"BrokerNode":"hn01:8443","Id":7,"IsDurable":false,"MaxMessageSize":2147483647,'
    b'"ServiceOperationTimeout":86400000,"ServiceVersion":null}'
)
INFO_XML_41 = """
<WebSessionInfo xmlns="http://hpc.microsoft.com/" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <BrokerNode>hn01.contoso.com</BrokerNode>
  <Id>1043</Id>
  <IsDurable>false</IsDurable>
  <MaxMessageSize>65536</MaxMessageSize>
  <ServiceOperationTimeout>86400000</ServiceOperationTimeout>
  <ServiceVersion i:nil="true" xmlns:a="http://schemas.datacontract.org/2004/07/System"/>
</WebSessionInfo>
"""
STATUS_XML_47 = (
    b'<BrokerClientStatus xmlns="http://hpc.microsoft.com">Processing</BrokerClientStatus>'
)

ALICE = SessionStartInfo(
    service_name="CcpEchoSvc", username="CONTOSO\\alice", password="s3cret", max_message_size=65536
)
INFO_41 = SessionInfo("hn01.contoso.com", 1043, False, 65536, 86400000)


# --- WebSessionStartInfo ----------------------------------------------------------------------


def test_start_info_json_golden() -> None:
    assert encode_session_start_info_json(ALICE) == START_JSON_41
    assert decode_session_start_info(START_JSON_41, JSON) == ALICE
    big = dataclasses.replace(ALICE, max_message_size=2147483647)
    assert encode_session_start_info_json(big) == START_JSON_410
    assert decode_session_start_info(START_JSON_410, JSON) == big


def test_start_info_xml_golden() -> None:
    assert encode_session_start_info_xml(ALICE) == compact(START_XML_41)
    assert decode_session_start_info(START_XML_41.encode(), XML) == ALICE
    assert decode_session_start_info(START_XML_41.encode(), XML, strict_order=True) == ALICE


def test_member_table_matches_model_and_is_ordinal() -> None:
    assert list(SESSION_START_INFO_MEMBERS) == sorted(SESSION_START_INFO_MEMBERS)
    assert len(SESSION_START_INFO_MEMBERS) == len(dataclasses.fields(SessionStartInfo))
    # Ordinal, not alphabetical-ignoring-case: uppercase sorts first.
    assert SESSION_START_INFO_MEMBERS.index("UseSessionPool") < SESSION_START_INFO_MEMBERS.index(
        "Username"
    )
    assert SESSION_START_INFO_MEMBERS[-2:] == ("UseSessionPool", "Username")


FULL = SessionStartInfo(
    service_name="CcpEchoSvc",
    username="CONTOSO\\alice",
    password="p<&>w",
    max_message_size=2147483647,
    runtime=3600,
    admin_job_for_host_in_diag=False,
    allocation_grow_load_ratio_threshold=125,
    allocation_shrink_load_ratio_threshold=75,
    can_preempt=True,
    client_connection_timeout=60000,
    client_idle_timeout=300000,
    diagnostic_broker_node="BN01",
    environments=(("PATH", "C:\\bin;D:\\x"), ("EMPTY", "")),
    extended_priority=2000,
    job_template="Default",
    max_units=8,
    messages_throttle_start_threshold=4096,
    messages_throttle_stop_threshold=3072,
    min_units=1,
    node_groups_str="ComputeNodes,GPU",
    priority=2,
    requested_nodes_str="CN01,CN02",
    resource_unit_type=0,
    service_job_name="nightly",
    service_job_project="proj",
    service_operation_timeout=86400000,
    service_version=ServiceVersion(1, 0, -1, -1),
    session_idle_timeout=300000,
    share_session=False,
    use_session_pool=True,
)


def test_full_xml_is_in_ordinal_order_with_datacontract_forms() -> None:
    body = encode_session_start_info_xml(FULL).decode()
    names = re.findall(r"<([A-Z]\w*)[ >]", body)[1:]  # skip the root
    members = [n for n in names if n in SESSION_START_INFO_MEMBERS]
    assert members == list(SESSION_START_INFO_MEMBERS)
    assert (
        '<Environments xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">'
        "<a:KeyValueOfstringstring><a:Key>PATH</a:Key><a:Value>C:\\bin;D:\\x</a:Value>"
        "</a:KeyValueOfstringstring><a:KeyValueOfstringstring><a:Key>EMPTY</a:Key>"
        "<a:Value></a:Value></a:KeyValueOfstringstring></Environments>"
    ) in body
    assert (
        '<ServiceVersion xmlns:a="http://schemas.datacontract.org/2004/07/System">'
        "<a:_Build>-1</a:_Build><a:_Major>1</a:_Major><a:_Minor>0</a:_Minor>"
        "<a:_Revision>-1</a:_Revision></ServiceVersion>"
    ) in body
    assert "<UseSessionPool>true</UseSessionPool><Username>CONTOSO\\alice</Username>" in body
    assert "<Password>p&lt;&amp;&gt;w</Password>" in body
    assert "<AdminJobForHostInDiag>false</AdminJobForHostInDiag>" in body


def test_full_round_trips_both_forms() -> None:
    assert decode_session_start_info(encode_session_start_info_xml(FULL), XML) == FULL
    assert (
        decode_session_start_info(encode_session_start_info_xml(FULL), XML, strict_order=True)
        == FULL
    )
    assert decode_session_start_info(encode_session_start_info_json(FULL), JSON) == FULL


def test_full_json_forms() -> None:
    body = encode_session_start_info_json(FULL)
    assert (
        b'"Environments":[{"Key":"PATH","Value":"C:\\\\bin;D:\\\\x"},{"Key":"EMPTY","Value":""}]'
        in body
    )
    assert b'"ServiceVersion":{"_Build":-1,"_Major":1,"_Minor":0,"_Revision":-1}' in body
    assert body.index(b'"UseSessionPool"') < body.index(b'"Username"')
    assert b" " not in body.replace(b"CcpEchoSvc", b"")  # compact


def test_none_members_omitted() -> None:
    minimal = SessionStartInfo(service_name="Svc")
    assert encode_session_start_info_json(minimal) == b'{"Runtime":-1,"ServiceName":"Svc"}'
    assert encode_session_start_info_xml(minimal) == (
        b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com/" '
        b'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        b"<Runtime>-1</Runtime><ServiceName>Svc</ServiceName></WebSessionStartInfo>"
    )


def _xml(*members: str) -> bytes:
    return (
        '<WebSessionStartInfo xmlns="http://hpc.microsoft.com/" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        + "".join(members)
        + "</WebSessionStartInfo>"
    ).encode()


def test_any_order_by_default_but_strict_drops_early_members() -> None:
    # `Username` before `UseSessionPool`: out of ordinal order.
    body = _xml(
        "<ServiceName>Svc</ServiceName>",
        "<Username>bob</Username>",
        "<UseSessionPool>true</UseSessionPool>",
        "<MaxMessageSize>100</MaxMessageSize>",
    )
    lax = decode_session_start_info(body, XML)
    assert (lax.username, lax.use_session_pool, lax.max_message_size) == ("bob", True, 100)
    strict = decode_session_start_info(body, XML, strict_order=True)
    # Username was consumed; UseSessionPool (earlier in order) and MaxMessageSize were dropped.
    assert (strict.username, strict.use_session_pool, strict.max_message_size) == (
        "bob",
        None,
        None,
    )
    assert strict.service_name == "Svc"


def test_strict_mode_can_drop_service_name() -> None:
    body = _xml("<Username>bob</Username>", "<ServiceName>Svc</ServiceName>")
    assert decode_session_start_info(body, XML).service_name == "Svc"
    with pytest.raises(DecodeError, match="ServiceName is missing"):
        decode_session_start_info(body, XML, strict_order=True)


def test_duplicates() -> None:
    body = _xml("<ServiceName>A</ServiceName>", "<ServiceName>B</ServiceName>")
    with pytest.raises(DecodeError, match="ServiceName: member appears more than once"):
        decode_session_start_info(body, XML)
    assert decode_session_start_info(body, XML, strict_order=True).service_name == "A"


def test_nil_and_unknown_members() -> None:
    body = _xml(
        '<CanPreempt i:nil="true"/>',
        "<Future>ignored</Future>",
        '<MaxMessageSize i:nil="true"/>',
        '<Runtime i:nil="true"/>',
        '<x:ServiceJobName xmlns:x="urn:other">other ns</x:ServiceJobName>',
        "<ServiceName>Svc</ServiceName>",
        '<ServiceVersion i:nil="true"/>',
        "<Username/>",
    )
    info = decode_session_start_info(body, XML, strict_order=True)
    assert info == SessionStartInfo(service_name="Svc", username="")
    json_body = b'{"ServiceName":"Svc","Password":null,"Runtime":null,"Unknown":[1,{"a":2}]}'
    assert decode_session_start_info(json_body, JSON) == SessionStartInfo(service_name="Svc")


def test_lenient_value_forms() -> None:
    body = _xml(
        "<CanPreempt> TRUE </CanPreempt>",
        "<MaxMessageSize> +65536 </MaxMessageSize>",
        "<ServiceName>Svc</ServiceName>",
        "<ShareSession>0</ShareSession>",
    )
    info = decode_session_start_info(body, XML)
    assert (info.can_preempt, info.max_message_size, info.share_session) == (True, 65536, False)
    js = b'{"ServiceName":"Svc","Environments":{"A":"1"},"ServiceVersion":"2.1"}'
    info = decode_session_start_info(js, "application/json")
    assert info.environments == (("A", "1"),)
    assert info.service_version == ServiceVersion(2, 1, -1, -1)


@pytest.mark.parametrize(
    ("body", "ctype", "match"),
    [
        (
            b'{"ServiceName":"S","MaxMessageSize":"big"}',
            JSON,
            "MaxMessageSize: expected an integer",
        ),
        (b'{"ServiceName":"S","MaxMessageSize":1.5}', JSON, "MaxMessageSize: expected an integer"),
        (b'{"ServiceName":"S","MaxMessageSize":2147483648}', JSON, "MaxMessageSize: .*32-bit"),
        (b'{"ServiceName":"S","CanPreempt":"yes"}', JSON, "CanPreempt: expected true or false"),
        (b'{"ServiceName":"S","ShareSession":1}', JSON, "ShareSession: expected true or false"),
        (b'{"ServiceName":5}', JSON, "ServiceName: expected a string"),
        (b'{"ServiceName":"S","Environments":5}', JSON, "Environments: expected an array"),
        (b'{"ServiceName":"S","Environments":[{"K":1}]}', JSON, r"Environments\[0\]"),
        (b'{"ServiceName":"S","ServiceVersion":[1]}', JSON, "ServiceVersion: expected an object"),
        (b'{"ServiceName":"S","ServiceVersion":{"_Major":"1"}}', JSON, "ServiceVersion._Major"),
        (b'{"Username":"u"}', JSON, "ServiceName is missing"),
        (b'{"ServiceName":null}', JSON, "ServiceName is missing"),
        (b"[1]", JSON, "expected a JSON object"),
        (b'{"ServiceName":', JSON, "malformed WebSessionStartInfo JSON"),
        (_xml("<ServiceName>S</ServiceName>", "<Runtime>forever</Runtime>"), XML, "Runtime"),
        (_xml("<CanPreempt>maybe</CanPreempt>", "<ServiceName>S</ServiceName>"), XML, "CanPreempt"),
        (_xml("<ServiceName><b/></ServiceName>"), XML, "ServiceName: expected text"),
        (
            _xml(
                "<Environments><a><Value>v</Value></a></Environments><ServiceName>S</ServiceName>"
            ),
            XML,
            r"Environments\[0\]: entry without a Key",
        ),
        (
            _xml("<ServiceName>S</ServiceName><ServiceVersion><_Major>x</_Major></ServiceVersion>"),
            XML,
            "ServiceVersion._Major",
        ),
        (_xml(), XML, "ServiceName is missing"),
        (
            b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com"><ServiceName>S</ServiceName>'
            b"</WebSessionStartInfo>",
            XML,
            "expected root",
        ),  # namespace without trailing slash
        (
            b"<WebSessionStartInfo><ServiceName>S</ServiceName></WebSessionStartInfo>",
            XML,
            "expected root",
        ),
        (b"<WebSessionInfo/>", XML, "expected root"),
        (b"<WebSessionStartInfo", XML, "malformed"),
        (b"hello", "text/plain", "cannot tell JSON from XML"),
        (b"", None, "cannot tell JSON from XML"),
    ],
)
def test_start_info_bad_input(body: bytes, ctype: str | None, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_session_start_info(body, ctype)


def test_password_never_echoed_in_errors() -> None:
    secret = "hunter2-SECRET"
    for body, ctype in [
        (_xml(f"<Password>{secret}<b/></Password>", "<ServiceName>S</ServiceName>"), XML),
        (b'{"ServiceName":"S","Password":["' + secret.encode() + b'"]}', JSON),
    ]:
        with pytest.raises(DecodeError) as info:
            decode_session_start_info(body, ctype)
        assert secret not in str(info.value)
        assert "Password" in str(info.value)
    with pytest.raises(EncodeError) as enc:
        encode_session_start_info_xml(SessionStartInfo(service_name="S", password=secret + "\x00"))
    assert secret not in str(enc.value)
    assert secret not in repr(SessionStartInfo(service_name="S", password=secret))


def test_content_type_is_sniffed_when_missing() -> None:
    assert decode_session_start_info(START_JSON_41, None) == ALICE
    assert decode_session_start_info(START_XML_41.encode(), "") == ALICE
    assert decode_session_start_info(b"\xef\xbb\xbf" + START_JSON_41, "text/plain") == ALICE


def test_start_info_rejects_entity_bomb() -> None:
    body = (
        b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com/"><ServiceName>&b;</ServiceName>'
        b"</WebSessionStartInfo>"
    )
    with pytest.raises(UnsafeXMLError):
        decode_session_start_info(body, XML)


_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or c >= " "
    ),
    max_size=12,
)
_i32 = st.integers(-(2**31), 2**31 - 1)
_start_infos = st.builds(
    SessionStartInfo,
    service_name=_text,
    username=st.none() | _text,
    password=st.none() | _text,
    max_message_size=st.none() | _i32,
    runtime=_i32,
    can_preempt=st.none() | st.booleans(),
    environments=st.none() | st.lists(st.tuples(_text, _text), max_size=3).map(tuple),
    service_version=st.none()
    | st.builds(
        ServiceVersion, st.integers(0, 9), st.integers(0, 9), st.integers(-1, 9), st.integers(-1, 9)
    ),
    use_session_pool=st.none() | st.booleans(),
)


@settings(max_examples=150)
@given(_start_infos)
def test_start_info_round_trip_property(info: SessionStartInfo) -> None:
    xml = encode_session_start_info_xml(info)
    assert decode_session_start_info(xml, XML) == info
    assert decode_session_start_info(xml, XML, strict_order=True) == info
    assert decode_session_start_info(encode_session_start_info_json(info), JSON) == info


# --- WebSessionInfo ---------------------------------------------------------------------------


def test_session_info_json_golden() -> None:
    assert encode_session_info_json(INFO_41) == INFO_JSON_41
    assert decode_session_info(INFO_JSON_41, JSON) == INFO_41
    info7 = SessionInfo("hn01:8443", 7, False, 2147483647, 86400000)
    assert encode_session_info_json(info7) == INFO_JSON_410
    # The Java sample's regular expression (§4.1) must match.
    pattern = rb'"BrokerNode":"(.*?)","Id":(\d+),"IsDurable":(true|false)'
    m = re.search(pattern, encode_session_info_json(info7))
    assert m is not None
    assert m.groups() == (b"hn01:8443", b"7", b"false")


def test_session_info_xml_golden() -> None:
    assert encode_session_info_xml(INFO_41) == compact(INFO_XML_41)
    assert decode_session_info(INFO_XML_41.encode(), XML) == INFO_41


def test_session_info_with_version() -> None:
    info = SessionInfo("bn:443", 12, True, 65536, 1000, ServiceVersion(1, 2, 3, -1))
    assert encode_session_info_json(info) == (
        b'{"BrokerNode":"bn:443","Id":12,"IsDurable":true,"MaxMessageSize":65536,'
        b'"ServiceOperationTimeout":1000,"ServiceVersion":{"_Build":3,"_Major":1,"_Minor":2,'
        b'"_Revision":-1}}'
    )
    xml = encode_session_info_xml(info)
    assert b"<a:_Build>3</a:_Build><a:_Major>1</a:_Major><a:_Minor>2</a:_Minor>" in xml
    assert decode_session_info(xml, XML) == info
    assert decode_session_info(encode_session_info_json(info), JSON) == info


def test_session_info_tolerates_order_and_extras() -> None:
    body = (
        b'{"ServiceVersion":null,"Extra":[1],"Id":9,"MaxMessageSize":4294967296,'
        b'"IsDurable":true,"ServiceOperationTimeout":5,"BrokerNode":"b"}'
    )
    assert decode_session_info(body, JSON) == SessionInfo("b", 9, True, 4294967296, 5)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            b'{"Id":1,"IsDurable":false,"MaxMessageSize":1,"ServiceOperationTimeout":1}',
            "BrokerNode",
        ),
        (
            b'{"BrokerNode":"b","Id":"1","IsDurable":false,"MaxMessageSize":1,'
            b'"ServiceOperationTimeout":1}',
            "Id: expected an integer",
        ),
        (
            b'{"BrokerNode":"b","Id":1,"IsDurable":"false","MaxMessageSize":1,'
            b'"ServiceOperationTimeout":1}',
            "IsDurable",
        ),
        (b"<WebSessionInfo><BrokerNode>b</BrokerNode></WebSessionInfo>", "Id is missing"),
        (b"<WebSessionInfo><Id>x</Id></WebSessionInfo>", "Id: expected an integer"),
        (b"<WebSessionStartInfo/>", "expected root <WebSessionInfo>"),
        (b"null", "expected a JSON object"),
    ],
)
def test_session_info_bad_input(body: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_session_info(body, None)


# --- BrokerClientStatus -----------------------------------------------------------------------


def test_broker_status_golden() -> None:
    assert encode_broker_status_xml(BrokerClientStatus.PROCESSING) == STATUS_XML_47
    assert encode_broker_status_json(BrokerClientStatus.PROCESSING) == b"2"
    assert decode_broker_status(STATUS_XML_47, XML) is BrokerClientStatus.PROCESSING
    assert decode_broker_status(b"3", JSON) is BrokerClientStatus.FINISHED  # §4.10


@pytest.mark.parametrize("status", list(BrokerClientStatus))
def test_broker_status_round_trip(status: BrokerClientStatus) -> None:
    assert decode_broker_status(encode_broker_status_xml(status), XML) is status
    assert decode_broker_status(encode_broker_status_json(status), JSON) is status
    assert decode_broker_status(encode_broker_status_json(status), None) is status


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (b'"Ready"', JSON, BrokerClientStatus.READY),
        (b'"1"', JSON, BrokerClientStatus.READY),
        (b" 0 \n", JSON, BrokerClientStatus.UNKNOWN),
        (b"<BrokerClientStatus>2</BrokerClientStatus>", XML, BrokerClientStatus.PROCESSING),
        (b"<BrokerClientStatus> finished </BrokerClientStatus>", None, BrokerClientStatus.FINISHED),
    ],
)
def test_broker_status_lenient(
    body: bytes, ctype: str | None, expected: BrokerClientStatus
) -> None:
    assert decode_broker_status(body, ctype) is expected


@pytest.mark.parametrize(
    "body",
    [
        b"4",
        b"-1",
        b"true",
        b'"Done"',
        b"[2]",
        b"2.0",
        b"<Status>2</Status>",
        b"<BrokerClientStatus>Bogus</BrokerClientStatus>",
        b"<BrokerClientStatus/>",
        b"",
    ],
)
def test_broker_status_rejects(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_broker_status(body, None)


# --- fuzz -------------------------------------------------------------------------------------

_fragments = st.sampled_from(
    [
        b'<WebSessionStartInfo xmlns="http://hpc.microsoft.com/">',
        b"</WebSessionStartInfo>",
        b"<WebSessionInfo>",
        b"</WebSessionInfo>",
        b"<ServiceName>",
        b"</ServiceName>",
        b"<Id>",
        b"</Id>",
        b"<Environments>",
        b"<ServiceVersion>",
        b"<_Major>",
        b"<BrokerClientStatus>",
        b'i:nil="true"',
        b"{",
        b"}",
        b'"ServiceName":',
        b'"Id":',
        b"[",
        b"]",
        b",",
        b"null",
        b"1e400",
        b"-99999999999999999999",
        b"\xff",
        b"\x00",
        b"<!DOCTYPE",
        b"&amp;",
        b'"',
    ]
)
_bodies = st.binary(max_size=200) | st.lists(_fragments, max_size=25).map(b"".join)
_ctypes = st.sampled_from([None, "", XML, JSON, "text/plain", "application/json;x"])


@settings(max_examples=300)
@given(_bodies, _ctypes, st.booleans())
def test_decoders_raise_only_protocol_errors(body: bytes, ctype: str | None, strict: bool) -> None:
    for call in (
        lambda: decode_session_start_info(body, ctype, strict_order=strict),
        lambda: decode_session_info(body, ctype),
        lambda: decode_broker_status(body, ctype),
    ):
        try:
            call()
        except ProtocolError:
            pass
