"""Job and task XML (the HPC Pack Job Schema subset of spec §7.2, §7.3, §8.2).

Get Job / Get Task / Get Subtask with ``Render=HpcJobXml`` answer with this format, and
Create Job From XML accepts it (a rendered job is a valid input: that copies a job). Job and
task properties are attributes; custom properties are ``<Term>`` entries and environment
variables ``<Variable>`` entries::

    <Job Version="3.000" Id="118" Name="sweep" State="Configuring"
         xmlns="http://schemas.microsoft.com/HPCS2008R2/scheduler/">
      <Dependencies/>
      <EnvironmentVariables><Variable><Name>X</Name><Value>1</Value></Variable></EnvironmentVariables>
      <CustomProperties><Term><Name>k</Name><Value>v</Value></Term></CustomProperties>
      <Tasks><Task Version="3.000" Name="t1" CommandLine="echo hi"/></Tasks>
    </Job>

Decoding accepts the raw document or one wrapped in a DataContract ``<string>`` (G18), with
or without the scheduler namespace, and returns every attribute as text; deciding which
attributes are settable is the caller's business (the emulator ignores server-assigned ones).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .._exceptions import DecodeError, EncodeError
from ._datacontract import is_nil, parse_document, scalar_text
from ._xml import NS_SCHEDULER, escape_attr, escape_text, local_name

__all__ = [
    "JOB_XML_VERSION",
    "JobXml",
    "TaskXml",
    "decode_job_xml",
    "decode_task_xml",
    "encode_job_xml",
    "encode_task_xml",
]

JOB_XML_VERSION: Final = "3.000"

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class TaskXml:
    """One ``<Task>``: its attributes (``Version`` excluded), custom properties, environment."""

    attributes: Pairs = ()
    custom_properties: Pairs = ()
    environment: Pairs = ()


@dataclass(frozen=True, slots=True)
class JobXml:
    """A ``<Job>`` document: attributes (``Version`` excluded), tasks and name/value sections."""

    attributes: Pairs = ()
    tasks: tuple[TaskXml, ...] = ()
    custom_properties: Pairs = ()
    environment: Pairs = ()


# --- encoding ---------------------------------------------------------------------------------


def _attrs(attributes: Iterable[tuple[str, str]], what: str) -> str:
    out = [f'Version="{JOB_XML_VERSION}"']
    for name, value in attributes:
        if not name or not (name[0].isalpha() or name[0] == "_") or not _is_xml_name(name):
            raise EncodeError(f"{what}: {name!r} is not a valid attribute name")
        _check_chars(value, f"{what} attribute {name}")
        # A literal tab in an attribute would be normalised to a space by the reader.
        out.append(f'{name}="{escape_attr(value).replace(chr(9), "&#9;")}"')
    return " ".join(out)


def _is_xml_name(name: str) -> bool:
    return all(c.isalnum() or c in "_-." for c in name)


def _check_chars(value: str, what: str) -> None:
    for i, c in enumerate(value):
        o = ord(c)
        if (o < 0x20 and c not in "\t\n\r") or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            raise EncodeError(f"{what}: character U+{o:04X} at position {i} cannot be in XML")


def _pairs(section: str, item: str, pairs: Pairs, what: str) -> str:
    if not pairs:
        return ""
    parts = []
    for name, value in pairs:
        _check_chars(name, f"{what} {section} name")
        _check_chars(value, f"{what} {section} {name!r}")
        parts.append(
            f"<{item}><Name>{escape_text(name)}</Name><Value>{escape_text(value)}</Value></{item}>"
        )
    return f"<{section}>{''.join(parts)}</{section}>"


def _task_element(task: TaskXml, *, children: bool, namespace: bool) -> str:
    head = "<Task " + _attrs(task.attributes, "Task")
    if namespace:
        head += f' xmlns="{NS_SCHEDULER}"'
    inner = ""
    if children:
        inner = _pairs("EnvironmentVariables", "Variable", task.environment, "Task") + _pairs(
            "CustomProperties", "Term", task.custom_properties, "Task"
        )
    return f"{head}>{inner}</Task>" if inner else f"{head} />"


def encode_task_xml(task: TaskXml, *, children: bool = True) -> bytes:
    """A standalone ``<Task>`` document (Get Task / Get Subtask with ``Render=HpcJobXml``).

    Args:
        children: include environment and custom properties (``False`` when the request
            named ``Properties``: then only those attributes are rendered).

    Raises:
        EncodeError: a name or value cannot be written as XML.
    """
    return _task_element(task, children=children, namespace=True).encode()


def encode_job_xml(job: JobXml, *, children: bool = True) -> bytes:
    """A ``<Job>`` document (Get Job with ``Render=HpcJobXml``).

    Args:
        children: include dependencies, environment, custom properties and all tasks
            (``False`` when the request named ``Properties``).

    Raises:
        EncodeError: a name or value cannot be written as XML.
    """
    head = f'<Job {_attrs(job.attributes, "Job")} xmlns="{NS_SCHEDULER}"'
    if not children:
        return f"{head} />".encode()
    tasks = "".join(_task_element(t, children=True, namespace=False) for t in job.tasks)
    inner = (
        "<Dependencies />"
        + _pairs("EnvironmentVariables", "Variable", job.environment, "Job")
        + _pairs("CustomProperties", "Term", job.custom_properties, "Job")
        + (f"<Tasks>{tasks}</Tasks>" if tasks else "<Tasks />")
    )
    return f"{head}>{inner}</Job>".encode()


# --- decoding ---------------------------------------------------------------------------------


def _root(body: bytes, expected: str) -> ET.Element:
    what = f"{expected} XML"
    stripped = body.strip(b" \t\r\n\xef\xbb\xbf")
    if not stripped:
        raise DecodeError(f"{what}: empty body")
    root = parse_document(stripped, what)
    if local_name(root.tag) == "string":  # G18: a DataContract <string> wrapping the document
        if is_nil(root):
            raise DecodeError(f"{what}: the <string> wrapper is nil")
        inner = scalar_text(root, f"{what} <string> wrapper").strip()
        if not inner:
            raise DecodeError(f"{what}: the <string> wrapper is empty")
        root = parse_document(inner.encode("utf-8"), what)
    if local_name(root.tag) != expected:
        raise DecodeError(f"{what}: expected root <{expected}>, got <{local_name(root.tag)}>")
    return root


def _attributes(el: ET.Element) -> Pairs:
    # Namespaced attributes (xsi:..., xml:lang) are not properties; Version is the schema's.
    return tuple(
        (k, v) for k, v in el.attrib.items() if not k.startswith("{") and k.lower() != "version"
    )


def _section(el: ET.Element, section: str, item: str, what: str) -> Pairs:
    out: list[tuple[str, str]] = []
    for sec in el:
        if local_name(sec.tag) != section:
            continue
        for i, entry in enumerate(sec):
            if local_name(entry.tag) != item:
                continue
            fields = {local_name(c.tag): c for c in entry}
            name_el = fields.get("Name")
            if name_el is None or is_nil(name_el):
                raise DecodeError(f"{what} {section}[{i}]: <{item}> without a Name")
            value_el = fields.get("Value")
            value = "" if value_el is None or is_nil(value_el) else scalar_text(value_el, "Value")
            out.append((scalar_text(name_el, "Name"), value))
    return tuple(out)


def _task_from(el: ET.Element, what: str) -> TaskXml:
    return TaskXml(
        attributes=_attributes(el),
        custom_properties=_section(el, "CustomProperties", "Term", what),
        environment=_section(el, "EnvironmentVariables", "Variable", what),
    )


def decode_job_xml(body: bytes) -> JobXml:
    """Parse a job XML document (raw or ``<string>``-wrapped, any or no namespace).

    Raises:
        DecodeError / UnsafeXMLError: not well-formed, unsafe, not a ``<Job>``, or a
            ``Term``/``Variable`` without a name.
    """
    root = _root(body, "Job")
    tasks: list[TaskXml] = []
    for sec in root:
        if local_name(sec.tag) == "Tasks":
            for i, t in enumerate(c for c in sec if local_name(c.tag) == "Task"):
                tasks.append(_task_from(t, f"Job XML Task[{i}]"))
    return JobXml(
        attributes=_attributes(root),
        tasks=tuple(tasks),
        custom_properties=_section(root, "CustomProperties", "Term", "Job XML"),
        environment=_section(root, "EnvironmentVariables", "Variable", "Job XML"),
    )


def decode_task_xml(body: bytes) -> TaskXml:
    """Parse a standalone ``<Task>`` document (Get Task with ``Render=HpcJobXml``).

    Raises:
        DecodeError / UnsafeXMLError: not well-formed, unsafe or not a ``<Task>``.
    """
    return _task_from(_root(body, "Task"), "Task XML")
