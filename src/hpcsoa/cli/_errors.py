"""Exit codes and the translation of exceptions into one error line plus a hint.

Every command ends through :func:`report_exception` when it fails, so the exit code of a
failure depends only on the exception's class (httpx ``_main.py`` keeps the same single
place). Messages come from hpcsoa's own exceptions, which never carry credentials; the
password is still scrubbed from every line as a second line of defence.
"""

from __future__ import annotations

import enum
import sys
import traceback
from collections.abc import Iterable
from typing import TextIO

import click

import hpcsoa

__all__ = [
    "EXIT_CODES_HELP",
    "CliError",
    "ExitCode",
    "classify",
    "report_exception",
]


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``hpcsoa`` command line."""

    OK = 0
    USAGE = 1
    AUTH = 2
    TLS = 3
    BUSY = 4
    FAULTED = 5
    INTERRUPTED = 130


EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 usage error or request rejected; 2 authentication failed; "
    "3 TLS verification failed; 4 server busy, unreachable or retries exhausted; "
    "5 finished but some requests faulted; 130 interrupted."
)


class CliError(Exception):
    """An error already phrased for the user of the command line.

    Args:
        message: the error line (without the ``error:`` prefix).
        hint: an optional second line telling the user what to try.
        code: the process exit code.
    """

    def __init__(
        self, message: str, *, hint: str | None = None, code: ExitCode = ExitCode.USAGE
    ) -> None:
        self.message = message
        self.hint = hint
        self.code = code
        super().__init__(message)


_AUTH_HINT = (
    "check --username / --password (or HPCSOA_USERNAME / HPCSOA_PASSWORD); "
    "domain accounts are written DOMAIN\\name"
)
_TLS_HINT = (
    "trust the server with --ca-file FILE or --pin-sha256 FINGERPRINT "
    "(hpcsoa serve prints it); --insecure disables verification for testing only"
)
_BUSY_HINT = "the service is overloaded or unreachable: check --url and try again later"


_PLAIN_HTTP_HINT = (
    "the server answered the TLS handshake with something else: if it speaks plain HTTP "
    "(e.g. `hpcsoa serve` without --tls), use an http:// URL"
)


def _plain_http_answer(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the peer is not speaking TLS at all."""
    text = str(exc)
    return "WRONG_VERSION_NUMBER" in text or "record layer failure" in text


def _root_cause(exc: BaseException) -> BaseException:
    """Follow ``RetryError.__cause__`` to the last attempt's error."""
    seen = 0
    while isinstance(exc, hpcsoa.RetryError) and exc.__cause__ is not None and seen < 10:
        exc = exc.__cause__
        seen += 1
    return exc


def classify(exc: BaseException) -> tuple[ExitCode, str, str | None]:
    """Map an exception to ``(exit code, message, hint)``.

    The mapping is by class only: authentication (401/403) → 2, certificate or pin
    rejected → 3, server busy / unreachable / retries exhausted → 4, interrupted → 130,
    everything else (bad arguments, unknown ids, rejected requests) → 1.
    """
    if isinstance(exc, CliError):
        return exc.code, exc.message, exc.hint
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return ExitCode.INTERRUPTED, "interrupted", None
    if isinstance(exc, click.UsageError):
        hint = None
        if exc.ctx is not None:
            hint = f"try '{exc.ctx.command_path} --help'"
        return ExitCode.USAGE, exc.format_message(), hint
    if isinstance(exc, click.ClickException):
        return ExitCode.USAGE, exc.format_message(), None
    cause = _root_cause(exc)
    retried = cause is not exc
    suffix = " (after retries)" if retried else ""
    if isinstance(cause, hpcsoa.TLSVerificationError):
        return ExitCode.TLS, f"TLS verification failed: {cause}", _TLS_HINT
    if isinstance(cause, hpcsoa.AuthenticationError):
        return ExitCode.AUTH, f"authentication failed: {cause}", _AUTH_HINT
    if isinstance(cause, hpcsoa.Forbidden):
        return ExitCode.AUTH, f"access denied: {cause}", "the account lacks permission for this"
    if isinstance(cause, hpcsoa.ServerBusy):
        after = f" (Retry-After {cause.retry_after:g} s)" if cause.retry_after else ""
        return ExitCode.BUSY, f"server busy{after}: {cause}", _BUSY_HINT
    if isinstance(cause, hpcsoa.TransportError) and _plain_http_answer(cause):
        # https:// against a plain-HTTP port: not "busy", and retrying will not help.
        return ExitCode.BUSY, f"{_describe(cause)}{suffix}", _PLAIN_HTTP_HINT
    if retried:
        return ExitCode.BUSY, f"retries exhausted: {cause}", _BUSY_HINT
    if isinstance(cause, hpcsoa.TransportError | hpcsoa.ServerError | hpcsoa.TooManyRequests):
        return ExitCode.BUSY, f"{_describe(cause)}{suffix}", _BUSY_HINT
    if isinstance(cause, hpcsoa.NotFound):
        return ExitCode.USAGE, f"not found: {cause}", None
    if isinstance(cause, hpcsoa.HpcError):
        return ExitCode.USAGE, _describe(cause), None
    if isinstance(cause, TimeoutError):
        return ExitCode.USAGE, f"timed out: {cause}", None
    if isinstance(cause, OSError):
        return ExitCode.USAGE, _describe(cause), None
    return (
        ExitCode.USAGE,
        f"internal error: {_describe(cause)}",
        "this is a bug in hpcsoa; run again with -v for a traceback and report it",
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def report_exception(
    exc: BaseException,
    *,
    verbose: int = 0,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> ExitCode:
    """Print ``error: ...`` (and ``hint: ...``) on stderr and return the exit code.

    With ``verbose`` set the traceback is printed first. ``secrets`` are replaced by
    ``***`` in everything printed.
    """
    out = stream if stream is not None else sys.stderr
    secrets = tuple(s for s in secrets if s)
    code, message, hint = classify(exc)
    try:
        if verbose and code is not ExitCode.INTERRUPTED and not isinstance(exc, click.UsageError):
            tb = "".join(traceback.format_exception(exc))
            out.write(_scrub(tb, secrets))
        line = " ".join(message.split("\n"))
        prefix = "" if code is ExitCode.INTERRUPTED else "error: "
        out.write(_scrub(f"{prefix}{line}\n", secrets))
        if hint:
            out.write(_scrub(f"hint: {hint}\n", secrets))
        out.flush()
    except (OSError, ValueError):  # stderr closed: the exit code still tells the story
        pass
    return code
