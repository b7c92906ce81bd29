"""coordinator.logs: device text cannot forge lines; session ids never reach a log."""

from __future__ import annotations

import logging

import pytest

from coordinator.logs import _AccessLogFilter, escape, event, redact_path, session_ref


def test_escape_keeps_one_line() -> None:
    assert escape("a\nb") == "a\\nb"
    assert escape("x\r\x1b[2K\x00") == "x\\r\\x1b[2K\\x00"
    assert escape("sep\u2028x\x85") == "sep\\u2028x\\x85"
    assert escape("back\\nslash") == "back\\\\nslash"  # a literal backslash-n stays distinguishable
    assert escape("plain text: ok") == "plain text: ok"


def test_event_text_escapes_field_values(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.logs")
    with caplog.at_level(logging.INFO, logger="test.logs"):
        event(logger, "abort", reason="x\n2026-01-01 INFO forged")
    (record,) = caplog.records
    assert record.getMessage() == "abort reason=x\\n2026-01-01 INFO forged"
    assert record.fields == {"event": "abort", "reason": "x\n2026-01-01 INFO forged"}  # type: ignore[attr-defined]


def test_redact_path_replaces_session_ids() -> None:
    ref = session_ref("AbC_-9")
    assert redact_path("/v1/sessions/AbC_-9/secagg/unmask") == f"/v1/sessions/~{ref}/secagg/unmask"
    assert redact_path("/v1/sessions/AbC_-9/update?x=1") == f"/v1/sessions/~{ref}/update?x=1"
    assert redact_path("/v1/populations/p/checkin") == "/v1/populations/p/checkin"
    assert len(ref) == 12 and ref != session_ref("AbC_-8")


def test_access_log_filter_redacts_uvicorns_record() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/v1/sessions/secret-id/abort", "1.1", 200), None,
    )  # fmt: skip
    assert _AccessLogFilter().filter(record)
    assert "secret-id" not in record.getMessage()
    assert f"/v1/sessions/~{session_ref('secret-id')}/abort" in record.getMessage()
