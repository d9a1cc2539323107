"""Every ``examples/*.py`` runs, and every Python snippet in README.md is code from them.

Examples run as subprocesses exactly as a user would run them (each starts an embedded
emulator), plus once against a separate ``python -m hpcsoa serve`` process through the
``HPCSOA_*`` environment variables. README snippets must match a ``# README: name`` ...
``# README: end`` region of an example verbatim (after dedent), so they cannot drift.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 90

pytestmark = pytest.mark.integration


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCSOA_")}
    env["PYTHONWARNINGS"] = "error::ResourceWarning"  # an unclosed session fails the example
    return env


def regions() -> dict[str, str]:
    found: dict[str, str] = {}
    pattern = re.compile(r"^[ \t]*# README: (\S+)\n(.*?)^[ \t]*# README: end$", re.M | re.S)
    for path in (ROOT / "examples").glob("*.py"):
        for name, body in pattern.findall(path.read_text(encoding="utf-8")):
            assert name not in found, f"README region {name!r} defined twice"
            found[name] = textwrap.dedent(body).strip()
    return found


def readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [textwrap.dedent(s).strip() for s in re.findall(r"```python\n(.*?)```", text, re.S)]


def test_there_are_examples():
    assert len(EXAMPLES) >= 4


def test_readme_python_snippets_come_from_the_examples():
    snippets = readme_snippets()
    assert snippets, "README.md has no Python snippets"
    known = regions()
    for snippet in snippets:
        assert snippet in known.values(), f"README snippet not found in examples/:\n{snippet}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_against_an_embedded_emulator(path):
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "an example should show what it did"
    assert "Traceback" not in proc.stderr


def test_example_runs_against_a_separate_server():
    """``hpcsoa serve`` in its own process; the example reads HPCSOA_* (no TLS here)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "hpcsoa", "serve", "--port", "0", "--user", "LAB\\ex:pw-ex-1",
         "--log-level", "warning"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        match = re.search(r"https?://[\w.:\[\]]+", banner)
        assert match, banner
        env = {**clean_env(), "HPCSOA_URL": match.group(0)}
        env |= {"HPCSOA_USERNAME": "LAB\\ex", "HPCSOA_PASSWORD": "pw-ex-1"}
        proc = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "batch.py")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "CN01 (GenericService): alpha" in proc.stdout
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


def test_readme_fault_plans_parse():
    from hpcsoa.emulator import FaultPlan

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    plans = re.findall(r"```json\n(.*?)```", text, re.S)
    assert plans
    for plan in plans:
        assert FaultPlan.from_json(plan).rules


def test_readme_serve_flags_exist():
    from hpcsoa.emulator._cli import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The emulator") : text.index("### Fault plans")]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("| `--"))
    flags = set(re.findall(r"(--[a-z][a-z0-9-]+)", rows))
    known = {opt for action in build_parser()._actions for opt in action.option_strings}
    assert flags
    assert flags <= known, flags - known


def test_readme_cli_commands_exist(capsys):
    from hpcsoa.cli import main

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Command line") : text.index("## The emulator")]
    commands = set()
    for group, names in re.findall(r"hpcsoa ([a-z]+) ([a-z|]+)", section):
        commands |= {(group, name) for name in names.split("|")}
    assert len(commands) > 20
    for group, name in sorted(commands):
        assert main([group, name, "--help"]) == 0, (group, name)
    capsys.readouterr()
