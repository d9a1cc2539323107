"""Layers point one way: protocol ← transport ← soa / scheduler ← client ← cli; emulator → protocol.

Checked statically on every import statement (including those inside functions), so a lazy
import cannot sneak a dependency the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hpcsoa"

# package → hpcsoa sub-packages / modules it must never import, plus third-party modules.
FORBIDDEN: dict[str, set[str]] = {
    "protocol": {
        "hpcsoa.transport",
        "hpcsoa.soa",
        "hpcsoa.scheduler",
        "hpcsoa._client",
        "hpcsoa.cli",
        "hpcsoa.emulator",
        "aiohttp",
        "asyncio",
        "anyio",
        "socket",
        "time",
    },
    "transport": {"hpcsoa.soa", "hpcsoa.scheduler", "hpcsoa._client", "hpcsoa.cli"},
    "soa": {"hpcsoa.scheduler", "hpcsoa._client", "hpcsoa.cli", "hpcsoa.emulator", "aiohttp"},
    "scheduler": {"hpcsoa.soa", "hpcsoa._client", "hpcsoa.cli", "hpcsoa.emulator", "aiohttp"},
    "emulator": {
        "hpcsoa.transport",
        "hpcsoa.soa",
        "hpcsoa.scheduler",
        "hpcsoa._client",
        "hpcsoa.cli",
    },
}


def _imports(path: Path, root: Path) -> set[str]:
    package = "hpcsoa." + ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def _violations(layer: str, root: Path = SRC) -> list[str]:
    bad: list[str] = []
    for path in sorted((root / layer).rglob("*.py")):
        for mod in _imports(path, root):
            for forbidden in FORBIDDEN[layer]:
                if mod == forbidden or mod.startswith(forbidden + "."):
                    bad.append(f"{path.relative_to(root)} imports {mod}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer: str) -> None:
    assert (SRC / layer).is_dir()
    assert _violations(layer) == []


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    # The checker itself must be able to fail: a relative import two levels up is resolved.
    (tmp_path / "protocol").mkdir()
    probe = tmp_path / "protocol" / "_probe.py"
    probe.write_text("def f():\n    from ..transport import _aiohttp\n    import asyncio\n")
    bad = _violations("protocol", tmp_path)
    assert any("hpcsoa.transport" in b for b in bad)
    assert any("asyncio" in b for b in bad)
