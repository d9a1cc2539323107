"""Fixtures for the CLI tests (the emulator harness lives in ``cli_harness.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_harness import PASSWORD, USER, Emulator, ThreadedEmulator


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own HPCSOA_* settings must not leak into the tests."""
    for name in ("HPCSOA_URL", "HPCSOA_USERNAME", "HPCSOA_PASSWORD", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def emulator_host() -> Iterator[ThreadedEmulator]:
    host = ThreadedEmulator(users={USER: PASSWORD}, task_runtime_ms=20)
    with host:
        yield host


@pytest.fixture(scope="module")
def emulator(emulator_host: ThreadedEmulator) -> Emulator:
    assert emulator_host.emulator is not None
    return emulator_host.emulator
