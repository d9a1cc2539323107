"""Settings shared by the whole suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests check behaviour, not speed: on a busy CI machine one slow draw must not
# fail a test (the "too_slow" health check) or an example (the per-example deadline).
settings.register_profile("hpcsoa", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hpcsoa")
