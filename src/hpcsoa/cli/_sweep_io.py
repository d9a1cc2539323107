"""Sweep input readers, the JSONL result writer and the ``--resume`` scan.

Inputs:
  * JSONL: each non-blank line is ``{"id": ..., "input": ...}`` (``id`` optional) or a bare
    JSON string. A missing id defaults to the 1-based line number.
  * CSV: a header row, then records. ``--input-column`` picks the input (default: the only
    column, or the one named ``input``); ``--id-column`` picks the id (default: a column
    named ``id`` if present, else the 1-based record number).
Generic services get non-string inputs as their compact JSON text; typed (SOAP) sweeps take a
JSON object as the operation's parameters.

Output: one JSON line per input, ``{"id", "output", "fault", "latency_ms"}``, appended and
flushed in pages. ``--resume`` reads the ids already present; a torn last line (the process
died mid-write) is cut off, so that id is simply done again.

Reading runs in a daemon thread (:class:`ThreadedReader`) so a slow pipe on stdin never
blocks the event loop that is streaming responses.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Final, Generic, TypeVar

import orjson

from ._errors import CliError

__all__ = [
    "ResultWriter",
    "SweepId",
    "SweepItem",
    "ThreadedReader",
    "as_text",
    "iter_csv",
    "iter_jsonl",
    "load_done_ids",
]

SweepId = str | int
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class SweepItem:
    """One input of a sweep: its id and the input value (a JSON value; CSV gives ``str``)."""

    id: SweepId
    input: Any


def as_text(value: Any) -> str:
    """An input as the text sent to a generic service (non-strings as compact JSON)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _check_id(value: Any, where: str) -> SweepId:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CliError(
            f"{where}: the id must be a string or an integer, not {type(value).__name__}"
        )
    return value


def iter_jsonl(stream: IO[bytes], *, source: str) -> Iterator[SweepItem]:
    """Parse JSONL sweep inputs.

    Raises:
        CliError: a line that is neither a JSON string nor an object with ``"input"``.
    """
    for lineno, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise CliError(
                f"{where}: not valid JSON ({exc.msg})",
                hint='each line must be {"id": ..., "input": ...} or a JSON string',
            ) from None
        if isinstance(value, str):
            yield SweepItem(lineno, value)
        elif isinstance(value, dict) and "input" in value:
            item_id = _check_id(value["id"], where) if "id" in value else lineno
            yield SweepItem(item_id, value["input"])
        else:
            raise CliError(
                f'{where}: expected a JSON string or an object with an "input" member',
                hint='each line must be {"id": ..., "input": ...} or a JSON string',
            )


def iter_csv(
    stream: IO[bytes],
    *,
    source: str,
    input_column: str | None,
    id_column: str | None,
) -> Iterator[SweepItem]:
    """Parse CSV sweep inputs (first row is the header).

    Raises:
        CliError: unknown or ambiguous column, empty id, or a malformed record.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CliError(f"{source}: bad CSV header: {exc}") from None
        names = [h.strip() for h in header]
        input_idx = _pick_column(names, input_column, "input", source, required=True)
        id_idx = _pick_column(names, id_column, "id", source, required=id_column is not None)
        if id_column is None and id_idx == input_idx:
            id_idx = None
        record = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CliError(f"{source}:{reader.line_num}: bad CSV: {exc}") from None
            if not row or (len(row) == 1 and not row[0].strip() and len(names) > 1):
                continue
            record += 1
            where = f"{source}:{reader.line_num}"
            if input_idx is None or input_idx >= len(row):
                raise CliError(f"{where}: the record has no column {names[input_idx or 0]!r}")
            item_id: SweepId = record
            if id_idx is not None:
                if id_idx >= len(row) or not row[id_idx].strip():
                    raise CliError(f"{where}: empty id in column {names[id_idx]!r}")
                item_id = row[id_idx].strip()
            yield SweepItem(item_id, row[input_idx])
    finally:
        text.detach()


def _pick_column(
    names: list[str], wanted: str | None, default: str, source: str, *, required: bool
) -> int | None:
    if wanted is not None:
        if wanted in names:
            return names.index(wanted)
        if wanted.isdigit() and 1 <= int(wanted) <= len(names):  # 1-based column number
            return int(wanted) - 1
        raise CliError(
            f"{source}: no column {wanted!r}; the header has {', '.join(map(repr, names))}"
        )
    if default in names:
        return names.index(default)
    if default == "input" and len(names) == 1:
        return 0
    if required:
        raise CliError(
            f"{source}: which column holds the input? the header has {', '.join(map(repr, names))}",
            hint="pass --input-column NAME",
        )
    return None


def count_items(make: Callable[[], Iterator[SweepItem]], *, source: str) -> int:
    """Count (and so validate: syntax, duplicate ids) every input before any work starts.

    Raises:
        CliError: a malformed input or an id given twice.
    """
    seen: set[SweepId] = set()
    for item in make():
        if item.id in seen:
            raise CliError(
                f"{source}: the id {item.id!r} appears more than once",
                hint="every input needs its own id: results are matched to inputs by id",
            )
        seen.add(item.id)
    return len(seen)


def load_done_ids(path: str) -> set[SweepId]:
    """Ids already present in an output file; cut off a torn last line in place.

    Raises:
        CliError: a damaged line that is not the last one.
    """
    done: set[SweepId] = set()
    try:
        handle = open(path, "r+b")
    except FileNotFoundError:
        return done
    with handle:
        good_end = 0
        lineno = 0
        for raw in handle:
            lineno += 1
            torn = not raw.endswith(b"\n")
            if not torn and not raw.strip():
                good_end += len(raw)
                continue
            record: Any = None
            if not torn:
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    record = None
            if not isinstance(record, dict) or "id" not in record:
                if torn or not handle.read(1):
                    break  # the process died mid-line: drop the tail, redo that id
                raise CliError(
                    f"{path}:{lineno}: damaged result line in the middle of the file",
                    hint="repair or remove that line, then run with --resume again",
                )
            done.add(_check_id(record["id"], f"{path}:{lineno}"))
            good_end += len(raw)
        handle.seek(0, os.SEEK_END)
        if handle.tell() != good_end:
            handle.truncate(good_end)
    return done


class ResultWriter:
    """Appends JSON result lines; flushes every ``page`` lines and every ``interval`` seconds.

    Every line is written whole by one ``write`` of the buffered file, so after a crash
    only the last line can be torn, which :func:`load_done_ids` repairs.
    """

    def __init__(
        self,
        target: str,
        *,
        page: int = 500,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._owned = target != "-"
        if self._owned:
            self._file: IO[bytes] = open(target, "ab")
        else:
            import sys

            self._file = sys.stdout.buffer
        self._page = page
        self._interval = interval
        self._clock = clock
        self._pending = 0
        self._last_flush = clock()
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one result line; flush when a page is complete or the interval passed."""
        self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        self._pending += 1
        self.written += 1
        if self._pending >= self._page or self._clock() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Push buffered lines to the operating system."""
        if self._pending:
            self._file.flush()
            self._pending = 0
        self._last_flush = self._clock()

    def close(self) -> None:
        """Flush and close (stdout is flushed, never closed)."""
        try:
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()


_END: Final = object()


class ThreadedReader(Generic[T]):
    """Iterate a blocking iterable in a daemon thread, handing items to the loop in batches.

    The queue between the thread and the loop holds at most ``depth`` batches. A batch is
    handed over early whenever the consumer is waiting, so a slow producer (a pipe) gets
    each item through promptly while a fast one (a file) amortises the hand-over cost.
    Exceptions raised by the iterable are re-raised in the consumer. :meth:`close` (sync,
    callable at any time, idempotent) stops the thread at its next hand-over.

    Must be created inside a running event loop.
    """

    def __init__(
        self, make: Callable[[], Iterable[T]], *, batch_size: int = 512, depth: int = 8
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._handoff: queue.Queue[object] = queue.Queue(depth)
        self._ready = asyncio.Event()
        self._stop = threading.Event()
        self._make = make
        self._batch_size = batch_size
        self._current: Iterator[T] = iter(())
        self._finished = False
        self._thread = threading.Thread(target=self._work, name="hpcsoa-sweep-input", daemon=True)
        self._thread.start()

    def _put(self, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(value, timeout=0.1)
            except queue.Full:
                continue
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                return False
            return True
        return False

    def _work(self) -> None:
        try:
            buffer: list[T] = []
            for item in self._make():
                buffer.append(item)
                if len(buffer) >= self._batch_size or self._handoff.empty():
                    if not self._put(buffer):
                        return
                    buffer = []
                if self._stop.is_set():
                    return
            if buffer and not self._put(buffer):
                return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put(exc)

    def __aiter__(self) -> ThreadedReader[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            for item in self._current:
                return item
            if self._finished:
                raise StopAsyncIteration
            try:
                got = self._handoff.get_nowait()
            except queue.Empty:
                self._ready.clear()
                try:
                    got = self._handoff.get_nowait()
                except queue.Empty:
                    await self._ready.wait()
                    continue
            if got is _END:
                self._finished = True
                self.close()
                raise StopAsyncIteration
            if isinstance(got, BaseException):
                self._finished = True
                self.close()
                raise got
            assert isinstance(got, list)
            self._current = iter(got)

    def close(self) -> None:
        """Stop the reading thread (it exits at its next hand-over)."""
        self._stop.set()
