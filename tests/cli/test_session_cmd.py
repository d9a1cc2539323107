"""``hpcsoa session ...`` one operation at a time against a real emulator."""

from __future__ import annotations

import orjson
import pytest

from hpcsoa.cli import main

pytestmark = pytest.mark.integration


def run(capsys, emulator, *args: str) -> tuple[int, str, str]:
    code = main(["session", *args, *emulator.argv()])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_session_lifecycle_step_by_step(emulator, tmp_path, capsys):
    code, out, err = run(capsys, emulator, "create", "--service", "CcpEchoSvc", "--json")
    assert code == 0, err
    info = orjson.loads(out)
    sid = str(info["id"])
    assert info["durable"] is False
    assert info["max_message_size"] > 0
    assert info["broker_node"]

    code, out, err = run(capsys, emulator, "attach", sid, "--json")
    assert code == 0, err
    assert orjson.loads(out)["id"] == info["id"]

    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(orjson.dumps(f"item {i}").decode() for i in range(25)) + "\n")
    code, out, err = run(capsys, emulator, "send", sid, "--batch", "b1", "--input", str(src))
    assert code == 0, err
    assert "25 requests sent" in err

    code, out, err = run(capsys, emulator, "responses", sid, "--batch", "b1")
    assert code == 0, err
    lines = [orjson.loads(x) for x in out.splitlines()]
    assert len(lines) == 25
    assert sorted(r["output"] for r in lines) == sorted(
        f"CN01 (GenericService): item {i}" for i in range(25)
    )
    assert all(r["fault"] is None for r in lines)

    code, out, err = run(capsys, emulator, "status", sid, "--batch", "b1", "--json")
    assert code == 0, err
    assert orjson.loads(out)["status"] == "Finished"

    code, out, err = run(capsys, emulator, "purge", sid, "--batch", "b1")
    assert code == 0, err

    code, out, err = run(capsys, emulator, "close", sid)
    assert code == 0, err
    assert f"session {sid} closed" in err

    code, out, err = run(capsys, emulator, "attach", sid)
    assert code == 1, err
    assert err.startswith("error: ")
    assert "\x1b[" not in out + err


def test_table_output_has_no_control_sequences(emulator, capsys):
    code, out, err = run(capsys, emulator, "create", "--service", "CcpEchoSvc")
    assert code == 0, err
    assert "broker_node" in out
    assert "\x1b[" not in out + err
    sid = next(line.split()[-1] for line in out.splitlines() if line.strip().startswith("id"))
    assert run(capsys, emulator, "close", sid)[0] == 0


def test_unknown_service_is_a_clean_error(emulator, capsys):
    code, _out, err = run(capsys, emulator, "create", "--service", "NoSuchSvc")
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
