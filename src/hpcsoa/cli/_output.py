"""Rendering for the command line: rich tables on a terminal, JSON for scripts.

Consoles are built per call from the *current* ``sys.stdout`` / ``sys.stderr`` (tests swap
them). When a stream is not a terminal, rich is told so explicitly: no colours, no cursor
movement, no control sequences of any kind, whatever ``FORCE_COLOR`` says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import orjson
from rich.console import Console
from rich.table import Table

__all__ = [
    "dumps_line",
    "emit_json",
    "enum_text",
    "is_terminal",
    "make_console",
    "print_table",
    "to_jsonable",
]


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is an interactive terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def make_console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) that emits no escapes unless it is a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    tty = is_terminal(stream)
    if tty:
        return Console(file=stream, stderr=stderr, highlight=False)
    return Console(
        file=stream,
        stderr=stderr,
        force_terminal=False,
        force_interactive=False,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
        width=160,
        soft_wrap=False,
    )


def enum_text(value: enum.Enum) -> str:
    """An enum as users see it: its wire name (``Finished``) when it has one."""
    wire = getattr(value, "wire_name", None)
    return wire if isinstance(wire, str) else value.name


def _default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return enum_text(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_jsonable(value: Any) -> Any:
    """Turn models (dataclasses, enums, mappings, datetimes) into JSON-ready values.

    Fields whose name contains ``password`` are dropped on principle.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            if "password" in field.name.lower() or field.name.startswith("_"):
                continue
            out[field.name] = to_jsonable(getattr(value, field.name))
        return out
    if isinstance(value, enum.Enum):
        return enum_text(value)
    if isinstance(value, Mapping):
        return {
            str(k): to_jsonable(v) for k, v in value.items() if "password" not in str(k).lower()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return value


def dumps_line(value: Any) -> bytes:
    """One compact JSON line (with the trailing newline)."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_APPEND_NEWLINE)


def emit_json(value: Any, *, stream: TextIO | None = None) -> None:
    """Write ``value`` as one JSON line to stdout and flush (streams stay line-buffered)."""
    out = stream if stream is not None else sys.stdout
    out.write(dumps_line(value).decode())
    out.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return enum_text(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    show_header: bool = True,
    console: Console | None = None,
) -> None:
    """Print rows as a rich table (plain ASCII layout when stdout is not a terminal)."""
    con = console or make_console()
    tty = con.is_terminal
    table = Table(
        title=title,
        show_header=show_header,
        header_style="bold" if tty else "",
        title_style="bold" if tty else "",
        box=None if not tty else Table().box,
        pad_edge=False,
    )
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    con.print(table)
