"""Job / task XML (protocol/_jobxml.py, spec §7.2, §7.3, §8.2)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcsoa import DecodeError, EncodeError, UnsafeXMLError
from hpcsoa.protocol._jobxml import (
    JobXml,
    TaskXml,
    decode_job_xml,
    decode_task_xml,
    encode_job_xml,
    encode_task_xml,
)

NS = "http://schemas.microsoft.com/HPCS2008R2/scheduler/"

# The Create Job From XML example of §7.2, verbatim.
SPEC_EXAMPLE = (
    b'<Job xmlns="http://schemas.microsoft.com/HPCS2008R2/scheduler/" Version="3.000" '
    b'Name="sweep" UnitType="Core" MinCores="1" MaxCores="1">\n'
    b"  <Dependencies/>\n"
    b"  <Tasks>\n"
    b'    <Task Version="3.000" Name="t1" CommandLine="echo hello" MinCores="1" MaxCores="1" '
    b'Type="Basic"/>\n'
    b'    <Task Version="3.000" Name="ps" CommandLine="echo *" Type="ParametricSweep" '
    b'StartValue="1" EndValue="3" IncrementValue="1"/>\n'
    b"  </Tasks>\n"
    b"</Job>"
)


def test_decode_spec_example() -> None:
    job = decode_job_xml(SPEC_EXAMPLE)
    assert job.attributes == (
        ("Name", "sweep"),
        ("UnitType", "Core"),
        ("MinCores", "1"),
        ("MaxCores", "1"),
    )
    assert len(job.tasks) == 2
    assert job.tasks[0].attributes == (
        ("Name", "t1"),
        ("CommandLine", "echo hello"),
        ("MinCores", "1"),
        ("MaxCores", "1"),
        ("Type", "Basic"),
    )
    assert dict(job.tasks[1].attributes)["Type"] == "ParametricSweep"
    assert job.custom_properties == ()
    assert job.environment == ()


def test_decode_without_namespace_and_string_wrapped() -> None:
    bare = SPEC_EXAMPLE.replace(b' xmlns="http://schemas.microsoft.com/HPCS2008R2/scheduler/"', b"")
    expected = decode_job_xml(SPEC_EXAMPLE)
    assert decode_job_xml(bare) == expected
    escaped = SPEC_EXAMPLE.decode().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    wrapped = (
        f'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">{escaped}</string>'
    )
    assert decode_job_xml(wrapped.encode()) == expected
    assert decode_job_xml(b"\xef\xbb\xbf  " + SPEC_EXAMPLE + b"\n") == expected


def test_decode_sections() -> None:
    body = f"""<Job xmlns="{NS}" Name="j">
      <EnvironmentVariables><Variable><Name>A</Name><Value>1</Value></Variable>
        <Variable><Name>B</Name><Value/></Variable></EnvironmentVariables>
      <CustomProperties><Term><Name>k</Name><Value>v &amp; w</Value></Term></CustomProperties>
      <Tasks><Task CommandLine="x"><CustomProperties><Term><Name>t</Name><Value>1</Value></Term>
      </CustomProperties><EnvironmentVariables><Variable><Name>E</Name><Value>2</Value></Variable>
      </EnvironmentVariables></Task></Tasks></Job>""".encode()
    job = decode_job_xml(body)
    assert job.environment == (("A", "1"), ("B", ""))
    assert job.custom_properties == (("k", "v & w"),)
    assert job.tasks[0] == TaskXml((("CommandLine", "x"),), (("t", "1"),), (("E", "2"),))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", DecodeError),
        (b"   ", DecodeError),
        (b"<Job", DecodeError),
        (b"not xml", DecodeError),
        (b"<Task/>", DecodeError),
        (b'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/"/>', DecodeError),
        (b"<string>&lt;Job&gt;</string>", DecodeError),
        (
            b"<Job><CustomProperties><Term><Value>v</Value></Term></CustomProperties></Job>",
            DecodeError,
        ),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><Job Name="&a;"/>', UnsafeXMLError),
        (b"<string>&lt;!DOCTYPE x&gt;&lt;Job/&gt;</string>", UnsafeXMLError),
    ],
)
def test_decode_rejects(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_job_xml(body)


def test_encode_job_xml_layout() -> None:
    doc = JobXml(
        attributes=(("Id", "118"), ("Name", 'a "b" <c>')),
        tasks=(TaskXml((("Id", "7"), ("CommandLine", "echo *"))),),
        custom_properties=(("k", "v"),),
        environment=(("X", "1"),),
    )
    body = encode_job_xml(doc)
    assert body == (
        b'<Job Version="3.000" Id="118" Name="a &quot;b&quot; &lt;c&gt;" xmlns="'
        + NS.encode()
        + b'"><Dependencies /><EnvironmentVariables><Variable><Name>X</Name><Value>1</Value>'
        b"</Variable></EnvironmentVariables><CustomProperties><Term><Name>k</Name><Value>v"
        b'</Value></Term></CustomProperties><Tasks><Task Version="3.000" Id="7" '
        b'CommandLine="echo *" /></Tasks></Job>'
    )
    root = ET.fromstring(body)
    assert root.tag == f"{{{NS}}}Job"
    assert decode_job_xml(body) == doc  # a rendered job is valid input (§7.2)


def test_encode_with_properties_has_attributes_only() -> None:
    # §7.3: Properties=Id,CreateTime,State gives only those attributes.
    doc = JobXml(attributes=(("Id", "118"), ("State", "Configuring")), tasks=(TaskXml(),))
    assert encode_job_xml(doc, children=False) == (
        b'<Job Version="3.000" Id="118" State="Configuring" xmlns="' + NS.encode() + b'" />'
    )
    # §8.2 example shape: <Task Version="3.000" State=... CreateTime=... xmlns=... />
    task = TaskXml((("State", "Configuring"), ("CreateTime", "9/27/2011 9:53:26 PM")))
    assert encode_task_xml(task, children=False) == (
        b'<Task Version="3.000" State="Configuring" CreateTime="9/27/2011 9:53:26 PM" xmlns="'
        + NS.encode()
        + b'" />'
    )
    assert decode_task_xml(encode_task_xml(task)) == task


def test_encode_rejects_unrepresentable() -> None:
    with pytest.raises(EncodeError, match="Name"):
        encode_job_xml(JobXml(attributes=(("Name", "a\x00b"),)))
    with pytest.raises(EncodeError, match="attribute name"):
        encode_job_xml(JobXml(attributes=(("bad name", "x"),)))


_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"
    ).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20)
)
_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True).filter(
    lambda n: n.lower() != "version"
)


@given(
    attrs=st.dictionaries(_NAMES, _TEXT, max_size=5),
    custom=st.lists(st.tuples(_TEXT.filter(lambda s: s != ""), _TEXT), max_size=3),
    tasks=st.lists(st.dictionaries(_NAMES, _TEXT, max_size=3), max_size=3),
)
def test_round_trip(
    attrs: dict[str, str], custom: list[tuple[str, str]], tasks: list[dict[str, str]]
) -> None:
    doc = JobXml(
        attributes=tuple(attrs.items()),
        tasks=tuple(TaskXml(tuple(t.items())) for t in tasks),
        custom_properties=tuple(custom),
    )
    got = decode_job_xml(encode_job_xml(doc))
    # XML normalises CR LF to LF in text content; attributes keep \r via character references.
    assert got.attributes == doc.attributes
    assert got.tasks == doc.tasks
    assert [
        (k.replace("\r\n", "\n"), v.replace("\r\n", "\n")) for k, v in got.custom_properties
    ] == [(k.replace("\r\n", "\n"), v.replace("\r\n", "\n")) for k, v in doc.custom_properties]


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_errors(data: bytes) -> None:
    try:
        decode_job_xml(data)
    except DecodeError:
        pass
