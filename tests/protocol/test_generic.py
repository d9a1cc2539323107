"""Generic-service framing (spec §3.6, §4.10): golden bytes, round trips, chunking, bad input.

Golden fixtures (``tests/fixtures/spec``, byte-exact copies of the spec's examples):

* ``4.10-send-requests.request.bin``: the §4.10 Send Requests body, which is also the §3.6
  example request body (``alpha``/``u1``, ``beta``/``u2``).
* ``4.10-get-responses.response.bin``: the §4.10 Get Responses body (machine ``hn01``).
* ``3.6-get-responses.response.bin``: the §3.6 "matching response body" (machine ``CN01``).

Decoders are checked against the hand-written expected values, and the emulator-side
encoders must reproduce the golden bytes exactly, so a symmetric bug cannot hide.
"""

from __future__ import annotations

import pytest
from codec_support import golden, run, split_at
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import (
    DecodeError,
    EncodeError,
    FieldTooLarge,
    IncompletePage,
)
from hpcsoa.protocol._generic import (
    SEPARATOR,
    TERMINATOR,
    GenericRequestDecoder,
    GenericResponseDecoder,
    encode_generic_request,
    encode_generic_requests,
    encode_generic_response,
    encode_generic_trailer,
    verify_end_count,
)
from hpcsoa.protocol._models import (
    END_OF_GET_RESPONSE_ACTION,
    GENERIC_REPLY_ACTION,
    EndOfResponses,
    EndOfResponsesReason,
    GenericRequest,
    GenericResponse,
)

REPLY = GENERIC_REPLY_ACTION
RETRY_FAULT = "http://hpc.microsoft.com/session/RetryOperationError"

# Text that the framing can carry: anything but U+FFFF, NUL and lone surrogates.
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\uffff\x00"),
    max_size=40,
)


# --- golden samples ---------------------------------------------------------------------------


def test_spec_request_body_decodes_and_reencodes_byte_exact():
    body = golden("4.10-send-requests.request.bin")
    assert body == b"alpha\xef\xbf\xbfu1\x00beta\xef\xbf\xbfu2\x00"  # the §3.6 example
    decoder = GenericRequestDecoder()
    items = decoder.feed(body)
    decoder.close()
    assert items == [GenericRequest("alpha", "u1"), GenericRequest("beta", "u2")]
    assert encode_generic_requests(items) == body
    assert encode_generic_request("alpha", "u1") + encode_generic_request("beta", "u2") == body


@pytest.mark.parametrize(
    ("name", "machine"),
    [("4.10-get-responses.response.bin", "hn01"), ("3.6-get-responses.response.bin", "CN01")],
)
def test_spec_response_body_decodes_and_reencodes_byte_exact(name, machine):
    body = golden(name)
    decoder = GenericResponseDecoder()
    items = decoder.feed(body)
    decoder.close()
    expected = [
        GenericResponse(REPLY, f"{machine} (GenericService): alpha", "u1"),
        GenericResponse(REPLY, f"{machine} (GenericService): beta", "u2"),
        EndOfResponses(2, EndOfResponsesReason.SUCCESS),
    ]
    assert items == expected
    assert decoder.ended
    assert decoder.messages == 2
    encoded = b"".join(
        encode_generic_response(r.action, r.output, r.user_data) for r in expected[:2]
    ) + encode_generic_trailer(EndOfResponses(2))
    assert encoded == body


def test_constants_are_the_spec_bytes():
    assert SEPARATOR == "\uffff".encode() == b"\xef\xbf\xbf"
    assert TERMINATOR == b"\x00"
    assert encode_generic_request("x") == b"x\xef\xbf\xbf\x00"  # empty user data: input EF BF BF 00


@pytest.mark.parametrize(
    ("reason", "wire"),
    [
        (EndOfResponsesReason.SUCCESS, b"Success"),
        (EndOfResponsesReason.CLIENT_PURGED, b"ClientPurged"),
        (EndOfResponsesReason.CLIENT_TIMEOUT, b"ClientTimeout"),
    ],
)
def test_trailer_reasons(reason, wire):
    trailer = encode_generic_trailer(EndOfResponses(7, reason))
    assert (
        trailer
        == END_OF_GET_RESPONSE_ACTION.encode() + b"\xef\xbf\xbf7\xef\xbf\xbf" + wire + b"\x00"
    )
    decoder = GenericResponseDecoder()
    assert decoder.feed(trailer) == [EndOfResponses(7, reason)]


def test_fault_record_is_a_response_with_the_fault_action():
    body = encode_generic_response(RETRY_FAULT, "retry limit exceeded", "u9")
    [item] = GenericResponseDecoder().feed(body)
    assert item == GenericResponse(RETRY_FAULT, "retry limit exceeded", "u9")
    assert item.is_fault


# --- encoder errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\uffffb", "a\x00b", "\ud800"])
@pytest.mark.parametrize("field", ["input", "user_data"])
def test_request_field_with_forbidden_character_names_the_field(bad, field):
    kwargs = {"input": "ok", "user_data": "ok", field: bad}
    with pytest.raises(EncodeError, match=field):
        encode_generic_request(**kwargs)
    with pytest.raises(EncodeError, match=rf"item 1: {field}"):
        encode_generic_requests([GenericRequest("fine"), GenericRequest(**kwargs)])
    assert isinstance(EncodeError("x"), ValueError)


@pytest.mark.parametrize("field", ["action", "output", "user_data"])
def test_response_field_with_forbidden_character_names_the_field(field):
    kwargs = {"action": REPLY, "output": "o", "user_data": "u", field: "x\x00"}
    with pytest.raises(EncodeError, match=field):
        encode_generic_response(**kwargs)


def test_negative_trailer_count_is_refused():
    with pytest.raises(EncodeError):
        encode_generic_trailer(EndOfResponses(-1))


@given(st.text(max_size=20), st.sampled_from(["\uffff", "\x00", "\udc80"]), st.text(max_size=20))
@settings(max_examples=60, deadline=None)
def test_any_forbidden_code_point_raises(prefix, bad, suffix):
    value = prefix + bad + suffix
    with pytest.raises(EncodeError, match="input"):
        encode_generic_request(value, "u")
    with pytest.raises(EncodeError, match="user_data"):
        encode_generic_request("i", value)


# --- round trips and chunking -------------------------------------------------------------------


@given(st.lists(st.tuples(field_text, field_text), max_size=8))
@settings(max_examples=150, deadline=None)
def test_request_round_trip(pairs):
    items = [GenericRequest(i, u) for i, u in pairs]
    body = encode_generic_requests(items)
    assert body == b"".join(encode_generic_request(i, u) for i, u in pairs)
    assert run(GenericRequestDecoder(), [body]) == (items, None)


responses = st.lists(
    st.builds(GenericResponse, st.sampled_from([REPLY, RETRY_FAULT]), field_text, field_text),
    max_size=8,
)
trailers = st.one_of(
    st.none(),
    st.builds(EndOfResponses, st.integers(0, 10**9), st.sampled_from(EndOfResponsesReason)),
)


def response_body(items: list[GenericResponse], eor: EndOfResponses | None) -> bytes:
    body = b"".join(encode_generic_response(r.action, r.output, r.user_data) for r in items)
    return body + (encode_generic_trailer(eor) if eor is not None else b"")


@given(responses, trailers, st.lists(st.integers(0, 10_000), max_size=12))
@settings(max_examples=200, deadline=None)
def test_response_round_trip_is_identical_for_any_split(items, eor, points):
    body = response_body(items, eor)
    expected = [*items, eor] if eor is not None else list(items)
    assert run(GenericResponseDecoder(), [body]) == (expected, None)
    assert run(GenericResponseDecoder(), split_at(body, points)) == (expected, None)


@given(st.lists(st.tuples(field_text, field_text), max_size=5), st.lists(st.integers(0, 999)))
@settings(max_examples=100, deadline=None)
def test_request_decoding_is_identical_for_any_split(pairs, points):
    body = encode_generic_requests(GenericRequest(i, u) for i, u in pairs)
    whole = run(GenericRequestDecoder(), [body])
    assert run(GenericRequestDecoder(), split_at(body, points)) == whole


def test_one_byte_at_a_time():
    body = golden("4.10-get-responses.response.bin")
    one = [body[i : i + 1] for i in range(len(body))]
    assert run(GenericResponseDecoder(), one) == run(GenericResponseDecoder(), [body])
    request = golden("4.10-send-requests.request.bin")
    one = [request[i : i + 1] for i in range(len(request))]
    assert run(GenericRequestDecoder(), one) == run(GenericRequestDecoder(), [request])


def test_multibyte_characters_split_across_chunks():
    body = encode_generic_response(REPLY, "naïve ☃ 𝄞", "ü")
    for cut in range(len(body) + 1):
        assert run(GenericResponseDecoder(), [body[:cut], body[cut:]]) == (
            [GenericResponse(REPLY, "naïve ☃ 𝄞", "ü")],
            None,
        )


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_raise_only_protocol_errors(data, points):
    for decoder in (GenericRequestDecoder(max_record_bytes=64), GenericResponseDecoder(64)):
        whole = run(decoder, [data])  # run() lets anything but ProtocolError escape
        split = run(type(decoder)(64), split_at(data, points))
        if whole[1] is None:  # valid input: the same records however it is cut
            assert split == whole
        else:
            assert split[1] is not None


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_after_valid_records(garbage):
    body = response_body([GenericResponse(REPLY, "a", "1")], None) + garbage
    items, error = run(GenericResponseDecoder(), [body])
    assert items[:1] == [GenericResponse(REPLY, "a", "1")] or error is not None


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        b"only-one-field\x00",
        b"a\xef\xbf\xbfb\xef\xbf\xbfc\x00",  # three fields in a request
        b"\x00",  # empty record
        b"bad \xff utf8\xef\xbf\xbfu\x00",
        b"truncated \xe2\x98\xef\xbf\xbfu\x00",  # a multibyte character cut by the separator
    ],
)
def test_malformed_request_records(record):
    with pytest.raises(DecodeError):
        GenericRequestDecoder().feed(record)


@pytest.mark.parametrize(
    "record",
    [
        REPLY.encode() + b"\xef\xbf\xbfoutput-without-user-data\x00",
        REPLY.encode() + b"\xef\xbf\xbfa\xef\xbf\xbfb\xef\xbf\xbfc\x00",
        REPLY.encode() + b"\xef\xbf\xbf\xc3\x28\xef\xbf\xbfu\x00",
    ],
)
def test_malformed_response_records(record):
    with pytest.raises(DecodeError):
        GenericResponseDecoder().feed(record)


@pytest.mark.parametrize(
    ("count", "reason"),
    [
        (b"", b"Success"),
        (b"-1", b"Success"),
        (b"2a", b"Success"),
        (b" 2", b"Success"),
        ("٣".encode(), b"Success"),  # a non-ASCII digit
        (b"9" * 40, b"Success"),
        (b"2", b"success"),
        (b"2", b"Done"),
        (b"2", b""),
    ],
)
def test_malformed_trailer(count, reason):
    trailer = END_OF_GET_RESPONSE_ACTION.encode() + SEPARATOR + count + SEPARATOR + reason + b"\x00"
    with pytest.raises(DecodeError, match="EndOfGetResponse"):
        GenericResponseDecoder().feed(trailer)


@pytest.mark.parametrize(
    "after",
    [b"x", b"\x00", response_body([GenericResponse(REPLY, "late", "u")], None)],
)
def test_data_after_trailer_is_an_error_in_the_same_or_a_later_chunk(after):
    body = response_body([], EndOfResponses(0))
    decoder = GenericResponseDecoder()
    # The trailer itself is delivered; the error surfaces on the next call.
    assert decoder.feed(body + after) == [EndOfResponses(0)]
    with pytest.raises(DecodeError, match="after the EndOfGetResponse trailer"):
        decoder.close()
    decoder = GenericResponseDecoder()
    assert decoder.feed(body) == [EndOfResponses(0)]
    assert decoder.ended
    assert decoder.feed(b"") == []  # an empty chunk is not data
    with pytest.raises(DecodeError, match="after the EndOfGetResponse trailer"):
        decoder.feed(after)


def test_truncated_record_is_an_incomplete_page_at_close():
    decoder = GenericResponseDecoder()
    body = response_body([GenericResponse(REPLY, "a", "1")], EndOfResponses(1))
    assert decoder.feed(body[:-1]) == [GenericResponse(REPLY, "a", "1")]
    assert not decoder.ended
    with pytest.raises(IncompletePage):
        decoder.close()
    with pytest.raises(IncompletePage):  # the error sticks
        decoder.close()


def test_page_without_trailer_is_legal():
    decoder = GenericResponseDecoder()
    decoder.feed(response_body([GenericResponse(REPLY, "a", "1")], None))
    decoder.close()
    assert not decoder.ended
    assert decoder.messages == 1


def test_feed_after_close_is_refused():
    decoder = GenericRequestDecoder()
    decoder.close()
    with pytest.raises(DecodeError, match="after close"):
        decoder.feed(b"a\xef\xbf\xbf\x00")


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_record_over_the_cap(chunk):
    cap = 32
    exact = encode_generic_request("x" * (cap - 4), "u")  # 28 + 3 + 1 bytes: exactly the cap
    assert len(exact) - 1 == cap
    over = encode_generic_request("x" * (cap - 3), "u")
    decoder = GenericRequestDecoder(max_record_bytes=cap)
    assert run(decoder, [exact]) == ([GenericRequest("x" * (cap - 4), "u")], None)
    chunks = [over[i : i + chunk] for i in range(0, len(over), chunk)]
    assert run(GenericRequestDecoder(max_record_bytes=cap), chunks)[1] is FieldTooLarge
    # An endless record without a terminator is stopped at the cap, not buffered forever.
    endless = [b"y" * chunk] * 100
    assert run(GenericResponseDecoder(max_record_bytes=cap), endless)[1] is FieldTooLarge


def test_good_records_before_a_bad_one_are_delivered_first():
    good = encode_generic_request("a", "1") + encode_generic_request("b", "2")
    decoder = GenericRequestDecoder()
    assert decoder.feed(good + b"broken\x00") == [
        GenericRequest("a", "1"),
        GenericRequest("b", "2"),
    ]
    with pytest.raises(DecodeError, match="record 2"):
        decoder.close()
    with pytest.raises(DecodeError):
        decoder.feed(encode_generic_request("c", "3"))


def test_invalid_max_record_bytes():
    with pytest.raises(ValueError, match="positive"):
        GenericResponseDecoder(max_record_bytes=0)


def test_decoded_models_are_genuine_frozen_instances():
    [request] = GenericRequestDecoder().feed(encode_generic_request("i", "u"))
    [response] = GenericResponseDecoder().feed(encode_generic_response(REPLY, "o", "u"))
    assert type(request) is GenericRequest
    assert type(response) is GenericResponse
    assert request == GenericRequest("i", "u")
    assert hash(response) == hash(GenericResponse(REPLY, "o", "u"))
    with pytest.raises(AttributeError):
        response.output = "changed"  # type: ignore[misc]


def test_repr_summarises_state():
    decoder = GenericResponseDecoder()
    decoder.feed(response_body([GenericResponse(REPLY, "a", "1")], None) + b"part")
    assert repr(decoder) == "<GenericResponseDecoder open messages=1 buffered=4B error=False>"
    decoder = GenericRequestDecoder()
    decoder.close()
    assert "closed" in repr(decoder)


def test_verify_end_count():
    verify_end_count(EndOfResponses(3), 3)
    with pytest.raises(IncompletePage, match=r"reports 3 messages .* 2 were delivered"):
        verify_end_count(EndOfResponses(3), 2)


def test_accepts_any_bytes_like_chunk():
    body = golden("4.10-get-responses.response.bin")
    expected = GenericResponseDecoder().feed(body)
    assert GenericResponseDecoder().feed(bytearray(body)) == expected
    assert GenericResponseDecoder().feed(memoryview(body)) == expected
