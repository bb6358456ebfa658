"""Structured logs: one JSON line per event, never a secret."""

from __future__ import annotations

import json
import logging

from maintainpro.logs import JsonFormatter, PlainFormatter, redact


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "t"})
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_one_json_line_with_extras_and_no_secrets() -> None:
    line = JsonFormatter().format(
        _record(
            "user logged in\nwith token mpt_abcdefghijklmnop",
            user="maria",
            password="hunter2hunter2",
            headers={"Authorization": "Bearer mpt_abcdefghijklmnop", "accept": "json"},
        )
    )
    assert "\n" not in line
    event = json.loads(line)
    assert event["user"] == "maria"
    assert event["password"] == "***"
    assert event["headers"] == {"Authorization": "***", "accept": "json"}
    assert "abcdefghijklmnop" not in line
    assert event["level"] == "info"


def test_plain_format_is_redacted_too() -> None:
    text = PlainFormatter().format(_record("token mpt_zzzzzzzzzzzz", api_key="k"))
    assert "zzzzzzzz" not in text
    assert "api_key=***" in text


def test_redact_nested() -> None:
    assert redact({"db": {"secret": "x", "host": "h"}, "list": ["mpt_123456789abc"]}) == {
        "db": {"secret": "***", "host": "h"},
        "list": ["mpt_***"],
    }
