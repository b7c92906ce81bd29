"""Structured logs: every coordinator event is one record with named fields.

Library code logs ``event(logger, "upload_accepted", round=3, session="...")``;
the text is ``upload_accepted round=3 session=...`` and the fields ride in
``record.fields``, which :class:`JsonFormatter` (installed by ``fedkeys serve
--log-json``) writes as one JSON object a line.
"""

from __future__ import annotations

import json
import logging
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
        text = " ".join([name, *(f"{k}={v}" for k, v in fields.items())])
        logger.log(level, text, extra={"fields": {"event": name, **fields}})


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
