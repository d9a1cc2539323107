"""Frozen configuration objects: validation, defaults, the USE_DEFAULT sentinel, backoff."""

from __future__ import annotations

import dataclasses

import pytest

import hpcsoa
from hpcsoa._config import USE_DEFAULT, ClientConfig, UseDefault


def test_timeouts_validation() -> None:
    t = hpcsoa.Timeouts()
    assert (t.connect, t.read, t.total) == (10.0, 60.0, 120.0)
    assert dataclasses.replace(t, read=None).read is None
    with pytest.raises(ValueError, match="positive"):
        hpcsoa.Timeouts(read=0)
    with pytest.raises(TypeError):
        hpcsoa.Timeouts(read="1")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.read = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        hpcsoa.Timeouts(5)  # type: ignore[misc]  # keyword-only


def test_pool_limits_validation() -> None:
    assert hpcsoa.PoolLimits().max_connections == 16
    with pytest.raises(ValueError, match="at least 1"):
        hpcsoa.PoolLimits(max_connections=0)
    with pytest.raises(ValueError, match="max_per_host"):
        hpcsoa.PoolLimits(max_per_host=-1)
    with pytest.raises(ValueError, match="keepalive_expiry"):
        hpcsoa.PoolLimits(keepalive_expiry=0)


def test_retry_policy_backoff_and_validation() -> None:
    p = hpcsoa.RetryPolicy(jitter=False, backoff_initial=0.5, backoff_max=3)
    assert [p.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    j = hpcsoa.RetryPolicy(backoff_initial=1, backoff_max=8)
    assert j.backoff(3, rand=lambda: 0.5) == 2.0  # full jitter: uniform(0, step)
    with pytest.raises(ValueError, match="max_attempts"):
        hpcsoa.RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff_max"):
        hpcsoa.RetryPolicy(backoff_initial=5, backoff_max=1)
    with pytest.raises(ValueError, match="deadline"):
        hpcsoa.RetryPolicy(deadline=-1)


def test_client_config_validation_and_pin_normalisation() -> None:
    pin = ":".join(["AB"] * 32)
    cfg = ClientConfig(base_url="https://head:443", pin_sha256=pin)
    assert cfg.pin_sha256 == "ab" * 32
    assert cfg.scheme == "https"
    with pytest.raises(ValueError, match="64 hex"):
        ClientConfig(base_url="https://h", pin_sha256="abc")
    with pytest.raises(ValueError, match="query"):
        ClientConfig(base_url="https://h/?q=1")


def test_use_default_sentinel() -> None:
    assert USE_DEFAULT is UseDefault.USE_DEFAULT
    assert repr(USE_DEFAULT) == "USE_DEFAULT"
    assert hpcsoa.USE_DEFAULT is USE_DEFAULT
    assert USE_DEFAULT is not None
