"""Structured logs: every coordinator event is one record with named fields.

Library code logs ``event(logger, "upload_accepted", round=3, session="...")``;
the text is ``upload_accepted round=3 session=...`` and the fields ride in
``record.fields``, which :class:`JsonFormatter` (installed by ``fedkeys serve
--log-json``) writes as one JSON object a line.

A device's free text reaches logs (abort reasons, metric names): the text line
escapes every control character (``\\n`` stays two characters), so no device
forges a log line (issue 14 point 9). Session ids never reach a log: events
carry :func:`session_ref`, a hash that correlates lines but authorizes nothing,
and :func:`install_access_log_filter` rewrites them out of uvicorn's access log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"


def configure_logging(*, json_lines: bool, level: str = "INFO") -> None:
    """Root logging of a server process (each uvicorn worker is a fresh process); a no-op if already set up."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        text = " ".join([name, *(f"{k}={escape(str(v))}" for k, v in fields.items())])
        logger.log(level, text, extra={"fields": {"event": name, **fields}})


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """``text`` with every control character (and Unicode line separator) as a visible escape: one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text.replace("\\", "\\\\"))


def session_ref(session_id: str) -> str:
    """What logs say instead of a session id (a bearer of the id could otherwise act on the session)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


_SESSION_PATH = re.compile(r"(/sessions/)([^/?\s]+)")


def redact_path(path: str) -> str:
    """A request path with its session id replaced by :func:`session_ref`."""
    return _SESSION_PATH.sub(lambda m: m.group(1) + "~" + session_ref(m.group(2)), path)


class _AccessLogFilter(logging.Filter):
    """uvicorn's access record is ``(client, method, path, http version, status)``: redact the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], escape(redact_path(args[2])), *args[3:])
        return True


def install_access_log_filter() -> None:
    """Keep session ids out of uvicorn's access log (idempotent; call in each worker process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessLogFilter) for f in access.filters):
        access.addFilter(_AccessLogFilter())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)
