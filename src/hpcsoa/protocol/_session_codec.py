"""Session bodies: ``WebSessionStartInfo``, ``WebSessionInfo``, ``BrokerClientStatus`` (§4.1, §4.7).

``WebSessionStartInfo`` (Create Session request) is read by .NET ``DataContractSerializer``,
which expects members in ordinal (code-point) order and *silently skips* a member that appears
earlier than its position (§2.6). So the encoder always writes ordinal order
(``UseSessionPool`` before ``Username``), and the decoder accepts any order by default or, with
``strict_order=True``, drops out-of-order members the way the real service would.

``WebSessionInfo`` JSON is compact with a fixed key order, because the Java sample parses it
with a regular expression (§4.1). ``BrokerClientStatus`` is an element name in the namespace
``http://hpc.microsoft.com`` (no trailing slash) in XML, a bare number in JSON.

Decoders raise only :class:`DecodeError` / :class:`UnsafeXMLError`. Messages name the member
but never echo a ``Password`` value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, Final, Literal

import orjson

from .._exceptions import DecodeError, EncodeError
from ._datacontract import (
    NS_SYSTEM,
    decode_version,
    encode_version_members,
    is_nil,
    parse_document,
    parse_int_text,
    scalar_text,
)
from ._models import BrokerClientStatus, ServiceVersion, SessionInfo, SessionStartInfo
from ._xml import NS_ARRAYS, NS_SOA, NS_XSI, local_name, xml_text

__all__ = [
    "NS_BROKER_STATUS",
    "SESSION_START_INFO_MEMBERS",
    "decode_broker_status",
    "decode_session_info",
    "decode_session_start_info",
    "encode_broker_status_json",
    "encode_broker_status_xml",
    "encode_session_info_json",
    "encode_session_info_xml",
    "encode_session_start_info_json",
    "encode_session_start_info_xml",
]

NS_BROKER_STATUS: Final = "http://hpc.microsoft.com"  # the .NET code constant: no trailing slash

_Kind = Literal["str", "int", "bool", "env", "version"]

# Wire name → (SessionStartInfo attribute, kind). Sorted below into DataContract order.
_START_INFO: Final[dict[str, tuple[str, _Kind]]] = {
    "AdminJobForHostInDiag": ("admin_job_for_host_in_diag", "bool"),
    "AllocationGrowLoadRatioThreshold": ("allocation_grow_load_ratio_threshold", "int"),
    "AllocationShrinkLoadRatioThreshold": ("allocation_shrink_load_ratio_threshold", "int"),
    "CanPreempt": ("can_preempt", "bool"),
    "ClientConnectionTimeout": ("client_connection_timeout", "int"),
    "ClientIdleTimeout": ("client_idle_timeout", "int"),
    "DiagnosticBrokerNode": ("diagnostic_broker_node", "str"),
    "Environments": ("environments", "env"),
    "ExtendedPriority": ("extended_priority", "int"),
    "JobTemplate": ("job_template", "str"),
    "MaxMessageSize": ("max_message_size", "int"),
    "MaxUnits": ("max_units", "int"),
    "MessagesThrottleStartThreshold": ("messages_throttle_start_threshold", "int"),
    "MessagesThrottleStopThreshold": ("messages_throttle_stop_threshold", "int"),
    "MinUnits": ("min_units", "int"),
    "NodeGroupsStr": ("node_groups_str", "str"),
    "Password": ("password", "str"),
    "Priority": ("priority", "int"),
    "RequestedNodesStr": ("requested_nodes_str", "str"),
    "ResourceUnitType": ("resource_unit_type", "int"),
    "Runtime": ("runtime", "int"),
    "ServiceJobName": ("service_job_name", "str"),
    "ServiceJobProject": ("service_job_project", "str"),
    "ServiceName": ("service_name", "str"),
    "ServiceOperationTimeout": ("service_operation_timeout", "int"),
    "ServiceVersion": ("service_version", "version"),
    "SessionIdleTimeout": ("session_idle_timeout", "int"),
    "ShareSession": ("share_session", "bool"),
    "UseSessionPool": ("use_session_pool", "bool"),
    "Username": ("username", "str"),
}

#: ``WebSessionStartInfo`` member names in DataContract (ordinal, code-point) order.
SESSION_START_INFO_MEMBERS: Final[tuple[str, ...]] = tuple(sorted(_START_INFO))
_ORDINAL: Final = {name: i for i, name in enumerate(SESSION_START_INFO_MEMBERS)}
_XMLNS: Final = f'xmlns="{NS_SOA}" xmlns:i="{NS_XSI}"'
_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)

# --- format selection -------------------------------------------------------------------------


def _is_json(body: bytes, content_type: str | None) -> bool:
    """JSON or XML: by media type when it says so, else by the first significant byte."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.endswith("json"):
        return True
    if media.endswith("xml"):
        return False
    first = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if first == b"<":
        return False
    if first and first in b'{["-0123456789tfn':
        return True
    raise DecodeError(
        f"cannot tell JSON from XML (Content-Type {content_type!r}, body starts {first!r})"
    )


def _load_json(body: bytes, what: str) -> Any:
    # .NET writers (StreamWriter with Encoding.UTF8) prepend a BOM, which orjson rejects.
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"malformed {what} JSON: {exc}") from None


def _dumps(obj: object, what: str) -> bytes:
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError as exc:  # lone surrogates, out-of-range integers
        raise EncodeError(f"{what}: {exc}") from None


# --- value helpers ----------------------------------------------------------------------------


def _version_json(v: ServiceVersion | None) -> dict[str, int] | None:
    if v is None:
        return None
    return {"_Build": v.build, "_Major": v.major, "_Minor": v.minor, "_Revision": v.revision}


def _version_from_json(value: object, what: str) -> ServiceVersion | None:
    if value is None:
        return None
    if isinstance(value, str):  # tolerate "1.0" / "1.0.2.3"
        parts = value.strip().split(".")
        if not 2 <= len(parts) <= 4 or not all(p.isascii() and p.isdigit() for p in parts):
            raise DecodeError(f"{what}: not a version string")
        nums = [int(p) for p in parts] + [-1] * (4 - len(parts))
        return ServiceVersion(*nums)
    if not isinstance(value, dict):
        raise DecodeError(f"{what}: expected an object, got {type(value).__name__}")
    comps = {"_Major": 0, "_Minor": 0, "_Build": -1, "_Revision": -1}
    for key in comps:
        if key in value and value[key] is not None:
            comps[key] = _json_int(value[key], f"{what}.{key}", bits=32)
    return ServiceVersion(comps["_Major"], comps["_Minor"], comps["_Build"], comps["_Revision"])


def _json_int(value: object, what: str, *, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError(f"{what}: expected an integer, got {type(value).__name__}")
    lo, hi = _INT32 if bits == 32 else _INT64
    if not lo <= value <= hi:
        raise DecodeError(f"{what}: {value} is outside the {bits}-bit integer range")
    return value


def _json_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise DecodeError(f"{what}: expected true or false, got {type(value).__name__}")
    return value


def _json_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _xml_bool(text: str, what: str) -> bool:
    v = text.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    shown = text if len(text) <= 20 else text[:20] + "…"
    raise DecodeError(f"{what}: expected true or false, got {shown!r}")


# --- WebSessionStartInfo ----------------------------------------------------------------------


def _env_xml(env: tuple[tuple[str, str], ...]) -> str:
    items = "".join(
        "<a:KeyValueOfstringstring>"
        f"<a:Key>{xml_text(k, f'Environments[{i}].Key')}</a:Key>"
        f"<a:Value>{xml_text(v, f'Environments[{i}].Value')}</a:Value>"
        "</a:KeyValueOfstringstring>"
        for i, (k, v) in enumerate(env)
    )
    return f'<Environments xmlns:a="{NS_ARRAYS}">{items}</Environments>'


def encode_session_start_info_xml(info: SessionStartInfo) -> bytes:
    """``WebSessionStartInfo`` XML: members in ordinal order, ``None`` members omitted.

    Raises:
        EncodeError: a string member holds a character XML cannot carry.
    """
    parts: list[str] = []
    for name in SESSION_START_INFO_MEMBERS:
        attr, kind = _START_INFO[name]
        value = getattr(info, attr)
        if value is None:
            continue
        if kind == "str":
            # Never put the password into an error message: name the member only.
            parts.append(f"<{name}>{xml_text(value, f'WebSessionStartInfo.{name}')}</{name}>")
        elif kind == "int":
            parts.append(f"<{name}>{int(value)}</{name}>")
        elif kind == "bool":
            parts.append(f"<{name}>{'true' if value else 'false'}</{name}>")
        elif kind == "env":
            parts.append(_env_xml(value))
        else:
            members = encode_version_members(value, "a:")
            parts.append(f'<ServiceVersion xmlns:a="{NS_SYSTEM}">{members}</ServiceVersion>')
    return f"<WebSessionStartInfo {_XMLNS}>{''.join(parts)}</WebSessionStartInfo>".encode()


def encode_session_start_info_json(info: SessionStartInfo) -> bytes:
    """``WebSessionStartInfo`` JSON: a flat compact object of the non-``None`` members.

    Keys are written in ordinal order (any order is valid JSON input for the service).

    Raises:
        EncodeError: a string is not encodable (lone surrogate) or an integer is too large.
    """
    obj: dict[str, object] = {}
    for name in SESSION_START_INFO_MEMBERS:
        attr, kind = _START_INFO[name]
        value = getattr(info, attr)
        if value is None:
            continue
        if kind == "env":
            obj[name] = [{"Key": k, "Value": v} for k, v in value]
        elif kind == "version":
            obj[name] = _version_json(value)
        else:
            obj[name] = value
    return _dumps(obj, "WebSessionStartInfo")


def _member_from_xml(el: ET.Element, name: str, kind: _Kind) -> object:
    what = f"WebSessionStartInfo.{name}"
    if kind == "env":
        pairs: list[tuple[str, str]] = []
        for i, kv in enumerate(el):
            sub = {local_name(c.tag): c for c in kv}
            key, val = sub.get("Key"), sub.get("Value")
            if key is None or is_nil(key):
                raise DecodeError(f"{what}[{i}]: entry without a Key")
            pairs.append(
                (
                    scalar_text(key, f"{what}[{i}].Key"),
                    "" if val is None or is_nil(val) else scalar_text(val, f"{what}[{i}].Value"),
                )
            )
        return tuple(pairs)
    if kind == "version":
        return decode_version(el, what)
    text = scalar_text(el, what)
    if kind == "int":
        return parse_int_text(text, what)
    if kind == "bool":
        return _xml_bool(text, what)
    return text


def _member_from_json(value: object, name: str, kind: _Kind) -> object:
    what = f"WebSessionStartInfo.{name}"
    if kind == "int":
        return _json_int(value, what, bits=32)
    if kind == "bool":
        return _json_bool(value, what)
    if kind == "str":
        return _json_str(value, what)
    if kind == "version":
        return _version_from_json(value, what)
    # Environments: DataContract's Key/Value array; a plain object is tolerated too.
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for i, entry in enumerate(value):
            if not isinstance(entry, dict) or "Key" not in entry:
                raise DecodeError(f'{what}[{i}]: expected {{"Key":…,"Value":…}}')
            items.append((entry["Key"], entry.get("Value")))
    else:
        raise DecodeError(f"{what}: expected an array, got {type(value).__name__}")
    return tuple(
        (_json_str(k, f"{what}[{i}].Key"), "" if v is None else _json_str(v, f"{what}[{i}].Value"))
        for i, (k, v) in enumerate(items)
    )


def _start_info_from_values(values: dict[str, object]) -> SessionStartInfo:
    if values.get("service_name") is None:
        raise DecodeError("WebSessionStartInfo: required member ServiceName is missing")
    if values.get("runtime") is None:
        values["runtime"] = -1  # DataContract default of the non-nullable member
    return SessionStartInfo(**values)  # type: ignore[arg-type]


def decode_session_start_info(
    body: bytes, content_type: str | None, *, strict_order: bool = False
) -> SessionStartInfo:
    """Parse a Create Session body (JSON or XML, chosen by ``content_type`` or sniffed).

    Args:
        strict_order: XML only. Drop (silently) every member that appears earlier than its
            ordinal position, or a second time, exactly as ``DataContractSerializer`` does.
            Otherwise any order is accepted and a repeated member is an error.

    Unknown members are ignored. ``i:nil`` / JSON ``null`` leave a member unset.

    Raises:
        DecodeError: malformed body, wrong root element or namespace, a member of the wrong
            type (the message names it), or no ``ServiceName``.
        UnsafeXMLError: the XML has a DTD or entity declarations.
    """
    values: dict[str, object] = {}
    if _is_json(body, content_type):
        data = _load_json(body, "WebSessionStartInfo")
        if not isinstance(data, dict):
            raise DecodeError(
                f"WebSessionStartInfo: expected a JSON object, got {type(data).__name__}"
            )
        for name, raw in data.items():
            spec = _START_INFO.get(name)
            if spec is None or raw is None:
                continue
            values[spec[0]] = _member_from_json(raw, name, spec[1])
        return _start_info_from_values(values)

    root = parse_document(body, "WebSessionStartInfo")
    if root.tag != f"{{{NS_SOA}}}WebSessionStartInfo":
        raise DecodeError(f'expected root <WebSessionStartInfo xmlns="{NS_SOA}">, got {root.tag!r}')
    seen: set[str] = set()
    last = -1
    for child in root:
        if not child.tag.startswith(f"{{{NS_SOA}}}"):
            continue  # a member in another namespace is an unknown member
        name = local_name(child.tag)
        spec = _START_INFO.get(name)
        if spec is None:
            continue
        position = _ORDINAL[name]
        if strict_order and position <= last:
            continue  # what DataContractSerializer does with an out-of-order or repeated member
        if name in seen:
            raise DecodeError(f"WebSessionStartInfo.{name}: member appears more than once")
        seen.add(name)
        last = max(last, position)
        if not is_nil(child):
            values[spec[0]] = _member_from_xml(child, name, spec[1])
    return _start_info_from_values(values)


# --- WebSessionInfo ---------------------------------------------------------------------------


def encode_session_info_json(info: SessionInfo) -> bytes:
    """``WebSessionInfo`` JSON, compact, keys in the §4.1 order.

    ``{"BrokerNode":"hn01:8443","Id":7,"IsDurable":false,"MaxMessageSize":2147483647,``
    ``"ServiceOperationTimeout":86400000,"ServiceVersion":null}``
    """
    return _dumps(
        {
            "BrokerNode": info.broker_node,
            "Id": info.id,
            "IsDurable": bool(info.is_durable),
            "MaxMessageSize": info.max_message_size,
            "ServiceOperationTimeout": info.service_operation_timeout,
            "ServiceVersion": _version_json(info.service_version),
        },
        "WebSessionInfo",
    )


def encode_session_info_xml(info: SessionInfo) -> bytes:
    """``WebSessionInfo`` XML (§4.1), compact.

    Raises:
        EncodeError: ``broker_node`` holds a character XML cannot carry.
    """
    if info.service_version is None:
        version = f'<ServiceVersion i:nil="true" xmlns:a="{NS_SYSTEM}"/>'
    else:
        members = encode_version_members(info.service_version, "a:")
        version = f'<ServiceVersion xmlns:a="{NS_SYSTEM}">{members}</ServiceVersion>'
    return (
        f"<WebSessionInfo {_XMLNS}>"
        f"<BrokerNode>{xml_text(info.broker_node, 'WebSessionInfo.BrokerNode')}</BrokerNode>"
        f"<Id>{int(info.id)}</Id>"
        f"<IsDurable>{'true' if info.is_durable else 'false'}</IsDurable>"
        f"<MaxMessageSize>{int(info.max_message_size)}</MaxMessageSize>"
        f"<ServiceOperationTimeout>{int(info.service_operation_timeout)}</ServiceOperationTimeout>"
        f"{version}</WebSessionInfo>"
    ).encode()


_INFO_MEMBERS: Final[dict[str, tuple[str, Callable[[str, str], object]]]] = {
    "BrokerNode": ("broker_node", lambda t, w: t),
    "Id": ("id", lambda t, w: parse_int_text(t, w, bits=64)),
    "IsDurable": ("is_durable", _xml_bool),
    "MaxMessageSize": ("max_message_size", lambda t, w: parse_int_text(t, w, bits=64)),
    "ServiceOperationTimeout": (
        "service_operation_timeout",
        lambda t, w: parse_int_text(t, w, bits=64),
    ),
}


def _session_info(values: dict[str, object]) -> SessionInfo:
    for wire, (attr, _) in _INFO_MEMBERS.items():
        if values.get(attr) is None:
            raise DecodeError(f"WebSessionInfo: required member {wire} is missing")
    return SessionInfo(**values)  # type: ignore[arg-type]


def decode_session_info(body: bytes, content_type: str | None) -> SessionInfo:
    """Parse a Create/Attach Session response (JSON or XML; any member order; extras ignored).

    Raises:
        DecodeError: malformed body, a member of the wrong type, or a required member missing.
        UnsafeXMLError: the XML has a DTD or entity declarations.
    """
    values: dict[str, object] = {}
    if _is_json(body, content_type):
        data = _load_json(body, "WebSessionInfo")
        if not isinstance(data, dict):
            raise DecodeError(f"WebSessionInfo: expected a JSON object, got {type(data).__name__}")
        for wire, raw in data.items():
            what = f"WebSessionInfo.{wire}"
            if raw is None:
                continue
            if wire == "BrokerNode":
                values["broker_node"] = _json_str(raw, what)
            elif wire == "IsDurable":
                values["is_durable"] = _json_bool(raw, what)
            elif wire == "ServiceVersion":
                values["service_version"] = _version_from_json(raw, what)
            elif wire in _INFO_MEMBERS:
                values[_INFO_MEMBERS[wire][0]] = _json_int(raw, what, bits=64)
        return _session_info(values)

    root = parse_document(body, "WebSessionInfo")
    if local_name(root.tag) != "WebSessionInfo":
        raise DecodeError(
            f"WebSessionInfo: expected root <WebSessionInfo>, got <{local_name(root.tag)}>"
        )
    for child in root:
        wire = local_name(child.tag)
        what = f"WebSessionInfo.{wire}"
        if is_nil(child):
            continue
        if wire == "ServiceVersion":
            values["service_version"] = decode_version(child, what)
        elif wire in _INFO_MEMBERS:
            attr, parse = _INFO_MEMBERS[wire]
            values[attr] = parse(scalar_text(child, what), what)
    return _session_info(values)


# --- BrokerClientStatus -----------------------------------------------------------------------


def encode_broker_status_xml(status: BrokerClientStatus) -> bytes:
    """``<BrokerClientStatus xmlns="http://hpc.microsoft.com">Processing</BrokerClientStatus>``."""
    name = BrokerClientStatus(status).wire_name
    return f'<BrokerClientStatus xmlns="{NS_BROKER_STATUS}">{name}</BrokerClientStatus>'.encode()


def encode_broker_status_json(status: BrokerClientStatus) -> bytes:
    """The bare number, e.g. ``2``."""
    return str(int(BrokerClientStatus(status))).encode()


def _status_from(value: object) -> BrokerClientStatus:
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            value = int(text)
        else:
            try:
                return BrokerClientStatus.from_wire_name(text)
            except KeyError:
                raise DecodeError(f"BrokerClientStatus: unknown name {text[:40]!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return BrokerClientStatus(value)
        except ValueError:
            raise DecodeError(f"BrokerClientStatus: unknown value {value}") from None
    raise DecodeError(
        f"BrokerClientStatus: expected a number or a name, got {type(value).__name__}"
    )


def decode_broker_status(body: bytes, content_type: str | None) -> BrokerClientStatus:
    """Parse a Get Request Status body: JSON number (or name) or the XML element.

    Raises:
        DecodeError: malformed body or a value outside Unknown/Ready/Processing/Finished.
        UnsafeXMLError: the XML has a DTD or entity declarations.
    """
    if _is_json(body, content_type):
        return _status_from(_load_json(body, "BrokerClientStatus"))
    root = parse_document(body, "BrokerClientStatus")
    if local_name(root.tag) != "BrokerClientStatus":
        raise DecodeError(
            f"BrokerClientStatus: expected root <BrokerClientStatus>, got <{local_name(root.tag)}>"
        )
    return _status_from(scalar_text(root, "BrokerClientStatus"))
