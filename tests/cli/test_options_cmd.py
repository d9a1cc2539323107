"""Connection options, environment precedence, --insecure, TLS pinning, serve passthrough."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import orjson
import pytest
from cli_harness import PASSWORD, USER, ThreadedEmulator

from hpcsoa.cli import main

pytestmark = pytest.mark.integration


def test_environment_supplies_the_connection(emulator, monkeypatch, capsys):
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    assert main(["cluster", "info", "--json"]) == 0
    captured = capsys.readouterr()
    assert orjson.loads(captured.out)["clusters"] == ["HPCLAB"]
    assert PASSWORD not in captured.out + captured.err


def test_arguments_beat_the_environment(emulator, monkeypatch, capsys):
    monkeypatch.setenv("HPCSOA_URL", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("HPCSOA_USERNAME", USER)
    monkeypatch.setenv("HPCSOA_PASSWORD", "wrong-from-env")
    code = main(["session", "create", "--service", "CcpEchoSvc", "--json", *emulator.argv()])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    sid = str(orjson.loads(captured.out)["id"])
    assert main(["session", "close", sid, *emulator.argv()]) == 0
    # Only the password from the environment: it is used, and rejected.
    code = main(["cluster", "info", "--url", emulator.url])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "wrong-from-env" not in err


def test_insecure_warns_every_time(emulator, capsys):
    for _ in range(2):
        assert main(["cluster", "info", "--insecure", *emulator.argv()]) == 0
        assert "warning: --insecure" in capsys.readouterr().err


def test_tls_pinning_and_rejection(capsys):
    with ThreadedEmulator(users={USER: PASSWORD}, tls=True) as emu:
        assert emu.url.startswith("https://")
        assert main(["cluster", "info", "--json", *emu.argv()]) == 0  # pinned
        capsys.readouterr()
        wrong_pin = "00" * 32
        args = ["--url", emu.url, "--username", USER, "--password", PASSWORD]
        code = main(["cluster", "info", *args, "--pin-sha256", wrong_pin])
        err = capsys.readouterr().err
        assert code == 3, err
        assert "TLS verification failed" in err
        assert "--pin-sha256" in err  # the hint
        code = main(["cluster", "info", *args])  # self-signed, not in the trust store
        assert code == 3, capsys.readouterr().err
        assert main(["cluster", "info", *args, "--insecure"]) == 0
        assert "warning: --insecure" in capsys.readouterr().err


def test_serve_is_passed_through_verbatim(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--fault-plan" in out
    assert "--task-runner" in out
    assert main(["serve", "--no-such-flag"]) != 0


# A helper process that runs argv on a fresh pseudo-terminal (it becomes the controlling
# terminal, as in an interactive shell) and copies the terminal's I/O to its own pipes.
PTY_HELPER = "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))"


def test_password_is_prompted_for_on_a_terminal_without_echo(emulator):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCSOA_")}
    cmd = [sys.executable, "-c", PTY_HELPER, sys.executable, "-m", "hpcsoa", "cluster", "info"]
    cmd += ["--json", "--url", emulator.url, "--username", USER]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"Password for" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert b"Password for" in seen, seen
        time.sleep(0.2)  # let getpass turn echo off before we "type"
        proc.stdin.write(PASSWORD.encode() + b"\n")
        proc.stdin.flush()
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    output = (seen + rest).decode(errors="replace")
    assert proc.returncode == 0, output
    assert PASSWORD not in output  # not echoed, not printed
    assert '"clusters":["HPCLAB"]' in output
