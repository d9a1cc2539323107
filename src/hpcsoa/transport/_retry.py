"""RetryPolicy → tenacity ``AsyncRetrying``, built in this one place (STYLE §6).

A retry decision has four parts, each expressed with tenacity:

* **predicate**: ``retry_if_exception(should_retry)``. Which failures are safe to repeat is
  decided per operation by the pure table in ``protocol/_errors.py`` (``is_retryable``);
  cancellation and ``KeyboardInterrupt`` are never retried.
* **delay schedule**: jittered exponential backoff, raised to the server's ``Retry-After``
  when it sent one (a ``Retry-After`` above the policy's cap never reaches this point: the
  requester raises :class:`~hpcsoa.ServerBusy` instead of sleeping that long).
* **deadline**: ``stop_after_attempt`` *and* ``stop_before_delay`` (no sleep is started that
  would end past the deadline: api-core's "check before sleeping").
* **terminal error**: :class:`~hpcsoa.RetryError` with the last attempt's error as
  ``__cause__``.

Each retry is logged at WARNING on ``hpcsoa.transport.retry`` (operation, attempt, reason,
sleep) and reported to an optional ``on_retry`` callback, which feeds the counters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base, stop_before_delay
from tenacity.wait import wait_base

from .._exceptions import ApiError, RetryError

if TYPE_CHECKING:
    from .._config import RetryPolicy

__all__ = ["build_retrying", "call_with_retry", "describe_error"]

logger = logging.getLogger("hpcsoa.transport.retry")

T = TypeVar("T")


def describe_error(exc: BaseException) -> str:
    """A one-line reason for logs: class name plus status, never a body or credentials."""
    if isinstance(exc, ApiError):
        code = f" fault {exc.code}" if exc.code is not None else ""
        return f"{type(exc).__name__} (HTTP {exc.status}{code})"
    return f"{type(exc).__name__}: {exc}"


class _BackoffOrRetryAfter(wait_base):
    """``max(backoff(attempt), Retry-After)``: never sooner than the server asked."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self._policy.backoff(retry_state.attempt_number)
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed:
            retry_after = getattr(outcome.exception(), "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > delay:
                delay = float(retry_after)
        return delay


def build_retrying(
    policy: RetryPolicy,
    *,
    operation: str,
    should_retry: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException], None] | None = None,
) -> AsyncRetrying:
    """The tenacity controller for one call of ``operation`` under ``policy``."""
    stop: stop_base = stop_after_attempt(policy.max_attempts)
    if policy.deadline is not None:
        stop = stop | stop_before_delay(policy.deadline)

    def _predicate(exc: BaseException) -> bool:
        # Only Exceptions: CancelledError / KeyboardInterrupt must propagate untouched.
        return isinstance(exc, Exception) and should_retry(exc)

    def _before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        sleep = state.upcoming_sleep
        logger.warning(
            "retrying %s (attempt %d of %d) in %.2fs after %s",
            operation,
            state.attempt_number + 1,
            policy.max_attempts,
            sleep,
            describe_error(exc) if exc is not None else "?",
        )
        if on_retry is not None and exc is not None:
            on_retry(exc)

    def _exhausted(state: RetryCallState) -> NoReturn:
        exc = state.outcome.exception() if state.outcome is not None else None
        reason = describe_error(exc) if exc is not None else "unknown error"
        raise RetryError(
            f"{operation} failed after {state.attempt_number} attempts; last error: {reason}",
            attempts=state.attempt_number,
            operation=operation,
        ) from exc

    return AsyncRetrying(
        sleep=policy.sleep if policy.sleep is not None else asyncio.sleep,
        stop=stop,
        wait=_BackoffOrRetryAfter(policy),
        retry=retry_if_exception(_predicate),
        before_sleep=_before_sleep,
        retry_error_callback=_exhausted,
    )


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy | None,
    operation: str,
    should_retry: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``fn`` until it succeeds, a failure is not retryable, or the policy gives up.

    Raises:
        RetryError: retries were exhausted (``__cause__`` is the last error).
        Exception: the first error that ``should_retry`` rejects, unchanged.
    """
    if policy is None or policy.max_attempts == 1:
        return await fn()
    # Fast path: most calls succeed at once, and building a tenacity controller costs more
    # than a small request. Only a failure that may be retried enters tenacity, which then
    # replays that first failure as its attempt 1 (same schedule, logs and terminal error).
    try:
        return await fn()
    except Exception as exc:
        if not should_retry(exc):
            raise
        first: list[BaseException] = [exc]

    async def attempt() -> T:
        if first:
            raise first.pop()
        return await fn()

    retrying = build_retrying(
        policy, operation=operation, should_retry=should_retry, on_retry=on_retry
    )
    result: T = await retrying(attempt)
    return result
