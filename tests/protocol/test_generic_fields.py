"""``GenericResponseFieldsDecoder``: the tuple-producing twin of ``GenericResponseDecoder``.

It must decode exactly what the model decoder decodes (as ``(action, output, user_data)``
tuples, the trailer unchanged) and fail exactly where it fails, however the input is cut.
"""

from __future__ import annotations

import pytest
from codec_support import golden, run, split_at
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import DecodeError, IncompletePage
from hpcsoa.protocol import GenericResponseFieldsDecoder
from hpcsoa.protocol._generic import (
    GenericResponseDecoder,
    encode_generic_response,
    encode_generic_trailer,
)
from hpcsoa.protocol._models import (
    GENERIC_REPLY_ACTION,
    EndOfResponses,
    EndOfResponsesReason,
    GenericResponse,
)

REPLY = GENERIC_REPLY_ACTION
FAULT = "http://hpc.microsoft.com/session/RetryOperationError"
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\uffff\x00"),
    max_size=30,
)


def as_fields(items: list[object]) -> list[object]:
    return [
        (i.action, i.output, i.user_data) if isinstance(i, GenericResponse) else i for i in items
    ]


def same_as_model_decoder(chunks: list[bytes], cap: int = 1 << 20) -> tuple[list[object], object]:
    model = run(GenericResponseDecoder(cap), chunks)
    fields = run(GenericResponseFieldsDecoder(cap), chunks)
    assert fields == (as_fields(model[0]), model[1])
    return fields


def test_spec_example_decodes_to_tuples():
    body = golden("4.10-get-responses.response.bin")
    items, error = same_as_model_decoder([body])
    assert error is None
    assert all(type(i) is tuple and len(i) == 3 for i in items[:-1])
    assert isinstance(items[-1], EndOfResponses)
    assert items[0][0] == REPLY


@given(
    st.lists(st.tuples(st.sampled_from([REPLY, FAULT]), text, text), max_size=8),
    st.one_of(st.none(), st.builds(EndOfResponses, st.integers(0, 10**6))),
    st.lists(st.integers(0, 5000), max_size=10),
)
@settings(max_examples=200, deadline=None)
def test_valid_bodies_match_the_model_decoder_for_any_split(records, eor, points):
    body = b"".join(encode_generic_response(*r) for r in records)
    if eor is not None:
        body += encode_generic_trailer(eor)
    items, error = same_as_model_decoder(split_at(body, points))
    assert error is None
    assert items == ([*records, eor] if eor is not None else records)


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_fail_the_same_way(data, points):
    same_as_model_decoder([data], cap=64)
    same_as_model_decoder(split_at(data, points), cap=64)


@pytest.mark.parametrize(
    "tail",
    [
        REPLY.encode() + b"\xef\xbf\xbftwo-fields\x00",
        REPLY.encode() + b"\xef\xbf\xbf\xc3\x28\xef\xbf\xbfu\x00",  # invalid UTF-8
        encode_generic_trailer(EndOfResponses(1)) + b"x",
    ],
)
def test_records_before_a_bad_one_are_returned_then_the_error(tail):
    good = encode_generic_response(REPLY, "ok", "u1")
    decoder = GenericResponseFieldsDecoder()
    assert decoder.feed(good + tail)[:1] == [(REPLY, "ok", "u1")]
    with pytest.raises(DecodeError):
        decoder.feed(b"more")


def test_fault_records_keep_their_action_and_the_trailer_its_reason():
    body = encode_generic_response(FAULT, "busy", "u1") + encode_generic_trailer(
        EndOfResponses(1, EndOfResponsesReason.CLIENT_PURGED)
    )
    decoder = GenericResponseFieldsDecoder()
    assert decoder.feed(body) == [
        (FAULT, "busy", "u1"),
        EndOfResponses(1, EndOfResponsesReason.CLIENT_PURGED),
    ]
    assert decoder.ended
    assert decoder.messages == 1
    decoder.close()


def test_input_ending_inside_a_record():
    decoder = GenericResponseFieldsDecoder()
    assert decoder.feed(encode_generic_response(REPLY, "x", "u")[:-3]) == []
    with pytest.raises(IncompletePage):
        decoder.close()
