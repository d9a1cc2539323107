"""Connection options shared by every command, the per-run state and logging setup.

Only the CLI reads environment variables (STYLE §5). Click gives command-line arguments
precedence over ``HPCSOA_*`` variables. The password is prompted for without echo when it
is missing and stdin is a terminal; it is kept out of reprs, logs and output.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

import hpcsoa

__all__ = [
    "CliState",
    "Connection",
    "configure_logging",
    "connection_options",
    "open_client",
    "verbose_option",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(slots=True)
class CliState:
    """Mutable state of one ``main()`` call, shared with every command through ``ctx.obj``."""

    verbose: int = 0
    secrets: list[str] = dataclasses.field(default_factory=list, repr=False)
    _undo_logging: Callable[[], None] | None = dataclasses.field(default=None, repr=False)

    def add_secret(self, secret: str | None) -> None:
        """Remember a value that must be scrubbed from anything printed."""
        if secret and secret not in self.secrets:
            self.secrets.append(secret)

    def increase_verbosity(self, count: int) -> None:
        """Add ``count`` to the verbosity and (re)configure logging for it."""
        if count <= 0:
            return
        self.verbose += count
        self.close()
        self._undo_logging = configure_logging(self)

    def close(self) -> None:
        """Undo the logging setup (``main()`` calls this on the way out)."""
        if self._undo_logging is not None:
            self._undo_logging()
            self._undo_logging = None


def _state() -> CliState:
    ctx = click.get_current_context()
    state = ctx.find_object(CliState)
    if state is None:  # a command invoked outside main(): keep a private state
        state = ctx.ensure_object(CliState)
    return state


def _verbose_callback(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    state = ctx.find_object(CliState) or ctx.ensure_object(CliState)
    state.increase_verbosity(value)
    return value


def verbose_option(f: F) -> F:
    """``-v`` / ``--verbose`` (repeatable): INFO logs, then DEBUG logs and tracebacks."""
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        is_eager=True,
        callback=_verbose_callback,
        help="Log to stderr (-v info, -vv debug); show tracebacks on errors.",
    )(f)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """Where and how to connect, as given on the command line or in the environment."""

    url: str | None
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    cluster: str | None
    api_version: str
    ca_file: str | None
    pin_sha256: str | None
    insecure: bool


_PIN_RE = re.compile(r"^[0-9a-f]{64}$")


def _normalize_pin(value: str | None) -> str | None:
    if value is None:
        return None
    pin = value.replace(":", "").replace(" ", "").lower()
    if not _PIN_RE.match(pin):
        raise click.BadParameter(
            "expected a SHA-256 fingerprint: 64 hex digits, colons allowed",
            param_hint="'--pin-sha256'",
        )
    return pin


def _check_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise click.BadParameter("expected http://HOST[:PORT] or https://HOST[:PORT]")
    return value.rstrip("/")


_CONNECTION_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option(
        "--url",
        envvar="HPCSOA_URL",
        show_envvar=True,
        callback=_check_url,
        help="Base URL of the HPC Pack REST web service, e.g. https://head:443.",
    ),
    click.option(
        "--username",
        envvar="HPCSOA_USERNAME",
        show_envvar=True,
        help="User name for Basic authentication (DOMAIN\\name).",
    ),
    click.option(
        "--password",
        envvar="HPCSOA_PASSWORD",
        show_envvar=True,
        help="Password; prompted for without echo when missing on a terminal.",
    ),
    click.option(
        "--cluster",
        default=None,
        help="Cluster name for the pre-2016 URI form (default: detect).",
    ),
    click.option(
        "--api-version",
        default="2011-11-01",
        show_default=True,
        help="api-version sent with every request.",
    ),
    click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="PEM file of CA certificates to trust for TLS.",
    ),
    click.option(
        "--pin-sha256",
        default=None,
        help="Accept exactly the server certificate with this SHA-256 fingerprint.",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        default=False,
        help="Do not verify the server's TLS certificate (testing only; warns every time).",
    ),
)

_CONNECTION_KEYS = (
    "url",
    "username",
    "password",
    "cluster",
    "api_version",
    "ca_file",
    "pin_sha256",
    "insecure",
)


def connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection options to a command; it receives them as ``conn: Connection``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {key: kwargs.pop(key) for key in _CONNECTION_KEYS}
        state = _state()
        state.add_secret(values["password"])
        conn = Connection(
            url=values["url"],
            username=values["username"] or None,
            password=values["password"],
            cluster=values["cluster"],
            api_version=values["api_version"],
            ca_file=values["ca_file"],
            pin_sha256=_normalize_pin(values["pin_sha256"]),
            insecure=bool(values["insecure"]),
        )
        return f(*args, conn=conn, **kwargs)

    wrapped: Callable[..., Any] = wrapper
    for option in reversed(_CONNECTION_OPTIONS):
        wrapped = option(wrapped)
    return verbose_option(wrapped)


def resolve_connection(conn: Connection) -> Connection:
    """Check the URL is set, warn about ``--insecure`` and prompt for a missing password.

    Must run before the event loop starts (the prompt blocks).

    Raises:
        CliError: no URL, or a user name without a password and no terminal to ask on.
    """
    from ._errors import CliError

    if not conn.url:
        raise CliError(
            "no service URL given",
            hint="pass --url https://HEAD-NODE or set HPCSOA_URL",
        )
    if conn.insecure:
        click.echo(
            "warning: --insecure: the server's TLS certificate is NOT verified; "
            "anyone on the network path can read the password",
            err=True,
        )
    if conn.username and conn.password is None:
        if not sys.stdin.isatty():
            raise CliError(
                f"no password for user '{conn.username}'",
                hint="pass --password or set HPCSOA_PASSWORD (no terminal to prompt on)",
            )
        password = click.prompt(
            f"Password for {conn.username}",
            hide_input=True,
            err=True,
            default="",
            show_default=False,
        )
        _state().add_secret(password)
        conn = dataclasses.replace(conn, password=password)
    return conn


def open_client(conn: Connection, **extra: Any) -> hpcsoa.HpcClient:
    """Build (not yet open) an ``HpcClient`` from resolved connection options."""
    if conn.url is None:  # resolve_connection() has run; keeps mypy honest
        raise RuntimeError("resolve_connection() must run first")
    verify: bool | str = True
    if conn.insecure:
        verify = False
    elif conn.ca_file:
        verify = conn.ca_file
    return hpcsoa.HpcClient(
        conn.url,
        username=conn.username,
        password=conn.password,
        cluster=conn.cluster,
        api_version=conn.api_version,
        verify=verify,
        pin_sha256=conn.pin_sha256,
        **extra,
    )


class _RedactFilter(logging.Filter):
    def __init__(self, state: CliState) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        if self._state.secrets:
            message = record.getMessage()
            for secret in self._state.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def configure_logging(state: CliState) -> Callable[[], None]:
    """Send ``hpcsoa`` logs to stderr per ``-v``; return a function that undoes it."""
    if state.verbose <= 0:
        return lambda: None
    logger = logging.getLogger("hpcsoa")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(_RedactFilter(state))
    previous = logger.level
    logger.setLevel(logging.INFO if state.verbose == 1 else logging.DEBUG)
    logger.addHandler(handler)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return undo


window_option = click.option(
    "--window",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="Requests outstanding at most.",
)
"""``--window`` of ``demo`` and ``sweep`` (``session.map``'s in-flight bound)."""
