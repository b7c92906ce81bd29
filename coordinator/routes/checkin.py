"""``POST /v1/populations/{population}/checkin``: a device asks for work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from coordinator.routes.deps import get_coordinator
from coordinator.service import Coordinator
from wire.protocol import NAME_PATTERN, CheckinRequest, CheckinResponse

router = APIRouter(tags=["devices"])


@router.post("/populations/{population}/checkin", response_model=CheckinResponse)
def checkin(
    population: Annotated[str, Path(pattern=NAME_PATTERN)],
    req: CheckinRequest,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> CheckinResponse:
    """An assignment, or a rejection with the retry window the device must respect (pace steering)."""
    return coordinator.checkin(population, req)
