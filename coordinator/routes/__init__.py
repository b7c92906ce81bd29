"""The coordinator's HTTP routers, one per resource; they only translate HTTP to ``Coordinator`` / ``Admin`` calls."""

from coordinator.routes.admin import router as admin_router
from coordinator.routes.blobs import router as blobs_router
from coordinator.routes.checkin import router as checkin_router
from coordinator.routes.ops import router as ops_router
from coordinator.routes.secagg import router as secagg_router
from coordinator.routes.sessions import router as sessions_router

__all__ = ["admin_router", "blobs_router", "checkin_router", "ops_router", "secagg_router", "sessions_router"]
