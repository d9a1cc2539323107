"""Error mapping, fault-code tables, Retry-After parsing and the retry table (§2.7, §3.7)."""

from __future__ import annotations

import asyncio
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsoa._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequest,
    BatchCommitted,
    ClientClosed,
    Conflict,
    ConnectError,
    ConnectTimeout,
    DecodeError,
    Forbidden,
    IncompletePage,
    NotFound,
    PayloadTooLarge,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RetryError,
    ServerBusy,
    ServerError,
    ServiceUnavailable,
    TLSVerificationError,
    TooManyRequests,
    TransportTimeout,
    UsageError,
    WriteError,
)
from hpcsoa.protocol._datacontract import encode_fault_json, encode_fault_xml, encode_legacy_fault
from hpcsoa.protocol._errors import (
    IDEMPOTENT_OPERATIONS,
    OPERATION_RETRY_SAFETY,
    SEND_RETRY_SAFE,
    SOA_FAULT_CODES,
    RetrySafety,
    error_from_response,
    fault_category,
    fault_code_name,
    is_retryable,
    parse_retry_after,
    retry_after_from_headers,
)
from hpcsoa.protocol._models import WebServiceFault
from hpcsoa.protocol._routes import Operation

# --- fault code tables (§3.7) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "decimal", "category"),
    [
        ("OperationTimeout", 16777218, "SessionConnectionError"),
        ("Broker_EOMReject_EndRequests", 16777241, "SessionConnectionError"),
        ("Broker_EOMReject_NoRequest", 16777246, "SessionConnectionError"),
        ("NoAvailableBrokerNodes", 33554432, "SessionError"),
        ("WebAPI_BrokerNotActive", 33554447, "SessionError"),
        ("InvalidArgument", 50331648, "SessionFatalError"),
        ("InvalidSessionId", 50331649, "SessionFatalError"),
        ("AccessDenied_BrokerQueue", 50331653, "SessionFatalError"),
        ("Broker_InvalidClientIdOrTooLong", 50331670, "SessionFatalError"),
        ("Service_NotFound", 50331678, "SessionFatalError"),
        ("Azure_NotSupportDurableSession", 50331698, "SessionFatalError"),
        ("WebAPI_APIVersionIncorrect", 50331700, "SessionFatalError"),
        ("WebAPI_AccessDenied", 50331701, "SessionFatalError"),
        ("ClientPurged", 67108864, "ApplicationError"),
        ("ClientTimeout", 67108867, "ApplicationError"),
        ("UnknownError", 251658240, "Unknown"),
        ("ArgumentError", 251723775, "Unknown"),
    ],
)
def test_soa_fault_codes(name: str, decimal: int, category: str) -> None:
    assert SOA_FAULT_CODES[name] == decimal
    assert fault_code_name(decimal) == name
    assert fault_category(decimal) == category


def test_fault_code_table_is_complete_and_unique() -> None:
    assert len(SOA_FAULT_CODES) == 29  # every row of the §3.7 table
    assert len(set(SOA_FAULT_CODES.values())) == len(SOA_FAULT_CODES)


def test_scheduler_and_unknown_codes() -> None:
    assert fault_code_name(-2147220984) is not None
    assert fault_category(-2147220984) == "SchedulerError"
    assert fault_code_name(267386880) is None  # the docs' placeholder 0x0FF00000 (§3.7)
    assert fault_category(267386880) == "Unknown"  # still in the 0x0F category by its top byte
    assert fault_code_name(12345) is None
    assert fault_category(12345) is None
    assert fault_category(-1) is None
    assert fault_category(0x7FFFFFFF) is None


# --- error_from_response ----------------------------------------------------------------------

CANCELED = WebServiceFault(-2147220984, "Jobs in the Canceled state cannot be canceled.")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, AuthenticationError),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (429, TooManyRequests),
        (500, ServerError),
        (502, ServerError),
        (503, ServiceUnavailable),
        (504, ServerError),
        (418, ApiError),
        (405, ApiError),
    ],
)
@pytest.mark.parametrize("form", ["xml", "json", "legacy"])
def test_status_and_body_forms(status: int, cls: type[ApiError], form: str) -> None:
    body = {
        "xml": encode_fault_xml(CANCELED),
        "json": encode_fault_json(CANCELED),
        "legacy": encode_legacy_fault(CANCELED.message),
    }[form]
    ctype = "application/json" if form == "json" else "application/xml; charset=utf-8"
    err = error_from_response(status, {"Content-Type": ctype}, body, operation="cancel_job")
    assert type(err) is cls
    assert err.status == status
    assert err.operation == "cancel_job"
    if status != 401:
        assert err.message == CANCELED.message
    if form == "legacy":
        assert (err.code, err.code_name) == (None, None)
    else:
        assert err.code == -2147220984
        assert err.code_name == fault_code_name(-2147220984)
    assert f"HTTP {status}" in str(err)
    assert "in cancel_job" in str(err)


def test_values_fill_placeholders_in_order() -> None:
    fault = WebServiceFault(
        SOA_FAULT_CODES["WebAPI_BrokerNotActive"],
        "Broker of session {0} is not active. Try {1} (literal {{0}}), {5} stays.",
        (("sessionId", "7"), ("hint", "attach")),
    )
    for body in (encode_fault_xml(fault), encode_fault_json(fault)):
        err = error_from_response(400, {}, body, operation="send_requests")
        assert (
            err.message == "Broker of session 7 is not active. Try attach (literal {0}), {5} stays."
        )
        assert err.values == (("sessionId", "7"), ("hint", "attach"))
        assert err.code_name == "WebAPI_BrokerNotActive"
        assert "(fault 33554447 WebAPI_BrokerNotActive)" in str(err)


def test_non_fault_bodies_give_short_printable_excerpt() -> None:
    html = (
        b"<html><head><title>502</title></head>"
        b"<body><h1>Bad   Gateway</h1>\x00\x1b[31m</body></html>"
    )
    err = error_from_response(502, {"Content-Type": "text/html"}, html)
    assert err.message == "502 Bad Gateway [31m"
    assert err.code is None

    long = ("x" * 5000).encode()
    err = error_from_response(500, {}, long)
    assert len(err.message) == 200
    assert err.message.endswith("…")

    err = error_from_response(500, {}, b"\xff\xfe broken \xc3")
    assert err.message.isprintable()

    assert error_from_response(404, {}, b"").message == "Not Found"
    assert error_from_response(599, {}, b"").message == "error"


def test_fault_message_is_made_single_line_printable_and_capped() -> None:
    body = encode_fault_json(WebServiceFault(1, "line1\r\nline2\x07\tend"))
    assert error_from_response(400, {}, body).message == "line1 line2 end"
    huge = error_from_response(400, {}, encode_fault_xml(WebServiceFault(1, "y" * 100_000)))
    assert len(huge.message) == 2000
    assert huge.message.endswith("…")


def test_401_never_echoes_the_request() -> None:
    secret = "s3cret-P4ssw0rd"
    token = "Q09OVE9TT1xhbGljZTpzM2NyZXQtUDRzc3cwcmQ="
    bodies = [
        f"Authorization: Basic {token} rejected for CONTOSO\\alice:{secret}".encode(),
        encode_fault_xml(WebServiceFault(50331650, f"bad password {secret}", (("p", secret),))),
        encode_fault_json(WebServiceFault(50331650, f"token {token}")),
        encode_legacy_fault(secret),
    ]
    headers = {"WWW-Authenticate": f'Basic realm="{secret}", NTLM', "X-Echo": token}
    for body in bodies:
        err = error_from_response(401, headers, body, operation="create_session")
        assert isinstance(err, AuthenticationError)
        for text in (str(err), repr(err), err.message, repr(err.values), repr(err.args)):
            assert secret not in text
            assert token not in text
        assert err.message == "credentials missing or rejected (server accepts: Basic, NTLM)"
        assert err.values == ()
        clone = pickle.loads(pickle.dumps(err))
        assert secret not in str(clone)
    assert error_from_response(401, {}, b"").message == "credentials missing or rejected"


# --- Retry-After ------------------------------------------------------------------------------

NOW = 1445412470.0  # 10 s before Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 10.0),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:00 2015", 10.0),  # asctime form (no zone: GMT)
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("soon", None),
        ("", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_from_headers() -> None:
    assert retry_after_from_headers({"retry-after": "3"}) == 3.0
    assert retry_after_from_headers({"Retry-After": "3", "Retry-After-Ms": "250"}) == 0.25
    assert retry_after_from_headers({"retry-after-ms": "x", "Retry-After": "4"}) == 4.0
    assert retry_after_from_headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert (
        retry_after_from_headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=NOW) == 10.0
    )
    assert retry_after_from_headers({}) is None
    assert retry_after_from_headers({"Retry-After": "9" * 400}) is None  # overflows to inf
    assert retry_after_from_headers({"retry-after-ms": "9" * 400}) is None
    assert parse_retry_after("9" * 400, now=NOW) is None


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value, now=NOW)
    assert result is None or result >= 0.0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_on_errors(status: int) -> None:
    body = encode_fault_xml(WebServiceFault(0x02000000, "busy"))
    err = error_from_response(status, {"Retry-After": "7"}, body)
    assert isinstance(err, TooManyRequests | ServiceUnavailable)
    assert err.retry_after == 7.0
    err = error_from_response(
        status, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"", now=NOW
    )
    assert isinstance(err, TooManyRequests | ServiceUnavailable)
    assert err.retry_after == 10.0
    err = error_from_response(status, {}, b"")
    assert isinstance(err, TooManyRequests | ServiceUnavailable)
    assert err.retry_after is None


# --- is_retryable -----------------------------------------------------------------------------

ALL_OPS = [op.value for op in Operation]
CONTROL_READS = [
    "attach_session",
    "get_batch_status",
    "get_clusters",
    "get_version",
    "list_jobs",
    "get_job",
    "list_nodes",
    "get_node",
    "list_tasks",
    "get_task",
    "get_subtask",
    "get_service_versions",
    "list_job_templates",
]
UNSAFE = [
    "create_session",
    "commit",
    "create_job",
    "create_job_from_xml",
    "submit_job",
    "cancel_job",
    "requeue_job",
    "add_task",
    "cancel_task",
    "requeue_task",
    "cancel_subtask",
    "requeue_subtask",
]


def test_table_covers_every_operation() -> None:
    assert set(OPERATION_RETRY_SAFETY) == set(ALL_OPS)
    for op in [*CONTROL_READS, "close_session", "purge", "get_responses"]:
        assert op in IDEMPOTENT_OPERATIONS
    for op in UNSAFE:
        assert OPERATION_RETRY_SAFETY[op] is RetrySafety.UNSAFE
    assert SEND_RETRY_SAFE is True
    assert OPERATION_RETRY_SAFETY["send_requests"] is RetrySafety.DEDUPLICATED
    assert "send_requests" not in IDEMPOTENT_OPERATIONS


@pytest.mark.parametrize("op", ALL_OPS)
def test_never_sent_is_always_retryable(op: str) -> None:
    assert is_retryable(ConnectError("refused"), op)
    assert is_retryable(ConnectTimeout("slow connect"), op)
    assert is_retryable(PoolTimeout("pool"), op)
    assert not is_retryable(TLSVerificationError("bad cert"), op)


@pytest.mark.parametrize(
    "exc",
    [ReadError("reset"), WriteError("broken pipe"), ReadTimeout("slow"), TransportTimeout("t")],
)
def test_maybe_processed_only_for_repeatable_operations(exc: Exception) -> None:
    for op in [*CONTROL_READS, "close_session", "purge", "get_responses", "send_requests"]:
        assert is_retryable(exc, op), op
    for op in UNSAFE:
        assert not is_retryable(exc, op), op
    assert not is_retryable(exc, "no_such_operation")


def _api(status: int, code: int | None = None) -> ApiError:
    body = b"" if code is None else encode_fault_xml(WebServiceFault(code, "m"))
    return error_from_response(status, {}, body)


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_transient_statuses(status: int) -> None:
    assert is_retryable(_api(status), "get_job")
    assert is_retryable(_api(status), "get_batch_status")
    assert is_retryable(_api(status), "send_requests")
    assert is_retryable(_api(status), "get_responses")
    assert not is_retryable(_api(status), "create_session")
    assert not is_retryable(_api(status), "commit")
    assert not is_retryable(_api(status), "create_job")


@pytest.mark.parametrize("status", [429, 503])
def test_refused_statuses_retry_everything(status: int) -> None:
    for op in ALL_OPS:
        assert is_retryable(_api(status), op), op


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 411, 413, 418, 501])
def test_permanent_statuses(status: int) -> None:
    for op in ALL_OPS:
        assert not is_retryable(_api(status), op), op


def test_permanent_fault_codes_beat_a_transient_status() -> None:
    assert not is_retryable(_api(503, SOA_FAULT_CODES["InvalidSessionId"]), "get_job")
    assert not is_retryable(_api(500, SOA_FAULT_CODES["ArgumentError"]), "get_job")
    assert is_retryable(_api(503, SOA_FAULT_CODES["NoAvailableBrokerNodes"]), "create_session")


@pytest.mark.parametrize(
    "exc",
    [
        DecodeError("garbled"),
        IncompletePage("short"),
        UsageError("misuse"),
        ClientClosed("closed"),
        RetryError("exhausted", attempts=4),
        ServerBusy("busy", retry_after=600),
        BatchCommitted("committed"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        TimeoutError(),
        OSError("raw"),
        ValueError("x"),
    ],
)
def test_other_errors_never_retry(exc: BaseException) -> None:
    for op in ALL_OPS:
        assert not is_retryable(exc, op)


def test_operation_enum_members_accepted() -> None:
    assert is_retryable(ReadError("r"), Operation.GET_JOB)
    assert not is_retryable(ReadError("r"), Operation.CREATE_SESSION)


# --- fuzz -------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    st.integers(400, 599),
    st.dictionaries(
        st.sampled_from(["Retry-After", "retry-after-ms", "WWW-Authenticate", "X"]),
        st.text(max_size=30),
        max_size=3,
    ),
    st.binary(max_size=300),
)
def test_error_from_response_total(status: int, headers: dict[str, str], body: bytes) -> None:
    err = error_from_response(status, headers, body, now=NOW)
    assert isinstance(err, ApiError)
    assert err.status == status
    assert len(err.message) <= 2000
    assert "\n" not in err.message
