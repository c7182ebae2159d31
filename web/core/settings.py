"""One settings object for the web app and the worker, read from the environment once.

Everything that differs between the embedded default (SQLite, a local folder, kombu's SQLAlchemy transport)
and a production deployment (PostgreSQL, S3, Redis) is a field here, so both processes agree on where
things live.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from mirnet.choices import DEFAULT_PRECISION, DEFAULT_TILE, INFERENCE_PRECISIONS, VIEW_COUNTS

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot use."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Settings:
    """Configuration of the platform; field ``foo`` is read from the environment variable ``FOO``."""

    database_url: str = "sqlite:///var/lowlight.db"
    broker_url: str = "sqla+sqlite:///var/broker.db"
    host: str = "127.0.0.1"
    port: int = 8000
    # Signs the portal's session cookie; without SECRET_KEY one is generated once into this file, so several
    # web processes (gunicorn workers) and restarts agree on it.
    secret_key: str | None = field(default=None, repr=False)
    secret_key_file: str = "var/secret_key"
    # None means: derived from the bind address (see from_env); after from_env it is always a bool.
    require_auth: bool | None = None
    # Host headers the app answers (comma-separated; a leading dot admits subdomains). Empty: derived from the
    # bind address, so a loopback instance refuses DNS-rebound names (web/security.py).
    allowed_hosts: str = ""
    # None: the session cookie is Secure unless the app is bound to loopback.
    session_cookie_secure: bool | None = None
    # Flask-Limiter limits per client address ("N/period"); storage "memory://" per process, or redis://...
    rate_limit_storage_uri: str = "memory://"
    rate_limit_uploads: str = "120/minute"
    rate_limit_logins: str = "10/minute"
    rate_limit_bad_tokens: str = "20/minute"
    rate_limit_training: str = "10/hour"
    # Uploads decoded at once per web process; one more waits this long, then gets 503.
    max_concurrent_decodes: int = 2
    decode_wait_s: float = 10.0
    # Above DECODE_CHECK_PIXELS, an upload may claim at most this many pixels per byte of file.
    max_pixels_per_byte: int = 100
    decode_check_pixels: int = 4_000_000
    database_busy_timeout_s: float = 30.0  # SQLite: how long a writer waits for the lock (then 503)

    storage_backend: str = "local"  # "local" or "s3"
    local_storage_dir: str = "var/objects"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "lowlight"
    s3_access_key: str | None = None
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_region: str = "us-east-1"
    s3_connect_timeout: float = 5.0
    s3_read_timeout: float = 30.0
    presign_results: bool = False
    presign_expires_s: int = 900
    storage_retry_attempts: int = 5
    storage_retry_backoff_s: float = 2.0
    storage_retry_backoff_max_s: float = 60.0

    max_upload_bytes: int = 50 * 2**20
    max_pixels: int = 50_000_000
    max_side: int = 20_000

    model: str | None = None  # None: the packaged default model
    # "auto": the precision the model card ships with where this machine computes it natively and faster, else fp32
    precision: str = DEFAULT_PRECISION
    # Mirrored views averaged; None: as many as the model card ships with for the precision that runs (the packaged
    # model: 4 in bf16, its fp32 fallback of 3 on a CPU without bf16 instructions; docs/MODEL.md).
    views: int | None = None
    tile: int = DEFAULT_TILE  # whole-image inference up to 1024x1024; see docs/MODEL.md on tiling a global network
    max_batch: int = 4
    max_batch_delay_ms: int = 200
    task_soft_time_limit: int = 600
    task_time_limit: int = 660
    queue_name: str = "enhance"

    # Retraining (web/core/registry, worker/retraining). RETRAIN_SCHEDULE is a cron line "min hour dom month dow"
    # in UTC, empty to run only on demand and when RETRAIN_MIN_NEW_PAIRS new pairs have arrived.
    retrain_schedule: str = "0 3 * * *"
    retrain_min_new_pairs: int = 20
    retrain_steps: int = 200
    retrain_max_steps: int = 100_000  # the most steps an API request may ask for
    retrain_batch_size: int = 4
    retrain_crop_size: int = 128
    retrain_learning_rate: float = 1e-4
    retrain_replay_fraction: float = 1.0  # earlier pairs replayed per new pair
    retrain_lock_ttl_s: int = 900  # renewed while training runs; a crashed trainer's lock lapses after it
    holdout_share: int = 10  # until the operator registers a holdout, 1 in N pairs (by content hash) is one
    promote_min_gain_db: float = 0.05
    promote_max_ssim_drop: float = 0.005

    def __post_init__(self) -> None:
        if self.storage_backend not in ("local", "s3"):
            raise SettingsError(f"STORAGE_BACKEND={self.storage_backend!r}: use 'local' or 's3'")
        if self.precision not in INFERENCE_PRECISIONS:
            choices = ", ".join(INFERENCE_PRECISIONS[:-1]) + f" or {INFERENCE_PRECISIONS[-1]}"
            raise SettingsError(f"PRECISION={self.precision!r}: use {choices}")
        if self.views is not None and self.views not in VIEW_COUNTS:
            choices = ", ".join(map(str, VIEW_COUNTS[:-1])) + f" or {VIEW_COUNTS[-1]}"
            raise SettingsError(f"VIEWS={self.views!r}: use {choices}, or leave it empty for the model card's")
        if self.task_time_limit <= self.task_soft_time_limit:
            raise SettingsError("TASK_TIME_LIMIT must be above TASK_SOFT_TIME_LIMIT")
        if len(self.retrain_schedule.split()) not in (0, 5):
            raise SettingsError(f"RETRAIN_SCHEDULE={self.retrain_schedule!r}: use five cron fields or nothing")
        positive = ("max_upload_bytes", "max_pixels", "max_side", "tile", "max_batch", "retrain_steps")
        positive += ("retrain_batch_size", "retrain_crop_size", "retrain_lock_ttl_s", "holdout_share")
        positive += ("max_concurrent_decodes", "retrain_max_steps", "max_pixels_per_byte")
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()} must be positive")

    @property
    def auth_required(self) -> bool:
        """Whether requests need a token; an unset value falls back to the bind-address rule."""
        if self.require_auth is None:
            return self.host not in LOOPBACK_HOSTS
        return self.require_auth

    @property
    def on_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); keyword overrides win over both.

        ``REQUIRE_AUTH`` defaults to true unless ``HOST`` is a loopback address: an instance reachable
        from other machines must not accept anonymous uploads, while the one-command laptop setup should
        just work.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            name, raw = spec.name, env.get(spec.name.upper())
            if raw is None:
                continue
            kind = str(spec.type)
            if kind.startswith("bool"):
                values[name] = _bool(name.upper(), raw)
            elif kind.startswith("int"):
                values[name] = None if not raw and "None" in kind else _int(name.upper(), raw)
            elif kind.startswith("float"):
                values[name] = _float(name.upper(), raw)
            else:
                values[name] = (raw or None) if "None" in kind else raw
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.require_auth is None:
            settings = cls(**{**values, "require_auth": settings.auth_required})  # type: ignore[arg-type]
        return settings

    def public_summary(self) -> dict[str, object]:
        """What /healthz may show: no credentials, no URLs with passwords."""
        return {
            "auth_required": self.auth_required,
            "storage_backend": self.storage_backend,
            "database": self.database_url.split(":", 1)[0],
            "broker": self.broker_url.split(":", 1)[0],
        }
