"""Shared by the examples: connect to a real service, or start an embedded emulator.

Every example runs as-is (``python examples/batch.py``) against an emulator started in the
same process. To use a real HPC Pack head node instead, give the URL and credentials on the
command line or in the environment::

    python examples/batch.py https://head-node 'CONTOSO\\alice' 'password'
    HPCSOA_URL=https://head-node HPCSOA_USERNAME='CONTOSO\\alice' HPCSOA_PASSWORD=... \\
        python examples/batch.py

``HPCSOA_PIN_SHA256`` (a certificate fingerprint) or ``HPCSOA_CA_FILE`` (a PEM bundle) say
which certificate to trust when it is not in the system's trust store.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

import hpcsoa
from hpcsoa.emulator import EmulatorServer

Run = Callable[[hpcsoa.HpcClient], Awaitable[None]]


async def with_emulator(run: Run) -> None:
    # README: emulator-client
    async with EmulatorServer(tls=True) as server:  # https://127.0.0.1:<free port>
        async with hpcsoa.HpcClient(
            server.base_url,
            username=server.username,
            password=server.password,
            pin_sha256=server.cert_sha256,  # trust exactly this self-signed certificate
        ) as client:
            await run(client)
    # README: end


async def with_service(run: Run, url: str, username: str | None, password: str | None) -> None:
    # README: client
    async with hpcsoa.HpcClient(
        url,  # e.g. "https://head-node" (HPC Pack REST web service)
        username=username,  # e.g. "CONTOSO\\alice" (Basic authentication over TLS)
        password=password,
        verify=os.environ.get("HPCSOA_CA_FILE", True),  # a CA bundle, or the system store
        pin_sha256=os.environ.get("HPCSOA_PIN_SHA256"),  # or pin the certificate itself
    ) as client:
        await run(client)
    # README: end


def main(run: Run) -> None:
    """Run ``run(client)`` against argv / ``HPCSOA_*`` if given, else an embedded emulator."""
    args = sys.argv[1:]
    url = args[0] if args else os.environ.get("HPCSOA_URL")
    username = args[1] if len(args) > 1 else os.environ.get("HPCSOA_USERNAME")
    password = args[2] if len(args) > 2 else os.environ.get("HPCSOA_PASSWORD")
    if url:
        asyncio.run(with_service(run, url, username, password))
    else:
        asyncio.run(with_emulator(run))
