"""``hpcsoa demo`` smoke test (what ``make demo`` runs, with fewer requests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from hpcsoa.cli import main

pytestmark = pytest.mark.integration


def test_demo_smoke(capsys):
    code = main(["demo", "--requests", "2000"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = captured.out
    for needle in ("throughput", "latency p50", "retries", "faults", "wall time", "Finished"):
        assert needle in out, out
    assert "2,000 / 2,000" in out
    assert "https://127.0.0.1:" in captured.err  # TLS, loopback
    assert "\x1b[" not in captured.out + captured.err


def test_demo_keep_serving_prints_working_credentials(capsys):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCSOA_")}
    cmd = [sys.executable, "-m", "hpcsoa", "demo", "--requests", "100", "--keep-serving"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while "pin-sha256" not in lines and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            key, _, value = line.strip().partition(": ")
            lines[key] = value.strip()
            if line.startswith("serving at "):
                lines["url"] = line.split()[2]
        assert "pin-sha256" in lines, lines
        args = ["--url", lines["url"], "--username", lines["user"]]
        args += ["--password", lines["password"], "--pin-sha256", lines["pin-sha256"]]
        assert main(["session", "create", "--service", "CcpEchoSvc", "--json", *args]) == 0
        sid = str(orjson.loads(capsys.readouterr().out)["id"])
        assert main(["session", "close", sid, *args]) == 0
        proc.send_signal(signal.SIGTERM)  # what a service manager sends; Ctrl-C also works
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
