"""Domain errors of the coordinator, each carrying a machine-readable reason code.

The core raises these; only the HTTP routes map them to status codes
(``wire.protocol.UPLOAD_REASONS`` / ``SESSION_REASONS``).
"""

from __future__ import annotations

from fedkeys_errors import FedkeysError


class CoordinatorRefusal(FedkeysError, ValueError):
    """A refusal with a ``reason`` code (see ``wire.protocol``) and a message naming the bad value."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class UpdateRejected(CoordinatorRefusal):
    """An upload that must not touch the running sum (validation, token, round state)."""


class SessionError(CoordinatorRefusal):
    """A report / abort / check-in that cannot be applied."""


class TaskError(CoordinatorRefusal):
    """An admin request that cannot be applied (unknown population, bad plan, ...)."""
