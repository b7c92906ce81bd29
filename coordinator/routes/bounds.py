"""A bound on what the coordinator reads of a device's JSON message before judging it.

FastAPI reads a body parameter whole before the route runs, and the device routes that take JSON (enroll,
report, abort) are reachable before any token is checked, so without a bound anyone could make a worker
buffer gigabytes. :func:`bounded_receive` wraps the ASGI ``receive`` of those requests and stops at
``wire.protocol.MAX_MESSAGE_BYTES`` with 413 ``too_large``, for FastAPI's routes and the check-in's raw path
alike (``app.CoordinatorApp``); uploads and secure-aggregation phases have their own, per-task bounds.
"""

from __future__ import annotations

import re

from fastapi import HTTPException
from starlette.types import Message, Receive, Scope

from wire.protocol import API_PREFIX, MAX_MESSAGE_BYTES, UPLOAD_REASONS

_MESSAGE_PATHS = re.compile(
    re.escape(API_PREFIX) + r"/(populations/[^/]+/(enroll|checkin)|sessions/[^/]+/(report|abort))"
)


def bounded_receive(scope: Scope, receive: Receive) -> Receive:
    """``receive`` itself for other requests; for a device's JSON message, one that refuses past the bound."""
    if scope["type"] != "http" or _MESSAGE_PATHS.fullmatch(scope["path"]) is None:
        return receive
    seen = 0

    async def _receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_MESSAGE_BYTES:  # FastAPI re-raises an HTTPException from the body read as it is
                raise HTTPException(
                    status_code=UPLOAD_REASONS["too_large"],
                    detail={"reason": "too_large", "message": f"message body over {MAX_MESSAGE_BYTES} bytes"},
                )
        return message

    return _receive
