"""Structured logs: one JSON object per line, with the request id where there is one."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# What a database error may carry besides its statement: SQLAlchemy's parameter list (hidden by
# `hide_parameters`, removed here too should an engine lack it) and PostgreSQL's DETAIL line,
# which quotes the offending values (`Key (email)=(…) already exists`).
_DB_VALUES = re.compile(
    r"\[parameters: .*?\]\s*(?=\(Background|$)"
    r"|DETAIL:\s+[^\n]*"
    r"|Key \([^)]*\)=\([^\n]*?\)",
    re.DOTALL | re.MULTILINE,
)


def redact(text: str) -> str:
    """`text` without the values a database error would quote."""
    return _DB_VALUES.sub("[values hidden]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    # aiosqlite's DEBUG lines print each call with its arguments, the statement's parameters
    # included: never let them through, whatever LOG_LEVEL says.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # uvicorn logs an application's exception with a handler and formatter of its own: send it
    # through ours instead (JSON, request id, database values hidden).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
