"""TLS against the emulator's self-signed certificate: verify fails closed, pinning works."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest

import hpcsoa
from hpcsoa.emulator._server import EmulatorServer

USER, PASSWORD = "CONTOSO\\alice", "pw"

pytestmark = pytest.mark.integration


@pytest.fixture
async def tls_server() -> AsyncIterator[Any]:
    async with EmulatorServer(users={USER: PASSWORD}, tls=True, latency_ms=0) as srv:
        yield srv


def client_for(server: Any, **kw: Any) -> hpcsoa.HpcClient:
    return hpcsoa.HpcClient(server.base_url, username=USER, password=PASSWORD, retry=None, **kw)


async def test_self_signed_certificate_is_rejected_by_default(tls_server: Any) -> None:
    async with client_for(tls_server) as client:
        with pytest.raises(hpcsoa.TLSVerificationError, match="pin_sha256"):
            await client.create_session("CcpEchoSvc")
    assert tls_server.state.broker.counters.sessions_created == 0


async def test_pinned_fingerprint_is_accepted(tls_server: Any) -> None:
    assert tls_server.cert_sha256
    async with client_for(tls_server, pin_sha256=tls_server.cert_sha256) as client:
        async with await client.create_session("CcpEchoSvc") as session:
            batch = session.batch("tls")
            await batch.send(["secure"], commit=True)
            assert [r.output async for r in batch.responses()] == ["CN01 (GenericService): secure"]


async def test_wrong_pin_is_rejected_and_not_retried(tls_server: Any) -> None:
    policy = hpcsoa.RetryPolicy(max_attempts=3, jitter=False)
    async with hpcsoa.HpcClient(
        tls_server.base_url, username=USER, password=PASSWORD, pin_sha256="00" * 32, retry=policy
    ) as client:
        with pytest.raises(hpcsoa.TLSVerificationError, match="pinned"):
            await client.create_session("CcpEchoSvc")
        assert client.requester.retries == 0


async def test_verify_false_and_custom_context(tls_server: Any) -> None:
    async with client_for(tls_server, verify=False) as client:
        async with await client.create_session("CcpEchoSvc"):
            pass
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with client_for(tls_server, verify=ctx) as client:
        async with await client.create_session("CcpEchoSvc"):
            pass
