"""Structured logging: one JSON line per event, with secrets redacted."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

# Attributes every LogRecord has; anything else on a record came from `extra=` and is data.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|cookie|api[_-]?key", re.I)
_TOKEN_VALUE = re.compile(r"mpt_[A-Za-z0-9_\-]{8,}")
REDACTED = "***"


def redact(value: Any, key: str = "") -> Any:
    """Hide values under secret-looking keys and API tokens inside strings."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return _TOKEN_VALUE.sub("mpt_***", value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record, its extra fields and any exception."""
        event: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = redact(value, key)
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Readable one-line format for a terminal, still redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """Render time, level, logger, message and extra fields on one line."""
        extras = {
            k: redact(v, k)
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        }
        line = f"{record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Send every logger (ours, uvicorn's, SQLAlchemy's) through one redacting handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Protocol libraries log every failed reconnect attempt; our connectors report an outage
    # once and its recovery once, so their own chatter is kept to errors.
    for name in ("pymodbus", "asyncua", "aiocoap", "amqtt", "coap-server", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
