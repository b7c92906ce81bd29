"""The coordinator's settings: flags and environment (``FEDKEYS_*``) through pydantic-settings.

Built once by the CLI (or a test) and passed to ``create_app``; nothing reads
the environment at import time. ``fedkeys serve`` exports its flags as
``FEDKEYS_*`` variables so that every uvicorn worker process builds the same
settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coordinator.checkin_views import MAX_AGE_SECONDS
from coordinator.enrollment import EnrollmentConfig
from coordinator.pace import PaceConfig


class CoordinatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEDKEYS_", frozen=True, extra="ignore")

    db: str = Field(default="sqlite:///fedkeys-coordinator.db", description="SQLAlchemy URL")
    api_key: SecretStr | None = Field(default=None, description="admin API key; admin is refused (401) without one")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    loop: Literal["uvloop", "asyncio", "auto"] = Field(default="uvloop", description="uvicorn's event loop")
    http: Literal["httptools", "h11", "auto"] = Field(default="httptools", description="uvicorn's HTTP/1.1 parser")
    tick_seconds: float = Field(default=1.0, gt=0, le=60, description="how often each worker checks deadlines")
    max_upload_bytes: int = Field(default=256 * 2**20, ge=1024, description="refuse larger bodies before reading")
    min_retry_seconds: float = Field(default=5.0, ge=0)
    max_retry_seconds: float = Field(default=3600.0, gt=0)
    unavailable_seconds: float = Field(default=600.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1, le=100)
    log_json: bool = Field(default=False, description="one JSON object per log line (coordinator.logs)")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # Device credentials (coordinator.enrollment, docs/threat-model.md)
    enroll_key_file: Path | None = Field(
        default=None, description="file with the enrollment key devices present (X-Enroll-Key); else open enrollment"
    )
    enroll_burst: int = Field(default=10_000, ge=1, description="open enrollment: credentials an address gets at once")
    enroll_per_minute: float = Field(default=600.0, gt=0, description="open enrollment: refill rate per address")
    credential_key_file: Path | None = Field(
        default=None, description="file with the credential HMAC key; else one is generated into the database"
    )
    credential_ttl_seconds: float = Field(default=30 * 86400.0, gt=0, description="devices enroll again after")
    checkin_min_seconds: float = Field(
        default=2.0, ge=0, description="a credential checks in at most once this often (per worker process)"
    )
    checkin_view_seconds: float = Field(
        default=MAX_AGE_SECONDS,
        gt=0,
        le=10,
        description="a check-in refuses from a view of tasks and rounds at most this old (coordinator.checkin_views)",
    )

    @field_validator("db")
    @classmethod
    def _driver(cls, url: str) -> str:
        """``postgresql://`` means psycopg 3 (the driver installed); SQLite and others pass through."""
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        if not (url.startswith("sqlite") or url.startswith("postgresql+")):
            raise ValueError(f"db must be a sqlite:/// or postgresql:// URL, got {url!r}")
        return url

    @property
    def enrollment(self) -> EnrollmentConfig:
        key = None if self.enroll_key_file is None else Path(self.enroll_key_file).read_bytes().strip()
        if key is not None and not key:
            raise ValueError(f"enroll key file {self.enroll_key_file} is empty")
        return EnrollmentConfig(
            enroll_key=key,
            enroll_burst=self.enroll_burst,
            enroll_per_minute=self.enroll_per_minute,
            credential_ttl_seconds=self.credential_ttl_seconds,
            checkin_min_seconds=self.checkin_min_seconds,
        )

    @property
    def pace(self) -> PaceConfig:
        return PaceConfig(
            min_retry_seconds=self.min_retry_seconds,
            max_retry_seconds=self.max_retry_seconds,
            unavailable_seconds=self.unavailable_seconds,
        )
