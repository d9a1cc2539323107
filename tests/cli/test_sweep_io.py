"""Sweep input readers, the result writer and the --resume scan (pure, no server)."""

from __future__ import annotations

import asyncio
import io
import threading

import orjson
import pytest

from hpcsoa.cli._errors import CliError
from hpcsoa.cli._sweep_io import (
    ResultWriter,
    SweepItem,
    ThreadedReader,
    as_text,
    count_items,
    iter_csv,
    iter_jsonl,
    load_done_ids,
)


def jsonl(text: str) -> list[SweepItem]:
    return list(iter_jsonl(io.BytesIO(text.encode()), source="in.jsonl"))


def csv_items(text: str, **kw) -> list[SweepItem]:
    kw.setdefault("input_column", None)
    kw.setdefault("id_column", None)
    return list(iter_csv(io.BytesIO(text.encode()), source="in.csv", **kw))


def test_jsonl_objects_strings_and_line_number_ids():
    items = jsonl(
        '{"id": "a", "input": "x"}\n\n"bare"\n{"input": {"k": 1}}\n{"id": 7, "input": "y"}\n'
    )
    assert items == [
        SweepItem("a", "x"),
        SweepItem(3, "bare"),
        SweepItem(4, {"k": 1}),
        SweepItem(7, "y"),
    ]


def test_as_text_sends_non_strings_as_compact_json():
    assert as_text("x") == "x"
    assert as_text({"k": [1, 2]}) == '{"k":[1,2]}'
    assert as_text(3) == "3"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("42", "expected a JSON string"),
        ('{"id": 1}', "expected a JSON string"),
        ('{"id": [1], "input": "x"}', "id must be"),
        ('{"id": true, "input": "x"}', "id must be"),
    ],
)
def test_jsonl_bad_lines_name_the_line(line, needle):
    with pytest.raises(CliError, match=needle) as info:
        jsonl('"ok"\n' + line + "\n")
    assert "in.jsonl:2" in info.value.message


def test_csv_picks_input_and_id_columns():
    text = 'id,input,other\nr1,"hello, world",z\nr2,"multi\nline",z\n'
    assert csv_items(text) == [SweepItem("r1", "hello, world"), SweepItem("r2", "multi\nline")]
    assert csv_items(text, input_column="other", id_column="input") == [
        SweepItem("hello, world", "z"),
        SweepItem("multi\nline", "z"),
    ]


def test_csv_single_column_uses_row_numbers_and_strips_bom():
    assert csv_items("\ufeffvalue\na\nb\n") == [SweepItem(1, "a"), SweepItem(2, "b")]


def test_csv_ambiguous_or_unknown_columns_are_usage_errors():
    with pytest.raises(CliError, match="which column"):
        csv_items("a,b\n1,2\n")
    with pytest.raises(CliError, match="no column 'nope'"):
        csv_items("a,b\n1,2\n", input_column="nope")
    with pytest.raises(CliError, match="empty id"):
        csv_items("id,input\n,x\n")


def test_count_items_rejects_duplicate_ids():
    def make():
        return iter_jsonl(
            io.BytesIO(b'{"id": 1, "input": "a"}\n{"id": 1, "input": "b"}\n'), source="f"
        )

    with pytest.raises(CliError, match="more than once"):
        count_items(make, source="f")


def test_load_done_ids_cuts_a_torn_last_line(tmp_path):
    out = tmp_path / "out.jsonl"
    good = b'{"id":1,"output":"a"}\n{"id":"two","output":"b"}\n'
    out.write_bytes(good + b'{"id":3,"outp')
    assert load_done_ids(str(out)) == {1, "two"}
    assert out.read_bytes() == good
    # A complete-looking line without its newline is torn too: that id is redone.
    out.write_bytes(good + b'{"id":3,"output":"c"}')
    assert load_done_ids(str(out)) == {1, "two"}
    assert out.read_bytes() == good


def test_load_done_ids_refuses_damage_in_the_middle(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id":1}\ngarbage\n{"id":2}\n')
    with pytest.raises(CliError, match=":2: damaged"):
        load_done_ids(str(out))
    assert load_done_ids(str(tmp_path / "missing.jsonl")) == set()


def test_result_writer_flushes_per_page(tmp_path):
    now = [0.0]
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(str(out), page=3, interval=10.0, clock=lambda: now[0])
    writer.write({"id": 1})
    writer.write({"id": 2})
    assert out.read_bytes() == b""  # page not complete, interval not reached
    writer.write({"id": 3})
    assert out.read_bytes().count(b"\n") == 3
    writer.write({"id": 4})
    now[0] = 11.0
    writer.write({"id": 5})
    assert [orjson.loads(x)["id"] for x in out.read_bytes().splitlines()] == [1, 2, 3, 4, 5]
    writer.close()


async def test_threaded_reader_delivers_everything_in_order():
    reader = ThreadedReader(lambda: range(10_000), batch_size=64, depth=2)
    got = [x async for x in reader]
    assert got == list(range(10_000))


async def test_threaded_reader_reraises_and_stops():
    def boom():
        yield 1
        raise CliError("bad line 2")

    reader = ThreadedReader(boom)
    with pytest.raises(CliError, match="bad line 2"):
        async for _ in reader:
            pass

    gate = threading.Event()

    def endless():
        n = 0
        while not gate.is_set() and n < 10_000_000:
            n += 1
            yield n

    reader2 = ThreadedReader(endless, batch_size=8, depth=2)
    first = await reader2.__anext__()
    assert first == 1
    reader2.close()
    reader2._thread.join(5)
    gate.set()
    assert not reader2._thread.is_alive()
    await asyncio.sleep(0)
