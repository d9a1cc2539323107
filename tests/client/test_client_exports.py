"""The public API: ``hpcsoa.__all__`` is sorted (isort style, as ruff RUF022) and complete."""

from __future__ import annotations

import types

import hpcsoa


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper() and len(name) > 1:
        return (0, name)  # CONSTANTS
    if name[:1].isupper():
        return (1, name)  # Classes
    return (2, name)  # everything else (functions, __dunders__)


def test_all_is_sorted() -> None:
    assert hpcsoa.__all__ == sorted(hpcsoa.__all__, key=_isort_key)


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(hpcsoa).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(hpcsoa.__all__), public - set(hpcsoa.__all__)
    for name in hpcsoa.__all__:
        assert hasattr(hpcsoa, name), name


def test_client_names_are_exported() -> None:
    for name in (
        "HpcClient",
        "BasicAuth",
        "PoolLimits",
        "RetryPolicy",
        "Timeouts",
        "SoaSession",
        "Batch",
        "ResponseStream",
        "Request",
        "Response",
        "MapResult",
        "MapStream",
        "AsyncPager",
        "RequestFault",
    ):
        assert name in hpcsoa.__all__
        assert getattr(hpcsoa, name).__module__.startswith("hpcsoa.")
        assert getattr(hpcsoa, name).__doc__, f"{name} has no docstring"
