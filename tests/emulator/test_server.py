"""EmulatorServer lifecycle, TLS, authentication, logging, the pipeline and ``hpcsoa serve``."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa.emulator import EmulatorConfig, EmulatorServer, FaultError, RequestContext
from hpcsoa.emulator._app import FastBatchRoutes
from hpcsoa.protocol import Operation, match_route

ALICE = ("HPCLAB\\alice", "s3cret")
BOB = ("HPCLAB\\bob", "b0b")
USERS = dict([ALICE, BOB])
AV = {"api-version": "2011-11-01"}
SRC = Path(__file__).resolve().parents[2] / "src"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def hdrs(user: tuple[str, str] = ALICE, **extra: str) -> dict[str, str]:
    return {**AV, "Authorization": basic(*user), **extra}


START_INFO = (
    b'{"MaxMessageSize":65536,"Password":"s3cret","Runtime":-1,'
    b'"ServiceName":"CcpEchoSvc","Username":"HPCLAB\\\\alice"}'
)


async def create_session(http: aiohttp.ClientSession, base: str, user=ALICE, **kw) -> int:
    async with http.post(
        f"{base}/WindowsHPC/HPCLAB/Sessions/Create?durable=false",
        data=START_INFO,
        headers=hdrs(user, **{"Content-Type": "application/json", "Accept": "application/json"}),
        **kw,
    ) as resp:
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["Id"])


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


# --- lifecycle -----------------------------------------------------------------------------------


async def test_port_zero_base_url_and_idempotent_close(http) -> None:
    server = EmulatorServer(users=USERS)
    assert not server.is_closed()
    async with server:
        assert server.port > 0
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert server.authority == f"127.0.0.1:{server.port}"
        assert server.cluster == "HPCLAB"
        assert (server.username, server.password) == ALICE
        assert "s3cret" not in repr(server)
        assert "s3cret" not in repr(server.config)
        async with http.get(f"{server.base_url}/WindowsHPC/Version") as resp:
            assert resp.status == 401
        with pytest.raises(RuntimeError):
            await server.start()
    assert server.is_closed()
    await server.aclose()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{server.base_url}/WindowsHPC/Version"):
            pass


async def test_overrides_and_config_validation() -> None:
    base = EmulatorConfig(cluster="LAB", cores=2)
    server = EmulatorServer(base, machine_name="NODE")
    assert server.config.cluster == "LAB"
    assert server.config.machine_name == "NODE"
    with pytest.raises(ValueError, match="letters"):
        EmulatorConfig(cluster="HPC-LAB")
    with pytest.raises(ValueError, match="latency"):
        EmulatorConfig(latency_ms="gauss:1")
    with pytest.raises(ValueError, match="cert_file"):
        EmulatorConfig(cert_file="x.pem")


async def test_generated_user_is_exposed_and_works(http) -> None:
    async with EmulatorServer() as server:
        assert server.username == "HPCLAB\\hpcuser"
        assert len(server.password) >= 12
        assert server.password not in repr(server)
        headers = hdrs((server.username, server.password))
        async with http.get(f"{server.base_url}/WindowsHPC/Clusters", headers=headers) as resp:
            assert resp.status == 200


async def test_close_with_an_open_stream_is_prompt(http) -> None:
    server = EmulatorServer(users=USERS)
    await server.start()
    sid = await create_session(http, server.base_url)
    url = f"{server.base_url}/WindowsHPC/session/{sid}/batch/b/Response?genericservice=true"
    resp = await http.post(url, headers=hdrs())
    assert resp.status == 200
    started = time.monotonic()
    async with asyncio.timeout(5):
        await server.aclose()
        assert await resp.read() == b""  # ended without a marker
    resp.release()
    assert time.monotonic() - started < 3


# --- TLS -----------------------------------------------------------------------------------------


async def test_tls_self_signed_fingerprint_pins(http) -> None:
    async with EmulatorServer(users=USERS, tls=True) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
        assert server.cert_sha256 is not None
        assert server.cert_sha1 is not None
        assert len(server.cert_sha256) == 64
        assert len(server.cert_sha1) == 40
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        await writer.wait_closed()
        assert hashlib.sha256(der).hexdigest() == server.cert_sha256
        assert hashlib.sha1(der).hexdigest().upper() == server.cert_sha1
        pin = aiohttp.Fingerprint(bytes.fromhex(server.cert_sha256))
        url = f"{server.base_url}/WindowsHPC/Clusters"
        async with http.get(url, headers=hdrs(), ssl=pin) as resp:
            assert resp.status == 200
        wrong = aiohttp.Fingerprint(bytes(32))
        with pytest.raises(aiohttp.ServerFingerprintMismatch):
            async with http.get(url, headers=hdrs(), ssl=wrong):
                pass


def _write_cert(tmp_path: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert.public_bytes(serialization.Encoding.DER)


async def test_tls_from_cert_and_key_files(tmp_path: Path, http) -> None:
    cert_path, key_path, der = _write_cert(tmp_path)
    async with EmulatorServer(users=USERS, cert_file=str(cert_path), key_file=str(key_path)) as s:
        assert s.base_url.startswith("https://")
        assert s.cert_sha256 == hashlib.sha256(der).hexdigest()
        pin = aiohttp.Fingerprint(hashlib.sha256(der).digest())
        async with http.get(f"{s.base_url}/WindowsHPC/Version", ssl=pin) as resp:
            assert resp.status == 401  # TLS fine, credentials missing


# --- authentication and ownership ----------------------------------------------------------------


@pytest.fixture
async def server():
    async with EmulatorServer(
        users=USERS, client_idle_timeout_ms=0, session_idle_timeout_ms=0
    ) as s:
        yield s


@pytest.mark.parametrize(
    "authorization",
    [None, basic("HPCLAB\\alice", "wrong"), basic("nobody", "x"), "Basic !!!", "Bearer abc"],
)
async def test_missing_or_wrong_credentials_get_401_challenge(server, http, authorization) -> None:
    headers = dict(AV)
    if authorization is not None:
        headers["Authorization"] = authorization
    async with http.get(f"{server.base_url}/WindowsHPC/Clusters", headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="HPC Pack (HPCLAB)"'
        body = await resp.read()
        assert b"<HpcWebServiceFault" in body
        assert b"wrong" not in body


async def test_user_names_are_case_insensitive_passwords_are_not(server, http) -> None:
    url = f"{server.base_url}/WindowsHPC/Clusters"
    async with http.get(url, headers=hdrs(("hpclab\\ALICE", "s3cret"))) as resp:
        assert resp.status == 200
    async with http.get(url, headers=hdrs(("HPCLAB\\alice", "S3CRET"))) as resp:
        assert resp.status == 401


async def test_auth_none_accepts_anyone_and_keeps_owners_apart(http) -> None:
    async with EmulatorServer(auth="none") as server:
        url = f"{server.base_url}/WindowsHPC/Clusters"
        async with http.get(url, headers=AV) as resp:
            assert resp.status == 200
        body = b'{"MaxMessageSize":65536,"Runtime":-1,"ServiceName":"CcpEchoSvc"}'
        async with http.post(
            f"{server.base_url}/WindowsHPC/Sessions/Create?durable=false",
            data=body,
            headers={
                **hdrs(ALICE),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        ) as resp:
            assert resp.status == 201, await resp.text()
            sid = (await resp.json())["Id"]
        status = f"{server.base_url}/WindowsHPC/session/{sid}/batch/b/Status"
        async with http.get(status, headers=hdrs(("someone", "x"))) as resp:
            assert resp.status == 403


async def test_other_users_session_and_batch_are_403(server, http) -> None:
    sid = await create_session(http, server.base_url)
    base = f"{server.base_url}/WindowsHPC/HPCLAB/session/{sid}"
    for method, path in [
        ("GET", "/Attach?durable=false"),
        ("POST", "/Close"),
        ("GET", "/batch/b1/Status"),
        ("POST", "/batch/b1/Purge"),
    ]:
        async with http.request(
            method, base + path, headers=hdrs(BOB, Accept="application/json")
        ) as resp:
            assert resp.status == 403, path
            assert (await resp.json())["Code"] == 0x03000005  # AccessDenied_BrokerQueue
    async with http.get(base + "/batch/b1/Status", headers=hdrs()) as resp:
        assert resp.status == 200


# --- the pipeline --------------------------------------------------------------------------------


async def test_broker_node_is_the_authority_the_client_used(server, http) -> None:
    async with http.post(
        f"{server.base_url}/WindowsHPC/Sessions/Create?durable=false",
        data=START_INFO,
        headers=hdrs(**{"Content-Type": "application/json", "Accept": "application/json"}),
    ) as resp:
        body = await resp.read()
    sid = json.loads(body)["Id"]
    assert (
        body
        == (
            f'{{"BrokerNode":"{server.authority}","Id":{sid},"IsDurable":false,'
            '"MaxMessageSize":65536,"ServiceOperationTimeout":86400000,"ServiceVersion":null}'
        ).encode()
    )
    assert server.state.sessions_created == 1


async def test_one_access_log_line_per_request_without_credentials(server, http, caplog) -> None:
    caplog.set_level(logging.INFO, logger="hpcsoa.emulator.access")
    await create_session(http, server.base_url)
    async with http.get(
        f"{server.base_url}/WindowsHPC/Clusters?password=hunter2", headers=hdrs()
    ) as resp:
        assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "hpcsoa.emulator.access"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /WindowsHPC/HPCLAB/Sessions/Create?durable=false 201 ")
    assert lines[0].endswith("ms")
    assert lines[1].startswith("GET /WindowsHPC/Clusters?password=*** 200 ")
    text = "\n".join(lines)
    for secret in ("s3cret", "hunter2", basic(*ALICE).split()[1]):
        assert secret not in text


async def test_extra_handlers_and_scheduler_error_formats(server, http) -> None:
    seen: list[RequestContext] = []

    async def list_jobs(ctx: RequestContext):
        seen.append(ctx)
        raise FaultError(400, -2147220984, "Jobs in the Canceled state cannot be canceled.")

    url = f"{server.base_url}/WindowsHPC/HPCLAB/Jobs"
    auth = {"Authorization": basic(*ALICE)}
    server.state.extra_handlers.pop(Operation.LIST_JOBS)  # the scheduler's handler
    async with http.get(url, headers=auth) as resp:  # no handler now
        assert resp.status == 404
        assert b"not implemented by the emulator" in await resp.read()
    server.state.extra_handlers[Operation.LIST_JOBS] = list_jobs
    async with http.get(url, headers=auth) as resp:  # no api-version: legacy <string>
        assert resp.status == 400
        assert (await resp.read()).startswith(
            b'<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">Jobs in'
        )
    async with http.get(url + "?Owner=x", headers={**auth, **AV}) as resp:
        assert (await resp.read()).startswith(b"<HpcWebServiceFault")
    async with http.get(url, headers={**auth, **AV, "CCP_Version": "1"}) as resp:
        assert (await resp.read()).startswith(b"<string")
    ctx = seen[1]
    assert ctx.user == ALICE[0]
    assert ctx.operation is Operation.LIST_JOBS
    assert str(ctx.api_version) == "2011-11-01"
    assert ctx.q("OWNER") == "x"
    assert ctx.state is server.state


async def test_api_version_rules(server, http) -> None:
    url = f"{server.base_url}/WindowsHPC/Clusters"
    auth = {"Authorization": basic(*ALICE)}
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 400
        assert b"<Code>50331700</Code>" in await resp.read()
    async with http.get(url + "?API-VERSION=2012-11-01.4.0", headers=auth) as resp:
        assert resp.status == 200
    async with http.get(
        url + "?api-version=2011-11-01", headers={**auth, "api-version": "bad"}
    ) as resp:
        assert resp.status == 400  # the header wins
    async with http.get(f"{server.base_url}/WindowsHPC/Version", headers=auth) as resp:
        assert resp.status == 200  # optional for Get Version


async def test_unknown_path_method_and_cluster(server, http) -> None:
    async with http.get(f"{server.base_url}/WindowsHPC/Nope", headers=hdrs()) as resp:
        assert resp.status == 404
    async with http.get(f"{server.base_url}/elsewhere", headers=hdrs()) as resp:
        assert resp.status == 404
    async with http.put(f"{server.base_url}/WindowsHPC/Clusters", headers=hdrs()) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET"
    async with http.get(f"{server.base_url}/WindowsHPC/OTHER/Version", headers=hdrs()) as resp:
        assert resp.status == 404


async def test_body_limit_is_configurable(http) -> None:
    async with EmulatorServer(users=USERS, client_max_size=4096) as server:
        sid = await create_session(http, server.base_url)
        url = f"{server.base_url}/WindowsHPC/session/{sid}/batch/b?genericservice=true"
        body = b"x" * 5000 + b"\xef\xbf\xbf\x00"
        async with http.post(url, data=body, headers=hdrs()) as resp:
            assert resp.status == 413
        async with http.post(url, data=b"ok\xef\xbf\xbf\x00", headers=hdrs()) as resp:
            assert resp.status == 200


async def test_streams_end_on_client_idle_timeout(http) -> None:
    async with EmulatorServer(users=USERS, client_idle_timeout_ms=300) as server:
        sid = await create_session(http, server.base_url)
        base = f"{server.base_url}/WindowsHPC/session/{sid}/batch/b"
        async with http.post(
            f"{base}?genericservice=true", data=b"a\xef\xbf\xbf1\x00", headers=hdrs()
        ):
            pass
        async with asyncio.timeout(5):
            async with http.post(
                f"{base}/Response?genericservice=true&count=-1&reset=true", headers=hdrs()
            ) as resp:
                body = await resp.read()
        assert body.endswith(b"EndOfGetResponse\xef\xbf\xbf1\xef\xbf\xbfClientTimeout\x00")
        async with http.get(f"{base}/Status", headers=hdrs(Accept="application/json")) as resp:
            assert await resp.read() == b"0"  # Disconnected → Unknown


# --- fast routing agrees with the reference ------------------------------------------------------

SEGMENT = st.sampled_from(
    [
        "session",
        "SESSION",
        "Session",
        "batch",
        "Batch",
        "HPCLAB",
        "hpclab",
        "OTHER",
        "Jobs",
        "7",
        "b1",
        "a%20b",
        "Status",
        "response",
        "COMMIT",
        "purge",
        "Purge",
        "",
        "x",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "post"]),
    segments=st.lists(SEGMENT, min_size=1, max_size=7),
    root=st.sampled_from(["WindowsHPC", "windowshpc", "Other"]),
    trailing=st.booleans(),
)
def test_fast_batch_routes_agree_with_match_route(method, segments, root, trailing) -> None:
    path = f"/{root}/" + "/".join(segments) + ("/" if trailing else "")
    fast = FastBatchRoutes("HPCLAB").match(method, path)
    if fast is not None:
        assert fast == match_route(method, path)


@pytest.mark.parametrize(
    "path",
    [
        "/WindowsHPC/HPCLAB/session/7/batch/b1",
        "/WindowsHPC/session/7/Batch/b1/Response",
        "/windowshpc/hpclab/SESSION/7/batch/a%20b/commit/",
        "/WindowsHPC/HPCLAB/session/7/batch/b1/Purge",
    ],
)
def test_fast_batch_routes_cover_the_hot_paths(path: str) -> None:
    method = "POST"
    assert FastBatchRoutes("HPCLAB").match(method, path) == match_route(method, path)
    assert FastBatchRoutes("HPCLAB").match(method, path) is not None
    assert FastBatchRoutes("Jobs").match(method, path.replace("HPCLAB", "Jobs")) in (
        None,
        match_route(method, path.replace("HPCLAB", "Jobs")),
    )


# --- hpcsoa serve --------------------------------------------------------------------------------


def _serve(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hpcsoa.emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _banner(proc: subprocess.Popen[str], lines: int) -> list[str]:
    assert proc.stdout is not None
    out = []
    deadline = time.monotonic() + 30
    while len(out) < lines and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line.rstrip("\n"))
    return out


async def test_serve_banner_tls_generated_user_and_sigterm(http, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"rules": [{"operation": "get_version", "status": 503, "times": 1}]})
    )
    proc = _serve("--port", "0", "--tls", "--fault-plan", str(plan), "--log-level", "info")
    try:
        banner = await asyncio.to_thread(_banner, proc, 4)
        assert banner, proc.stderr.read() if proc.stderr else ""
        first = banner[0]
        url = next(w for w in first.split() if w.startswith("https://127.0.0.1:"))
        assert "SHA-256 fingerprint" in banner[1]
        sha256 = banner[1].split()[-1]
        assert "SHA-1 thumbprint" in banner[2]
        assert "generated user: HPCLAB\\hpcuser  password: " in banner[3]
        password = banner[3].split()[-1]
        pin = aiohttp.Fingerprint(bytes.fromhex(sha256))
        headers = {"Authorization": basic("HPCLAB\\hpcuser", password)}
        async with http.get(f"{url}/WindowsHPC/Version", headers=headers, ssl=pin) as resp:
            assert resp.status == 503  # the fault plan from the file
        async with http.get(f"{url}/WindowsHPC/Version", headers=headers, ssl=pin) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "GET /WindowsHPC/Version 503" in stderr
        assert password not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


async def test_serve_sigint_and_users_flag(http) -> None:
    proc = _serve("--user", "HPCLAB\\alice:s3:cret", "--auth", "basic", "--cluster", "LAB")
    try:
        banner = await asyncio.to_thread(_banner, proc, 1)
        assert banner
        url = next(w for w in banner[0].split() if w.startswith("http://"))
        assert "(cluster LAB)" in banner[0]
        headers = {"Authorization": basic("HPCLAB\\alice", "s3:cret"), **AV}
        async with http.get(f"{url}/WindowsHPC/Clusters", headers=headers) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--user", "no-password-separator"],
        ["--service", "Svc=no_such_module_xyz:f"],
        ["--latency-ms", "gauss:1"],
        ["--cluster", "NOT-LETTERS"],
        ["--cert", "only-cert.pem"],
    ],
)
def test_serve_main_rejects_bad_flags(args: list[str], capsys) -> None:
    from hpcsoa.emulator import serve_main

    assert serve_main(args) == 2
    assert "error" in capsys.readouterr().err


def test_public_names_are_sorted_and_exported() -> None:
    import hpcsoa.emulator as emulator

    assert emulator.__all__ == sorted(emulator.__all__)
    public = {n for n in vars(emulator) if not n.startswith("_")}
    assert public >= set(emulator.__all__)
    for name in emulator.__all__:
        assert getattr(emulator, name).__doc__, name


async def test_closers_run_on_aclose_even_if_one_fails(caplog) -> None:
    order: list[str] = []

    async def first() -> None:
        order.append("first")

    async def broken() -> None:
        order.append("broken")
        raise RuntimeError("boom")

    async with EmulatorServer(users=USERS) as server:
        server.state.closers += [first, broken]
    assert order == ["broken", "first"]
    assert "failed to close" in caplog.text
