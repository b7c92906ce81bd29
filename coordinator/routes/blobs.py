"""``GET /v1/blobs/{sha256}``: content-addressed plan and checkpoint downloads.

Served gzip-encoded as stored, with ``ETag`` = the sha256 and immutable cache
headers, so devices and any HTTP cache fetch a plan once across rounds.
"""

from __future__ import annotations

import gzip
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response

from coordinator.blobstore import get_blob_gzip
from coordinator.routes.deps import get_coordinator
from coordinator.service import Coordinator
from wire.protocol import SHA256_PATTERN

router = APIRouter(tags=["devices"])

_IMMUTABLE = "public, max-age=31536000, immutable"


@router.get(
    "/blobs/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 304: {"description": "not modified"}},
)
def get_blob(
    sha256: Annotated[str, Path(pattern=SHA256_PATTERN)],
    request: Request,
    coordinator: Annotated[Coordinator, Depends(get_coordinator)],
) -> Response:
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": _IMMUTABLE, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    with coordinator.db.read() as conn:
        packed = get_blob_gzip(conn, sha256)
    if packed is None:
        raise HTTPException(404, detail={"reason": "unknown_blob", "message": f"no blob {sha256}"})
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="application/octet-stream", headers={**headers, "Content-Encoding": "gzip"})
    return Response(gzip.decompress(packed), media_type="application/octet-stream", headers=headers)
