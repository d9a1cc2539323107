"""``hpcsoa sweep`` end to end against a real emulator (JSONL, CSV, stdin, SOAP, resume)."""

from __future__ import annotations

import collections
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from cli_harness import PASSWORD, USER, Emulator, ThreadedEmulator

from hpcsoa.cli import main

pytestmark = pytest.mark.integration

N = 20_000


async def flaky(text: str) -> str:
    """A user service that faults on inputs containing 'bad'."""
    if "bad" in text:
        raise ValueError("this input is bad")
    return text.upper()


@pytest.fixture(scope="module")
def emulator_host():
    host = ThreadedEmulator(users={USER: PASSWORD}, services={"Flaky": flaky})
    with host:
        yield host


def read_results(path: Path) -> list[dict]:
    lines = path.read_bytes().splitlines()
    return [orjson.loads(line) for line in lines]


def sweep(emulator: Emulator, *args: str) -> int:
    return main(["sweep", *emulator.argv(), *args])


def test_sweep_jsonl_one_line_per_id(emulator, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    with src.open("wb") as f:
        for i in range(N):
            if i % 3 == 0:
                f.write(orjson.dumps(f"bare {i}") + b"\n")  # id = line number
            else:
                f.write(orjson.dumps({"id": f"r{i}", "input": f"value {i}"}) + b"\n")
    out = tmp_path / "out.jsonl"
    code = sweep(emulator, "--service", "CcpEchoSvc", "--input", str(src), "--output", str(out))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = read_results(out)
    assert len(results) == N
    ids = [r["id"] for r in results]
    assert len(set(ids)) == N
    expected = {(i + 1 if i % 3 == 0 else f"r{i}") for i in range(N)}
    assert set(ids) == expected
    for r in results:
        assert r["fault"] is None
        assert r["output"].startswith("CN01 (GenericService): ")
        assert isinstance(r["latency_ms"], float)
    by_id = {r["id"]: r["output"] for r in results}
    assert by_id["r1"].endswith(": value 1")
    assert by_id[1].endswith(": bare 0")
    # Not a terminal: plain progress/summary lines on stderr, no control sequences anywhere.
    assert "\x1b[" not in captured.err
    assert "\x1b[" not in captured.out
    assert "sweep: 20000 done" in captured.err


def test_sweep_csv_with_columns(emulator, tmp_path, capsys):
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "x", "note"])
        for i in range(N):
            w.writerow([f"k{i}", f'x={i}, "quoted"', "n"])
    out = tmp_path / "out.jsonl"
    code = sweep(
        emulator,
        "--service", "CcpEchoSvc",
        "--input", str(src),
        "--input-column", "x",
        "--id-column", "key",
        "--output", str(out),
        "--ordered",
        "--window", "2000",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    results = read_results(out)
    assert [r["id"] for r in results] == [f"k{i}" for i in range(N)]  # --ordered
    assert results[7]["output"].endswith(': x=7, "quoted"')


def test_sweep_from_stdin_to_stdout(emulator, monkeypatch, capsys):
    data = b"".join(orjson.dumps(f"line {i}") + b"\n" for i in range(50))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = sweep(emulator, "--service", "CcpEchoSvc", "--input", "-", "--output", "-", "-q")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = [orjson.loads(x) for x in captured.out.splitlines()]
    assert sorted(r["id"] for r in results) == list(range(1, 51))


def test_sweep_faults_exit_5(emulator, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(orjson.dumps(s).decode() for s in ["ok", "bad one", "fine"]) + "\n")
    out = tmp_path / "out.jsonl"
    code = sweep(emulator, "--service", "Flaky", "--input", str(src), "--output", str(out))
    assert code == 5, capsys.readouterr().err
    results = {r["id"]: r for r in read_results(out)}
    assert results[1]["output"] == "OK"
    assert results[1]["fault"] is None
    assert results[2]["output"] is None
    assert "bad" in orjson.dumps(results[2]["fault"]).decode()
    assert "1 faulted" in capsys.readouterr().err


def test_sweep_soap_operation(emulator, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "input": "hi"}\n{"id": "b", "input": {"input": "there"}}\n')
    out = tmp_path / "out.jsonl"
    code = sweep(
        emulator,
        "--service", "CcpEchoSvc", "--soap", "--operation", "Echo",
        "--input", str(src), "--output", str(out),
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert {r["id"]: r["output"] for r in read_results(out)} == {"a": "CN01:hi", "b": "CN01:there"}

    # --action: each input is the SOAP body itself.
    body = '<Echo xmlns="http://tempuri.org/"><input>raw &amp; body</input></Echo>'
    src.write_text(orjson.dumps({"id": "x", "input": body}).decode() + "\n")
    out2 = tmp_path / "out2.jsonl"
    code = sweep(
        emulator,
        "--service", "CcpEchoSvc", "--soap", "--action", "http://tempuri.org/IEchoSvc/Echo",
        "--input", str(src), "--output", str(out2),
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert read_results(out2)[0]["output"] == "CN01:raw & body"


def test_sweep_refuses_to_append_without_resume(emulator, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n')
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1}\n')
    code = sweep(emulator, "--service", "CcpEchoSvc", "--input", str(src), "--output", str(out))
    err = capsys.readouterr().err
    assert code == 1
    assert "already exists" in err
    assert "--resume" in err
    assert out.read_text() == '{"id": 1}\n'


def test_sweep_bad_input_fails_before_any_work(emulator, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n{oops\n')
    out = tmp_path / "out.jsonl"
    code = sweep(emulator, "--service", "CcpEchoSvc", "--input", str(src), "--output", str(out))
    err = capsys.readouterr().err
    assert code == 1
    assert "in.jsonl:2: not valid JSON" in err
    assert "Traceback" not in err
    assert not out.exists() or out.read_bytes() == b""


def start_sweep(emu: Emulator, src: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **emu.env(), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hpcsoa", "sweep", "--service", "CcpEchoSvc"]
    cmd += ["--input", str(src), "--output", str(out), "--window", "1000", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def interrupt_when(proc: subprocess.Popen[bytes], out: Path, size: int, sig: int) -> str:
    """Send ``sig`` once ``out`` has grown past ``size`` bytes; return the process's stderr."""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.stat().st_size > size:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep finished before the test could interrupt it"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    return err.decode()


def test_interrupted_sweep_resumes_exactly_once(tmp_path, capsys):
    """Ctrl-C a sweep, resume it and SIGKILL that, tear its last line, resume to the end."""
    total = 30_000
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"".join(orjson.dumps({"id": i, "input": f"v{i}"}) + b"\n" for i in range(total))
    )
    out = tmp_path / "out.jsonl"
    # 16 cores x 2 ms: about 8 000 requests/s, so each run lasts a few seconds.
    with ThreadedEmulator(users={USER: PASSWORD}, latency_ms=2, cores=16) as emu:
        # 1. Ctrl-C: exit 130, and every completed result is in the file as a whole line.
        proc = start_sweep(emu, src, out)
        err = interrupt_when(proc, out, 100_000, signal.SIGINT)
        assert proc.returncode == 130, err
        assert "interrupted after" in err
        assert "--resume" in err  # the hint
        assert "Traceback" not in err
        first = read_results(out)  # raises if a line is torn
        assert 0 < len(first) < total

        # 2. --resume, then a crash (SIGKILL) mid-run.
        proc = start_sweep(emu, src, out, "--resume")
        interrupt_when(proc, out, out.stat().st_size + 100_000, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL
        second = read_results_tolerant(out)
        assert len(first) < len(second) < total
        with out.open("ab") as f:  # as if the crash hit in the middle of a write
            f.write(b'{"id": 123456, "outp')

        # 3. --resume to the end.
        code = main(["sweep", *emu.argv(), "--service", "CcpEchoSvc", "--input", str(src),
                     "--output", str(out), "--resume", "--window", "4000"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 0, err
    counts = collections.Counter(r["id"] for r in read_results(out))
    assert set(counts) == set(range(total))
    assert max(counts.values()) == 1
    assert f"{len(second)} skipped" in err


def read_results_tolerant(path: Path) -> list[dict]:
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]  # the last element is a torn line or b""
    return [orjson.loads(line) for line in lines]


def test_wrong_password_exits_2_without_echoing_it(emulator, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n')
    wrong = "Wr0ng-pa55word-zz"
    for verbosity in ([], ["-vv"]):
        code = main(
            ["sweep", *verbosity, *emulator.argv(password=wrong), "--service", "CcpEchoSvc",
             "--input", str(src), "--output", str(tmp_path / f"o{len(verbosity)}.jsonl")]
        )  # fmt: skip
        captured = capsys.readouterr()
        assert code == 2, captured.err
        assert "authentication failed" in captured.err
        assert "hint:" in captured.err
        for text in (captured.out, captured.err):
            assert wrong not in text
            assert PASSWORD not in text
        if not verbosity:
            assert "Traceback" not in captured.err
            assert len(captured.err.strip().splitlines()) <= 3  # one error line and a hint


def test_closed_output_pipe_exits_quietly(emulator: Emulator, tmp_path: Path) -> None:
    # `hpcsoa sweep --output - | head -1`: the reader leaves early; the sweep stops with 0
    # and no traceback or "Exception ignored" noise, like other Unix tools.
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"id": {i}, "input": "x{i}"}}\n' for i in range(50_000)))
    env = {**os.environ, **emulator.env(), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hpcsoa", "sweep", "--service", "CcpEchoSvc"]
    cmd += ["--input", str(src), "--output", "-"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # the reader goes away
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert first.startswith(b"{")
    text = err.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert "Exception ignored" not in text
