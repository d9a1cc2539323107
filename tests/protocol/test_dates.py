"""`.NET`-culture dates and booleans (spec §2.6, G23/G24)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpcsoa.protocol._dates import (
    format_net_bool,
    format_net_datetime,
    parse_net_bool,
    parse_net_datetime,
)


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2024, 3, 5, 14, 7, 9), "3/5/2024 2:07:09 PM"),  # the spec's example
        (datetime(2011, 9, 27, 21, 53, 26), "9/27/2011 9:53:26 PM"),  # Get Task example
        (datetime(2024, 12, 31, 0, 0, 0), "12/31/2024 12:00:00 AM"),  # midnight is 12 AM
        (datetime(2024, 1, 1, 12, 0, 5), "1/1/2024 12:00:05 PM"),  # noon is 12 PM
        (datetime(2024, 1, 1, 11, 59, 59), "1/1/2024 11:59:59 AM"),
        (datetime(987, 6, 7, 1, 2, 3), "6/7/0987 1:02:03 AM"),
    ],
)
def test_format_and_parse_exact(dt: datetime, text: str) -> None:
    assert format_net_datetime(dt) == text
    assert parse_net_datetime(text) == dt


def test_format_drops_microseconds_and_ignores_tz() -> None:
    dt = datetime(2024, 3, 5, 14, 7, 9, 999999, tzinfo=timezone(timedelta(hours=5)))
    assert format_net_datetime(dt) == "3/5/2024 2:07:09 PM"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2010/12/7 23:18:20", datetime(2010, 12, 7, 23, 18, 20)),  # job XML example (§2.6)
        ("2010/12/7", datetime(2010, 12, 7)),
        ("3/5/2024 14:07:09", datetime(2024, 3, 5, 14, 7, 9)),
        ("3/5/2024 14:07", datetime(2024, 3, 5, 14, 7)),
        ("3/5/2024", datetime(2024, 3, 5)),
        ("3/5/2024 2:07 pm", datetime(2024, 3, 5, 14, 7)),
        ("  3/5/2024 2:07:09 am  ", datetime(2024, 3, 5, 2, 7, 9)),
        ("2015-10-16", datetime(2015, 10, 16)),
        ("2015-10-16T08:09:10", datetime(2015, 10, 16, 8, 9, 10)),
        ("2015-10-16T08:09:10Z", datetime(2015, 10, 16, 8, 9, 10, tzinfo=UTC)),
        (
            "2015-10-16T08:09:10.5+02:00",
            datetime(2015, 10, 16, 8, 9, 10, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_parse_accepted_forms(text: str, expected: datetime) -> None:
    assert parse_net_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "13/1/2024",  # month 13
        "2/30/2024",  # no such day
        "3/5/2024 13:07:09 PM",  # 13 o'clock on a 12-hour clock
        "3/5/2024 0:07:09 AM",
        "3/5/2024 24:00:00",
        "３/5/2024",  # fullwidth digit
        "3/5/24",
        "2024-3-5",
        "1710000000",
        "3/5/2024 2:07:09 XM",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="date/time"):
        parse_net_datetime(text)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_round_trip_any_second(dt: datetime) -> None:
    dt = dt.replace(microsecond=0)
    assert parse_net_datetime(format_net_datetime(dt)) == dt


@given(st.text(max_size=40))
def test_parse_raises_only_value_error(text: str) -> None:
    try:
        parse_net_datetime(text)
    except ValueError:
        pass


def test_bool_format() -> None:
    assert format_net_bool(True) == "True"
    assert format_net_bool(False) == "False"


@pytest.mark.parametrize(
    ("text", "value"),
    [("True", True), ("true", True), ("TRUE", True), (" False ", False), ("false", False)],
)
def test_bool_parse(text: str, value: bool) -> None:
    assert parse_net_bool(text) is value


@pytest.mark.parametrize("text", ["", "1", "0", "yes", "Tru", "truee", "None"])
def test_bool_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_net_bool(text)
