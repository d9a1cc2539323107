"""``hpcsoa jobs|tasks|nodes|cluster`` against a real emulator: exit codes and --json."""

from __future__ import annotations

import orjson
import pytest

from hpcsoa.cli import main

pytestmark = pytest.mark.integration


def run(capsys, emulator, *args: str) -> tuple[int, str, str]:
    code = main([*args, *emulator.argv()])
    captured = capsys.readouterr()
    assert "\x1b[" not in captured.out + captured.err  # never a control sequence off a tty
    assert emulator.password not in captured.out + captured.err
    return code, captured.out, captured.err


def jsonl(out: str) -> list[dict]:
    return [orjson.loads(line) for line in out.splitlines()]


def test_parametric_sweep_job_round_trip(emulator, capsys):
    code, out, err = run(capsys, emulator, "jobs", "create", "--name", "cli-sweep", "--json")
    assert code == 0, err
    job_id = orjson.loads(out)["id"]
    assert isinstance(job_id, int)

    code, out, err = run(
        capsys, emulator, "tasks", "add", str(job_id), "--command-line", "echo *",
        "--sweep", "1:4", "--name", "fan", "--json",
    )  # fmt: skip
    assert code == 0, err
    task_id = orjson.loads(out)["id"]

    assert run(capsys, emulator, "jobs", "submit", str(job_id))[0] == 0
    code, out, err = run(capsys, emulator, "jobs", "wait", str(job_id), "--timeout", "30", "--json")
    assert code == 0, err
    assert orjson.loads(out)["state"] == "Finished"

    code, out, err = run(capsys, emulator, "jobs", "show", str(job_id), "--json")
    assert code == 0, err
    job = orjson.loads(out)
    assert job["id"] == job_id
    assert job["name"] == "cli-sweep"
    assert job["properties"]

    code, out, err = run(capsys, emulator, "tasks", "list", str(job_id), "--json")
    assert code == 0, err
    tasks = jsonl(out)
    assert len(tasks) == 4  # the sweep's instances
    assert {t["state"] for t in tasks} == {"Finished"}

    code, out, err = run(capsys, emulator, "tasks", "show", str(job_id), str(task_id), "--json")
    assert code == 0, err
    assert orjson.loads(out)["name"] == "fan"

    # Streamed listing, several pages: every job once, ours among them.
    code, out, err = run(capsys, emulator, "jobs", "list", "--json", "--page-size", "1")
    assert code == 0, err
    ids = [j["id"] for j in jsonl(out)]
    assert job_id in ids
    assert len(ids) == len(set(ids))


def test_cancel_and_requeue(emulator, capsys):
    code, out, err = run(capsys, emulator, "jobs", "create", "--name", "to-cancel", "--json")
    assert code == 0, err
    job_id = str(orjson.loads(out)["id"])
    code, out, err = run(capsys, emulator, "jobs", "set", job_id, "--set", "Name=renamed")
    assert code == 0, err
    code, out, err = run(capsys, emulator, "jobs", "show", job_id, "--json")
    assert orjson.loads(out)["name"] == "renamed"
    code, out, err = run(
        capsys, emulator, "tasks", "add", job_id, "--command-line", "sleep 30", "--json"
    )
    assert code == 0, err
    task_id = str(orjson.loads(out)["id"])
    code, out, err = run(capsys, emulator, "tasks", "set", job_id, task_id, "--set", "Name=t1")
    assert code == 0, err
    assert run(capsys, emulator, "jobs", "submit", job_id)[0] == 0
    code, out, err = run(capsys, emulator, "jobs", "cancel", job_id, "--message", "stop it")
    assert code == 0, err
    code, out, err = run(capsys, emulator, "jobs", "wait", job_id, "--timeout", "30")
    assert code == 5  # ended, but not Finished
    assert "Canceled" in out
    code, out, err = run(capsys, emulator, "jobs", "requeue", job_id)
    assert code == 0, err


def test_unknown_job_exits_1_with_one_line(emulator, capsys):
    code, _out, err = run(capsys, emulator, "jobs", "show", "987654")
    assert code == 1
    assert err.startswith("error: not found")
    assert "Traceback" not in err


def test_nodes_and_cluster(emulator, capsys):
    code, out, err = run(capsys, emulator, "nodes", "list", "--json")
    assert code == 0, err
    names = [n["name"] for n in jsonl(out)]
    assert "CN01" in names

    code, out, err = run(capsys, emulator, "nodes", "show", "CN01", "--json")
    assert code == 0, err
    assert orjson.loads(out)["name"] == "CN01"

    code, out, err = run(capsys, emulator, "nodes", "groups", "--json")
    assert code == 0, err
    groups = orjson.loads(out)
    assert "ComputeNodes" in [g["name"] if isinstance(g, dict) else g for g in groups]

    code, out, err = run(capsys, emulator, "nodes", "groups", "ComputeNodes", "--json")
    assert code == 0, err
    assert "CN01" in orjson.loads(out)

    code, out, err = run(capsys, emulator, "cluster", "info", "--json")
    assert code == 0, err
    info = orjson.loads(out)
    assert info["clusters"] == ["HPCLAB"]
    assert info["version"]


def test_tables_by_default(emulator, capsys):
    code, out, err = run(capsys, emulator, "nodes", "list")
    assert code == 0, err
    assert "Name" in out.splitlines()[1]  # title, then the header row
    assert "CN01" in out
    code, out, err = run(capsys, emulator, "cluster", "info")
    assert code == 0, err
    assert "HPCLAB" in out


def test_priority_is_case_insensitive_and_normalised(emulator, capsys):
    code, out, err = run(
        capsys, emulator, "jobs", "create", "--name", "prio", "--priority", "highest", "--json"
    )
    assert code == 0, err
    job_id = orjson.loads(out)["id"]
    code, out, err = run(capsys, emulator, "jobs", "show", str(job_id), "--json")
    assert code == 0, err
    assert orjson.loads(out)["priority"] == "Highest"
