""".NET-culture dates and booleans as the HPC Pack REST service renders them (spec §2.6, G24).

Property values are text rendered in the *server's* culture, so a client must not assume
ISO-8601. We emit the invariant-culture style ``M/d/yyyy h:mm:ss tt`` (``3/5/2024 2:07:09 PM``)
and parse that, the ``yyyy/M/d H:mm:ss`` form seen in job XML, ``M/d/yyyy[ H:mm:ss]`` and
ISO-8601. Booleans are ``True``/``False`` on output and any case on input.

Pure functions: no clock is read here. Timezone information is never invented; a value
without an offset parses to a naive ``datetime``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

__all__ = [
    "format_net_bool",
    "format_net_datetime",
    "parse_net_bool",
    "parse_net_datetime",
]

# `re.ASCII` so that `\d`-like classes never accept non-ASCII digits (e.g. fullwidth "２").
_US_12H: Final = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))? ?([AaPp][Mm])", re.ASCII
)
_US_24H: Final = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", re.ASCII
)
_YMD_SLASH: Final = re.compile(
    r"(\d{4})/(\d{1,2})/(\d{1,2})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?", re.ASCII
)
_ISO: Final = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.,]+)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)


def format_net_datetime(dt: datetime) -> str:
    """Render ``dt`` as ``M/d/yyyy h:mm:ss tt`` (e.g. ``3/5/2024 2:07:09 PM``).

    The wall-clock fields are used as given; any ``tzinfo`` is not converted or shown, the
    same as a .NET ``DateTime`` rendered with the invariant culture. Fractions of a second are
    dropped.
    """
    hour12 = dt.hour % 12 or 12
    tt = "AM" if dt.hour < 12 else "PM"
    return f"{dt.month}/{dt.day}/{dt.year:04d} {hour12}:{dt.minute:02d}:{dt.second:02d} {tt}"


def _build(y: str, mo: str, d: str, h: str | None, mi: str | None, s: str | None) -> datetime:
    return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))


def parse_net_datetime(value: str) -> datetime:
    """Parse a date/time value from a property bag or a ``$filter`` clause.

    Accepted forms: ``M/d/yyyy h:mm[:ss] tt`` (12-hour, ``AM``/``PM`` in any case),
    ``M/d/yyyy[ H:mm[:ss]]`` (24-hour), ``yyyy/M/d[ H:mm[:ss]]`` and ISO-8601
    (``yyyy-MM-dd[THH:mm:ss[.f]][Z|±hh:mm]``). Surrounding whitespace is ignored.

    Raises:
        ValueError: the text is in none of these forms or names an impossible date/time.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a date/time string: {value!r}")
    text = value.strip()
    try:
        m = _US_12H.fullmatch(text)
        if m is not None:
            mo, d, y, h, mi, s, tt = m.groups()
            hour = int(h)
            if not 1 <= hour <= 12:
                raise ValueError("12-hour clock hour out of range")
            hour = hour % 12 + (12 if tt.upper() == "PM" else 0)
            return datetime(int(y), int(mo), int(d), hour, int(mi), int(s or 0))
        m = _US_24H.fullmatch(text)
        if m is not None:
            mo, d, y, h, mi, s = m.groups()
            return _build(y, mo, d, h, mi, s)
        m = _YMD_SLASH.fullmatch(text)
        if m is not None:
            return _build(*m.groups())
        if _ISO.fullmatch(text):
            return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid date/time {value!r}: {exc}") from None
    raise ValueError(
        f"invalid date/time {value!r}: expected M/d/yyyy h:mm:ss tt, M/d/yyyy H:mm:ss, "
        "yyyy/M/d H:mm:ss or ISO-8601"
    )


def format_net_bool(value: bool) -> str:
    """``True``/``False``, as .NET renders ``bool`` (spec §2.6)."""
    return "True" if value else "False"


def parse_net_bool(value: str) -> bool:
    """``true``/``false`` in any case (surrounding whitespace ignored) → ``bool``.

    Raises:
        ValueError: anything else (including ``1``/``0``, which .NET ``bool.Parse`` rejects).
    """
    if isinstance(value, str):
        v = value.strip().lower()
        if v == "true":
            return True
        if v == "false":
            return False
    raise ValueError(f"not a boolean: {value!r} (expected True or False)")
