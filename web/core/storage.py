"""Object storage behind one small interface: S3 (any S3-compatible endpoint) or a local folder.

Keys are chosen by the platform (``jobs/<id>/input.png``...), never by the user, so a key is always a safe
path. A missing key is ``FileNotFoundError`` in both backends; a storage that cannot be reached is
``StorageUnavailable``, which callers may retry (it is transient), unlike everything else.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from web.core.settings import Settings

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# The store answers but will not serve us: misconfiguration, which no request of ours can fix either.
_UNUSABLE_CODES = frozenset(
    {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "SlowDown"}
)


class StorageUnavailable(RuntimeError):
    """The object store could not be reached or refused service; worth retrying later."""


CHUNK_BYTES = 256 * 1024  # downloads are streamed in pieces of this size, never read whole


@contextmanager
def _faults(key: str) -> Iterator[None]:
    """A local file system fault other than a missing file (a full disk, an unreadable folder, a key whose
    path is blocked) is the store being unusable: StorageUnavailable, like an S3 server error."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageUnavailable(f"local storage cannot use {key}: {exc.strerror or exc}") from exc


def _chunks(pieces: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from pieces
    finally:
        close()


def job_key(job_id: int, name: str) -> str:
    """The key of one of a job's objects, e.g. ``job_key(7, "input.png")`` -> ``jobs/7/input.png``."""
    if "/" in name or name.startswith("."):
        raise ValueError(f"bad object name {name!r}")
    return f"jobs/{job_id}/{name}"


@runtime_checkable
class ObjectStorage(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def open_stream(self, key: str) -> Iterator[bytes]:
        """The object in chunks; a missing key raises FileNotFoundError here, before the first chunk."""
        ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def presigned_url(self, key: str, expires_s: int = 900) -> str | None: ...

    def check(self) -> None:
        """Raise StorageUnavailable unless the store is usable (readiness probe)."""
        ...


class S3Storage:
    """A bucket on an S3-compatible server; the boto3 client is injected so tests and deployments choose
    it."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket" or (code in ("404", "NotFound") and "Key" not in kwargs):
                raise StorageUnavailable(f"S3 bucket {self.bucket!r} does not exist") from exc
            if code in _MISSING_CODES:
                raise FileNotFoundError(kwargs.get("Key", self.bucket)) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or code in _UNUSABLE_CODES:
                raise StorageUnavailable(f"S3 {method} on bucket {self.bucket!r} failed: {code}") from exc
            raise
        except (ConnectionError, HTTPClientError) as exc:
            raise StorageUnavailable(f"S3 endpoint unreachable: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 {method} failed: {exc}") from exc

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call("put_object", Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        response = self._call("get_object", Key=key)
        return response["Body"].read()

    def open_stream(self, key: str) -> Iterator[bytes]:
        body = self._call("get_object", Key=key)["Body"]
        return _chunks(body.iter_chunks(CHUNK_BYTES), body.close)

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=key)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=key)
        except FileNotFoundError:
            return False
        return True

    def presigned_url(self, key: str, expires_s: int = 900) -> str | None:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
        )

    def check(self) -> None:
        try:
            self._call("head_bucket")
        except ClientError as exc:
            raise StorageUnavailable(f"bucket {self.bucket!r} is not usable: {exc}") from exc


class LocalStorage:
    """Objects as files under one folder; for the embedded default. Writes are atomic (temp file + rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"bad object key {key!r}")
        return self.root.joinpath(*parts)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        with _faults(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StorageUnavailable(f"cannot write {key}: {exc.strerror or exc}") from exc
            raise

    def get_bytes(self, key: str) -> bytes:
        with _faults(key):
            return self._path(key).read_bytes()

    def open_stream(self, key: str) -> Iterator[bytes]:
        with _faults(key):
            handle = self._path(key).open("rb")
        return _chunks(iter(lambda: handle.read(CHUNK_BYTES), b""), handle.close)

    def delete(self, key: str) -> None:
        with _faults(key):
            self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def presigned_url(self, key: str, expires_s: int = 900) -> str | None:
        return None

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot use {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"{self.root} is not writable")


def make_s3_client(settings: Settings) -> Any:
    """A boto3 client for the configured endpoint: path-style addressing, short timeouts, no hidden
    retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
        config=config,
    )


def build_storage(settings: Settings) -> ObjectStorage:
    """The storage backend the settings ask for."""
    if settings.storage_backend == "s3":
        return S3Storage(make_s3_client(settings), settings.s3_bucket)
    return LocalStorage(settings.local_storage_dir)
