"""Codec throughput of the sans-IO protocol layer (issue 2): generic framing and SOAP.

Messages per second to encode and decode 100-byte payloads, in batches of 1, 100 and 1000
messages per body. Each decode figure is printed beside a plain baseline measured in the same
run on the same bytes:

* generic framing: a trivial ``bytes.split`` decoder (split on ``00``, decode each record
  once, split it on U+FFFF) that validates nothing and builds no objects;
* SOAP: ``xml.etree.ElementTree.XMLPullParser`` fed the same body, iterating its events.

Targets (issue 2): generic decode >= 0.7x its baseline, SOAP decode >= 1.0x its baseline.

Every figure is the median of ``--reps`` interleaved repetitions: each repetition times every
row once, ours and its baseline back to back (alternating which goes first), and the ratio is
the median of those per-pair ratios, so that load from other processes affects both sides
alike. A timing runs enough iterations to last about ``--min-time`` seconds, with the garbage
collector paused as ``timeit`` does. Decoded results are checked (count and values)
before anything is timed. Run::

    .venv/bin/python benchmarks/bench_codec.py [--reps 9] [--min-time 0.02] [--check]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from hpcsoa.protocol._generic import (
    GenericRequestDecoder,
    GenericResponseDecoder,
    encode_generic_request,
    encode_generic_response,
    encode_generic_trailer,
)
from hpcsoa.protocol._models import (
    GENERIC_REPLY_ACTION,
    EndOfResponses,
    GenericRequest,
    GenericResponse,
    SoapRequest,
    SoapResponse,
)
from hpcsoa.protocol._soap import (
    RESPONSE_ARRAY_CLOSE,
    RESPONSE_ARRAY_OPEN,
    SoapRequestArrayDecoder,
    SoapResponseDecoder,
    encode_end_of_responses,
    encode_request_array,
    encode_soap_request,
    encode_soap_response,
    new_message_id,
    wcf_body,
    wcf_reply_body,
)

BATCHES = (1, 100, 1000)
CHUNK = 16 * 1024
ACTION = "http://tempuri.org/IEchoSvc/Echo"
REPLY_ACTION = "http://tempuri.org/IEchoSvc/EchoResponse"
NS = "http://tempuri.org/"


def payload(i: int) -> str:
    """A 100-character ASCII payload, different for every message."""
    head = f"msg-{i:08d}:"
    return (head + "abcdefghijklmnopqrstuvwxyz0123456789" * 3)[:100]


# --- workloads ------------------------------------------------------------------------------------


def generic_encode(n: int) -> Callable[[], object]:
    items = [(payload(i), str(i)) for i in range(n)]

    def run() -> bytes:  # the client's hot path: one record per request, then one body
        return b"".join([encode_generic_request(text, user) for text, user in items])

    body = run()
    assert GenericRequestDecoder().feed(body) == [GenericRequest(t, u) for t, u in items]
    return run


def generic_response_body(n: int) -> bytes:
    records = [encode_generic_response(GENERIC_REPLY_ACTION, payload(i), str(i)) for i in range(n)]
    return b"".join(records) + encode_generic_trailer(EndOfResponses(n))


def generic_decode(body: bytes, n: int, chunk: int | None) -> Callable[[], object]:
    chunks = [body] if chunk is None else [body[i : i + chunk] for i in range(0, len(body), chunk)]

    def run() -> list[object]:
        decoder = GenericResponseDecoder()
        out: list[object] = []
        for part in chunks:
            out += decoder.feed(part)
        decoder.close()
        return out

    out = run()
    assert len(out) == n + 1
    assert out[-1] == EndOfResponses(n)
    assert out[:n] == [GenericResponse(GENERIC_REPLY_ACTION, payload(i), str(i)) for i in range(n)]
    return run


def generic_baseline(body: bytes, n: int) -> Callable[[], object]:
    def run() -> list[list[str]]:
        return [record.decode().split("\uffff") for record in body.split(b"\x00")[:-1]]

    out = run()
    assert len(out) == n + 1
    assert out[n - 1] == [GENERIC_REPLY_ACTION, payload(n - 1), str(n - 1)]
    return run


def generic_request_decode(n: int) -> Callable[[], object]:
    body = b"".join(encode_generic_request(payload(i), str(i)) for i in range(n))

    def run() -> list[GenericRequest]:
        decoder = GenericRequestDecoder()
        out = decoder.feed(body)
        decoder.close()
        return out

    assert run() == [GenericRequest(payload(i), str(i)) for i in range(n)]
    return run


def soap_encode(n: int) -> Callable[[], object]:
    items = [(payload(i), str(i)) for i in range(n)]

    def run() -> bytes:  # the client's whole per-request work: body, message id, envelope
        return encode_request_array(
            [
                encode_soap_request(
                    SoapRequest(
                        ACTION, wcf_body("Echo", (("input", text),)), new_message_id(), user
                    )
                )
                for text, user in items
            ]
        )

    decoded = SoapRequestArrayDecoder().feed(run())
    assert [(r.action, r.user_data) for r in decoded] == [(ACTION, u) for _, u in items]
    assert decoded[-1].body == wcf_body("Echo", {"input": payload(n - 1)})
    return run


def pretty(body: bytes) -> bytes:
    """The same body laid out like the spec's examples (indented, one element per line)."""
    text = body.replace(b"><s:", b">\n    <s:").replace(b"><a:", b">\n      <a:")
    return text.replace(b"><HPC", b">\n      <HPC").replace(b"></s:", b">\n  </s:")


def soap_response_body(n: int) -> bytes:
    envelopes = [
        encode_soap_response(
            action=REPLY_ACTION,
            relates_to=new_message_id(),
            request_action=ACTION,
            user_data=str(i),
            callback_id="",
            body=wcf_reply_body("Echo", payload(i), NS),
        )
        for i in range(n)
    ]
    end = encode_end_of_responses(EndOfResponses(n))
    return RESPONSE_ARRAY_OPEN + b"".join(envelopes) + end + RESPONSE_ARRAY_CLOSE


def soap_decode(
    body: bytes, n: int, chunk: int | None, *, fast_path: bool = True
) -> Callable[[], object]:
    chunks = [body] if chunk is None else [body[i : i + chunk] for i in range(0, len(body), chunk)]

    def run() -> list[object]:
        decoder = SoapResponseDecoder(fast_path=fast_path)
        out: list[object] = []
        for part in chunks:
            out += decoder.feed(part)
        decoder.close()
        return out

    out = run()
    assert len(out) == n + 1
    assert out[-1] == EndOfResponses(n)
    replies = out[:n]
    assert all(type(r) is SoapResponse for r in replies)
    assert [(r.result, r.user_data, r.request_action) for r in replies] == [  # type: ignore[union-attr]
        (payload(i), str(i), ACTION) for i in range(n)
    ]
    return run


def pull_baseline(body: bytes, n: int, chunk: int | None, elements: int) -> Callable[[], object]:
    chunks = [body] if chunk is None else [body[i : i + chunk] for i in range(0, len(body), chunk)]

    def run() -> int:
        parser = ET.XMLPullParser()
        count = 0
        for part in chunks:
            parser.feed(part)
            for _event in parser.read_events():
                count += 1
        parser.close()
        for _event in parser.read_events():
            count += 1
        return count

    assert run() == elements
    return run


def soap_request_decode(n: int, fast: bool = True) -> tuple[bytes, Callable[[], object]]:
    requests = [
        SoapRequest(ACTION, wcf_body("Echo", {"input": payload(i)}), new_message_id(), str(i))
        for i in range(n)
    ]
    body = encode_request_array(encode_soap_request(r) for r in requests)

    def run() -> list[SoapRequest]:
        decoder = SoapRequestArrayDecoder(fast_path=fast)
        out = decoder.feed(body)
        decoder.close()
        return out

    assert run() == requests
    return body, run


# --- timing ---------------------------------------------------------------------------------


def calibrate(func: Callable[[], object], min_time: float) -> int:
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            func()
        if time.perf_counter() - start >= min_time or loops >= 1 << 20:
            return loops
        loops *= 2


def timed(func: Callable[[], object], loops: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            func()
        return (time.perf_counter() - start) / loops
    finally:
        gc.enable()


@dataclass
class Row:
    codec: str
    operation: str
    batch: int
    ours: Callable[[], object]
    baseline: Callable[[], object] | None = None
    baseline_name: str = ""
    target: float | None = None
    ours_s: list[float] = field(default_factory=list)
    base_s: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)


def measure(rows: list[Row], reps: int, min_time: float) -> None:
    """Time every row ``reps`` times, interleaved.

    Each repetition visits every row once and times ours and the baseline back to back (in
    alternating order), so both see the same machine load; the ratio is taken per pair.
    """
    loops = {
        id(row): (
            calibrate(row.ours, min_time),
            calibrate(row.baseline, min_time) if row.baseline is not None else 0,
        )
        for row in rows
    }
    for rep in range(reps):
        for row in rows:
            ours_loops, base_loops = loops[id(row)]
            if row.baseline is None:
                row.ours_s.append(timed(row.ours, ours_loops))
                continue
            if rep % 2:
                base = timed(row.baseline, base_loops)
                ours = timed(row.ours, ours_loops)
            else:
                ours = timed(row.ours, ours_loops)
                base = timed(row.baseline, base_loops)
            row.ours_s.append(ours)
            row.base_s.append(base)
            row.ratios.append(base / ours)  # per-message time ratio = throughput ratio


def report(rows: list[Row]) -> bool:
    header = (
        f"{'codec':<8} {'operation':<29} {'batch':>5} {'msgs/s':>11}  "
        f"{'baseline':<20} {'base msgs/s':>11} {'ratio':>6}  target"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for row in rows:
        rate = row.batch / statistics.median(row.ours_s)
        line = f"{row.codec:<8} {row.operation:<29} {row.batch:>5} {rate:>11,.0f}"
        if row.base_s:
            base = row.batch / statistics.median(row.base_s)
            ratio = statistics.median(row.ratios)
            verdict = ""
            if row.target is not None:
                passed = ratio >= row.target
                ok &= passed
                verdict = f">= {row.target:.1f}x {'ok' if passed else 'MISSED'}"
            line += f"  {row.baseline_name:<20} {base:>11,.0f} {ratio:>5.2f}x  {verdict}"
        print(line)
    return ok


def build_rows() -> list[Row]:
    rows: list[Row] = []
    for n in BATCHES:
        rows.append(Row("generic", "encode requests", n, generic_encode(n)))
    for n in BATCHES:
        body = generic_response_body(n)
        rows.append(
            Row(
                "generic",
                "decode responses",
                n,
                generic_decode(body, n, None),
                generic_baseline(body, n),
                "bytes.split loop",
                0.7,
            )
        )
    body = generic_response_body(1000)
    rows.append(
        Row(
            "generic",
            f"decode responses {CHUNK // 1024}K chunks",
            1000,
            generic_decode(body, 1000, CHUNK),
            generic_baseline(body, 1000),
            "bytes.split (whole)",
        )
    )
    for n in BATCHES:
        rows.append(Row("generic", "decode requests (emulator)", n, generic_request_decode(n)))
    for n in BATCHES:
        rows.append(Row("soap", "encode requests", n, soap_encode(n)))
    # Elements per response envelope: Envelope, Header, 6 headers, Body, wrapper, result = 11;
    # the EndOfResponses envelope: Envelope, Header, 3 headers, Body, wrapper, 2 members = 9.
    for n in BATCHES:
        body = soap_response_body(n)
        rows.append(
            Row(
                "soap",
                "decode responses",
                n,
                soap_decode(body, n, None),
                pull_baseline(body, n, None, 11 * n + 9 + 1),
                "ET.XMLPullParser",
                1.0,
            )
        )
    body = soap_response_body(1000)
    rows.append(
        Row(
            "soap",
            f"decode responses {CHUNK // 1024}K chunks",
            1000,
            soap_decode(body, 1000, CHUNK),
            pull_baseline(body, 1000, CHUNK, 11 * 1000 + 9 + 1),
            "ET.XMLPullParser",
            1.0,
        )
    )
    for n in BATCHES:
        body, run = soap_request_decode(n)
        # Envelope, Header, Action, MessageID, UserData, Body, Echo, input = 8 per request.
        rows.append(
            Row(
                "soap",
                "decode requests (emulator)",
                n,
                run,
                pull_baseline(body, n, None, 8 * n + 1),
                "ET.XMLPullParser",
            )
        )
    body = pretty(soap_response_body(100))
    rows.append(
        Row(
            "soap",
            "decode responses, indented",
            100,
            soap_decode(body, 100, None),
            pull_baseline(body, 100, None, 11 * 100 + 9 + 1),
            "ET.XMLPullParser",
        )
    )
    body = soap_response_body(100)
    rows.append(
        Row(
            "soap",
            "decode responses, full parser",
            100,
            soap_decode(body, 100, None, fast_path=False),
            pull_baseline(body, 100, None, 11 * 100 + 9 + 1),
            "ET.XMLPullParser",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="interleaved repetitions (>= 3)")
    parser.add_argument("--min-time", type=float, default=0.02, help="seconds per timing")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps must be at least 3")
    started = time.perf_counter()
    rows = build_rows()  # also checks every decoder's output
    measure(rows, args.reps, args.min_time)
    print(
        f"Python {sys.version.split()[0]}; 100-byte payloads; medians of {args.reps} interleaved "
        "repetitions (ratio = median of per-pair ratios); GC paused while timing\n"
    )
    ok = report(rows)
    print(
        f"\n{'all targets met' if ok else 'TARGET MISSED'} in {time.perf_counter() - started:.1f} s"
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
