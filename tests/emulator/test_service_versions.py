"""Get Service Versions (spec §4.9) and the ServiceVersion binding of Create Session (§4.1).

Services are registered with versions through ``EmulatorConfig.service_versions`` (or
``hpcsoa serve --service-version NAME=1.0,2.0``). An unversioned service lists ``0.0``, binds
sessions to no version (``ServiceVersion`` null) and accepts any requested version; a versioned
one binds to the requested version (400 ``ServiceVersion_NotFound`` when it has no such
version) or, when none is requested, to its newest.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from hpcsoa.emulator import EmulatorConfig
from hpcsoa.emulator._cli import UsageError, build_parser, config_from_args
from hpcsoa.emulator._config import parse_service_version
from hpcsoa.protocol import ServiceVersion

SERVICE_VERSION_NOT_FOUND = 50331680
NS_SYSTEM = "http://schemas.datacontract.org/2004/07/System"
V = ServiceVersion


def shout(text: str) -> str:
    return text.upper()


def version_xml(*versions: tuple[int, int, int, int]) -> bytes:
    """§4.9 ``ArrayOfVersion``: members in ordinal order ``_Build, _Major, _Minor, _Revision``."""
    items = "".join(
        f"<Version><_Build>{b}</_Build><_Major>{ma}</_Major><_Minor>{mi}</_Minor>"
        f"<_Revision>{r}</_Revision></Version>"
        for ma, mi, b, r in versions
    )
    return (
        f'<ArrayOfVersion xmlns="{NS_SYSTEM}" '
        f'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">{items}</ArrayOfVersion>'
    ).encode()


def jv(major: int, minor: int, build: int = -1, revision: int = -1) -> dict[str, int]:
    return {"_Build": build, "_Major": major, "_Minor": minor, "_Revision": revision}


@pytest.fixture
async def versioned(start_server: Any) -> Any:
    return await start_server(
        services={"Shout": shout},
        service_versions={"shout": (V(1, 0), V(2, 1), V(1, 5, 3)), "CcpEchoSvc": ()},
    )


# --- configuration ---------------------------------------------------------------------------


def test_config_sorts_newest_first_and_validates() -> None:
    config = EmulatorConfig(
        services={"Shout": shout}, service_versions={"Shout": [V(1, 0), V(2, 0), V(1, 0)]}
    )
    assert config.service_versions["Shout"] == (V(2, 0), V(1, 0))
    with pytest.raises(ValueError, match="neither CcpEchoSvc"):
        EmulatorConfig(service_versions={"Nope": (V(1, 0),)})
    with pytest.raises(ValueError, match="reserved for unversioned"):
        EmulatorConfig(service_versions={"CcpEchoSvc": (V(0, 0),)})
    with pytest.raises(ValueError, match="invalid version"):
        EmulatorConfig(service_versions={"CcpEchoSvc": (V(1, -2),)})
    with pytest.raises(ValueError, match="invalid version"):
        EmulatorConfig(service_versions={"CcpEchoSvc": (V(1, 0, -1, 3),)})
    with pytest.raises(ValueError, match="tuple of ServiceVersion"):
        EmulatorConfig(service_versions={"CcpEchoSvc": "1.0"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="expected ServiceVersion"):
        EmulatorConfig(service_versions={"CcpEchoSvc": ("1.0",)})  # type: ignore[dict-item]


def test_parse_service_version() -> None:
    assert parse_service_version("1.0") == V(1, 0, -1, -1)
    assert parse_service_version(" 2.5.7 ") == V(2, 5, 7, -1)
    assert parse_service_version("2.5.7.9") == V(2, 5, 7, 9)
    for bad in ("1", "1.x", "1.0.0.0.0", "-1.0", ""):
        with pytest.raises(ValueError, match="invalid service version"):
            parse_service_version(bad)


def test_serve_flag() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["--service-version", "CcpEchoSvc=1.0,2.0", "--service-version", "CcpEchoSvc=3.1.4"]
    )
    assert config_from_args(args).service_versions["CcpEchoSvc"] == (
        V(3, 1, 4),
        V(2, 0),
        V(1, 0),
    )
    for bad in ("CcpEchoSvc", "CcpEchoSvc=", "CcpEchoSvc=one", "Nope=1.0", "CcpEchoSvc=0.0"):
        with pytest.raises(UsageError):
            config_from_args(parser.parse_args(["--service-version", bad]))


# --- Get Service Versions (§4.9) -------------------------------------------------------------


async def test_unversioned_service_lists_0_0(server, wire, spec) -> None:
    for path in (
        "/WindowsHPC/HPCLAB/SoaService/CcpEchoSvc/Versions",
        "/WindowsHPC/soaservice/ccpechosvc/versions",
    ):
        reply = await wire.request("GET", path)
        assert reply.status == 200, reply.body
        assert reply.content_type == "application/xml; charset=utf-8"
        assert reply.body == version_xml((0, 0, -1, -1))


async def test_versioned_service_lists_newest_first(versioned, http, spec) -> None:
    wire = spec.Wire(http, versioned.base_url)
    reply = await wire.request("GET", "/SoaService/SHOUT/Versions")
    assert reply.status == 200, reply.body
    assert reply.body == version_xml((2, 1, -1, -1), (1, 5, 3, -1), (1, 0, -1, -1))
    root = ET.fromstring(reply.body)
    assert [v.find(f"{{{NS_SYSTEM}}}_Major").text for v in root] == ["2", "1", "1"]  # type: ignore[union-attr]
    # An explicitly empty tuple is unversioned.
    reply = await wire.request("GET", "/SoaService/CcpEchoSvc/Versions")
    assert reply.body == version_xml((0, 0, -1, -1))


async def test_unknown_service_is_404_service_not_found(server, wire, spec) -> None:
    reply = await wire.request("GET", "/SoaService/NoSuchSvc/Versions")
    assert reply.expect(404, spec.SERVICE_NOT_FOUND).fmt == "xml"
    reply = await wire.request("GET", "/SoaService/NoSuchSvc/Versions", accept="application/json")
    assert reply.expect(404, spec.SERVICE_NOT_FOUND).fmt == "json"
    reply = await wire.request("GET", "/SoaService/CcpEchoSvc/Versions", api_version=None)
    reply.expect(400, spec.API_VERSION_INCORRECT)


# --- Create Session binding (§4.1) -----------------------------------------------------------


async def _create(wire: Any, accept: str = "application/json", **members: Any) -> Any:
    return await wire.create(accept=accept, ServiceName="Shout", **members)


async def test_create_binds_requested_version(versioned, http, spec) -> None:
    wire = spec.Wire(http, versioned.base_url)
    reply = await _create(wire, ServiceVersion=jv(1, 5, 3))
    assert reply.status == 201, reply.body
    info = json.loads(reply.body)
    assert info["ServiceVersion"] == jv(1, 5, 3)
    assert reply.body.endswith(
        b'"ServiceVersion":{"_Build":3,"_Major":1,"_Minor":5,"_Revision":-1}}'
    )
    # Attach reports the bound version too.
    attach = await wire.attach(info["Id"], accept="application/json")
    assert json.loads(attach.body)["ServiceVersion"] == jv(1, 5, 3)
    # XML answer: System.Version members in the System namespace.
    reply = await _create(wire, accept="application/xml", ServiceVersion=jv(1, 0))
    assert reply.status == 201, reply.body
    assert (
        f'<ServiceVersion xmlns:a="{NS_SYSTEM}"><a:_Build>-1</a:_Build><a:_Major>1</a:_Major>'
        "<a:_Minor>0</a:_Minor><a:_Revision>-1</a:_Revision></ServiceVersion>"
    ).encode() in reply.body


async def test_create_without_version_binds_newest(versioned, http, spec) -> None:
    wire = spec.Wire(http, versioned.base_url)
    reply = await _create(wire)
    assert reply.status == 201, reply.body
    assert json.loads(reply.body)["ServiceVersion"] == jv(2, 1)
    reply = await _create(wire, ServiceVersion=None)
    assert json.loads(reply.body)["ServiceVersion"] == jv(2, 1)


async def test_create_with_unknown_version_is_400(versioned, http, spec) -> None:
    wire = spec.Wire(http, versioned.base_url)
    # 1.0.0 is not 1.0 (System.Version compares every component), 0.0 is not registered.
    for requested in (jv(3, 0), jv(1, 0, 0), jv(0, 0)):
        reply = await _create(wire, ServiceVersion=requested)
        fault = reply.expect(400, SERVICE_VERSION_NOT_FOUND)
        assert fault.fmt == "json"
    reply = await _create(wire, accept="application/xml", ServiceVersion=jv(9, 9))
    assert reply.expect(400, SERVICE_VERSION_NOT_FOUND).fmt == "xml"
    # Nothing was created: the next session works and sessions were counted once.
    assert versioned.state.sessions_created == 0
    assert (await _create(wire)).status == 201


async def test_create_xml_body_with_service_version(versioned, http, spec) -> None:
    wire = spec.Wire(http, versioned.base_url)

    def body(major: int, minor: int) -> bytes:
        return (
            '<WebSessionStartInfo xmlns="http://hpc.microsoft.com/" '
            'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
            "<MaxMessageSize>65536</MaxMessageSize>"
            f"<Password>{spec.ALICE[1]}</Password><Runtime>-1</Runtime>"
            "<ServiceName>Shout</ServiceName>"
            f'<ServiceVersion xmlns:a="{NS_SYSTEM}"><a:_Build>-1</a:_Build>'
            f"<a:_Major>{major}</a:_Major><a:_Minor>{minor}</a:_Minor>"
            "<a:_Revision>-1</a:_Revision></ServiceVersion>"
            f"<Username>{spec.ALICE[0]}</Username></WebSessionStartInfo>"
        ).encode()

    async def create(payload: bytes) -> Any:
        return await wire.request(
            "POST",
            "/sessions/Create",
            "durable=false",
            body=payload,
            content_type="application/xml; charset=utf-8",
            accept="application/json",
        )

    reply = await create(body(2, 1))
    assert reply.status == 201, reply.body
    assert json.loads(reply.body)["ServiceVersion"] == jv(2, 1)
    (await create(body(2, 0))).expect(400, SERVICE_VERSION_NOT_FOUND)


async def test_unversioned_service_ignores_requested_version(server, wire, spec) -> None:
    reply = await wire.create(accept="application/json", ServiceVersion=jv(1, 0))
    assert reply.status == 201, reply.body
    assert json.loads(reply.body)["ServiceVersion"] is None
    sid = json.loads(reply.body)["Id"]
    assert reply.body == spec.session_info_json(server.authority, sid)


async def test_versioned_session_serves_requests(versioned, http, spec) -> None:
    wire = spec.Wire(http, versioned.base_url)
    reply = await _create(wire, ServiceVersion=jv(1, 0))
    sid = json.loads(reply.body)["Id"]
    await wire.send_ok(sid, "b1", ("hello", "u1"), commit=True)
    records = await wire.generic_responses(sid, "b1")
    assert records.fields == [[spec.GENERIC_REPLY_ACTION.encode(), b"HELLO", b"u1"]]


def test_registry_register_with_versions() -> None:
    from hpcsoa.emulator._services import ServiceRegistry

    registry = ServiceRegistry(
        EmulatorConfig(services={"Shout": shout}, service_versions={"Shout": (V(1, 0),)})
    )
    shout_svc = registry.get("shout")
    assert shout_svc is not None
    assert shout_svc.listed_versions == (V(1, 0),)
    registry.register("Late", shout, versions=[V(1, 0), V(3, 0)])
    late = registry.get("LATE")
    assert late is not None
    assert late.versions == (V(3, 0), V(1, 0))
    assert late.bind_version(None) == V(3, 0)
    echo = registry.get("CcpEchoSvc")
    assert echo is not None
    assert echo.listed_versions == (V(0, 0),)
    assert echo.bind_version(V(5, 0)) is None
