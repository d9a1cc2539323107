"""Exception → exit code mapping, error lines, option handling (no server needed)."""

from __future__ import annotations

import io

import click
import pytest

import hpcsoa
from hpcsoa.cli import main
from hpcsoa.cli._errors import CliError, ExitCode, classify, report_exception


def retry_error(cause: BaseException) -> hpcsoa.RetryError:
    err = hpcsoa.RetryError("retries exhausted", attempts=4)
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (hpcsoa.AuthenticationError("no", status=401), ExitCode.AUTH),
        (hpcsoa.Forbidden("no", status=403), ExitCode.AUTH),
        (hpcsoa.TLSVerificationError("bad cert"), ExitCode.TLS),
        (retry_error(hpcsoa.TLSVerificationError("bad cert")), ExitCode.TLS),
        (hpcsoa.ServerBusy("busy", retry_after=600), ExitCode.BUSY),
        (retry_error(hpcsoa.ServiceUnavailable("x", status=503)), ExitCode.BUSY),
        (hpcsoa.ConnectError("refused"), ExitCode.BUSY),
        (hpcsoa.ReadTimeout("slow"), ExitCode.BUSY),
        (hpcsoa.NotFound("no job 7", status=404), ExitCode.USAGE),
        (hpcsoa.BadRequest("bad", status=400), ExitCode.USAGE),
        (hpcsoa.ClientClosed("closed"), ExitCode.USAGE),
        (CliError("x", code=ExitCode.FAULTED), ExitCode.FAULTED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (click.Abort(), ExitCode.INTERRUPTED),
        (click.UsageError("bad flag"), ExitCode.USAGE),
        (ValueError("bug"), ExitCode.USAGE),
    ],
)
def test_classify(exc, code):
    assert classify(exc)[0] == code


def test_report_is_one_line_plus_hint_and_scrubs_secrets():
    out = io.StringIO()
    exc = hpcsoa.AuthenticationError("rejected s3cr3t\nsecond line", status=401)
    code = report_exception(exc, secrets=["s3cr3t"], stream=out)
    assert code == ExitCode.AUTH
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: authentication failed")
    assert lines[1].startswith("hint: ")
    assert "s3cr3t" not in out.getvalue()


def test_verbose_report_has_traceback_but_no_secret():
    out = io.StringIO()
    try:
        raise hpcsoa.ConnectError("cannot reach pw123")
    except hpcsoa.ConnectError as exc:
        report_exception(exc, verbose=1, secrets=["pw123"], stream=out)
    assert "Traceback" in out.getvalue()
    assert "pw123" not in out.getvalue()


def test_help_documents_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Exit codes" in out
    assert "130 interrupted" in out
    assert main(["sweep", "--help"]) == 0
    assert "5 finished but some requests faulted" in capsys.readouterr().out.replace("\n  ", " ")


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "Commands:" in capsys.readouterr().out


def test_usage_errors_exit_1_with_a_hint(capsys):
    assert main(["jobs", "list", "--bogus"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No such option")
    assert "hint: try 'hpcsoa jobs list --help'" in err
    assert main(["nope"]) == 1


def test_missing_url_is_a_usage_error(capsys):
    assert main(["jobs", "list"]) == 1
    err = capsys.readouterr().err
    assert "no service URL" in err
    assert "HPCSOA_URL" in err


def test_bad_pin_is_rejected(capsys):
    assert main(["jobs", "list", "--url", "http://127.0.0.1:1", "--pin-sha256", "abc"]) == 1
    assert "64 hex digits" in capsys.readouterr().err


def test_missing_password_without_terminal(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["jobs", "list", "--url", "http://127.0.0.1:1", "--username", "bob"])
    assert code == 1
    assert "HPCSOA_PASSWORD" in capsys.readouterr().err


def test_unreachable_service_exits_4(capsys):
    # Port 1 on loopback: connection refused, retried, then given up.
    code = main(["cluster", "info", "--url", "http://127.0.0.1:1", "--username", "u",
                 "--password", "p4ss-unreach"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == ExitCode.BUSY, err
    assert "p4ss-unreach" not in err


def test_missing_password_names_the_user_as_typed(capsys, monkeypatch):
    # repr() would print LAB\\alice, which reads like a different (wrong) user name.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["jobs", "list", "--url", "http://127.0.0.1:1", "--username", "LAB\\alice"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no password for user 'LAB\\alice'\n" in err


def test_unknown_priority_is_a_usage_error_before_any_request(capsys):
    # Port 1 would take seconds of retries: the choice is checked before connecting.
    code = main(["jobs", "create", "--priority", "High", "--url", "http://127.0.0.1:1",
                 "--username", "u", "--password", "p"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "Highest" in err
    assert "AboveNormal" in err


@pytest.mark.parametrize("retried", [False, True])
def test_tls_handshake_with_plain_http_server_hints_http(retried):
    cause = hpcsoa.ConnectError(
        "GET /WindowsHPC/Clusters: TLS handshake failed: [SSL: WRONG_VERSION_NUMBER] "
        "wrong version number (_ssl.c:1006)"
    )
    code, message, hint = classify(retry_error(cause) if retried else cause)
    assert code == ExitCode.BUSY
    assert "WRONG_VERSION_NUMBER" in message
    assert hint is not None
    assert "http://" in hint
