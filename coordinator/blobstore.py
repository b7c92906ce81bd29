"""Content-addressed blobs (plans, checkpoints) in the database.

A blob is stored once, gzip-compressed at upload, under its sha256; devices
fetch ``/v1/blobs/{sha256}`` and can cache it forever (the name is the content),
so a plan is downloaded once across rounds (Bonawitz et al. 2019 §2.2).
"""

from __future__ import annotations

import gzip
import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coordinator.db import blobs, fetch_bytes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(conn: Connection, data: bytes, now: float) -> str:
    """Store ``data`` unless it is already there; returns its sha256."""
    digest = sha256_hex(data)
    exists = conn.execute(sa.select(blobs.c.sha256).where(blobs.c.sha256 == digest)).first()
    if exists is None:
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        conn.execute(sa.insert(blobs).values(sha256=digest, size=len(data), gzip=packed, created_at=now))
    return digest


def get_blob_gzip(conn: Connection, digest: str) -> bytes | None:
    """The gzip-compressed bytes (served as they are with ``Content-Encoding: gzip``), or None."""
    return fetch_bytes(conn, blobs.c.gzip, {blobs.c.sha256: digest})


def get_blob(conn: Connection, digest: str) -> bytes | None:
    packed = get_blob_gzip(conn, digest)
    return None if packed is None else gzip.decompress(packed)
