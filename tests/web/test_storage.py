"""Both storage backends behave the same: bytes in, bytes out, FileNotFoundError for a missing key."""

import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.services import SeaweedFS, free_port
from web.core.settings import Settings
from web.core.storage import (
    LocalStorage,
    ObjectStorage,
    S3Storage,
    StorageUnavailable,
    build_storage,
    job_key,
    make_s3_client,
)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return request.getfixturevalue("s3_storage")


def test_round_trip(storage: ObjectStorage) -> None:
    key = job_key(1, "input.png")
    assert not storage.exists(key)
    storage.put_bytes(key, b"\x89PNG data", "image/png")
    assert storage.exists(key)
    assert storage.get_bytes(key) == b"\x89PNG data"
    storage.put_bytes(key, b"replaced", "image/png")
    assert storage.get_bytes(key) == b"replaced"
    storage.delete(key)
    assert not storage.exists(key)


def test_missing_key_is_file_not_found(storage: ObjectStorage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.get_bytes("jobs/404/input.png")
    storage.delete("jobs/404/input.png")  # deleting what is not there is not an error


def test_ready_check_passes(storage: ObjectStorage) -> None:
    storage.check()


def test_keys_are_platform_chosen() -> None:
    assert job_key(7, "result.png") == "jobs/7/result.png"
    for bad in ("../etc/passwd", "a/b.png", ".hidden"):
        with pytest.raises(ValueError):
            job_key(7, bad)


def test_local_storage_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "objects")
    for bad in ("../escape", "jobs//x", "jobs/./x", ""):
        with pytest.raises(ValueError):
            storage.put_bytes(bad, b"x")
    assert not (tmp_path / "escape").exists()


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("jobs/1/input.png", b"data")
    assert sorted(p.name for p in (tmp_path / "jobs" / "1").iterdir()) == ["input.png"]
    assert storage.presigned_url("jobs/1/input.png") is None


def test_build_storage_follows_settings(tmp_path: Path) -> None:
    local = build_storage(Settings.from_env({}, local_storage_dir=str(tmp_path)))
    assert isinstance(local, LocalStorage)
    s3 = build_storage(Settings.from_env({}, storage_backend="s3", s3_endpoint_url="http://127.0.0.1:1"))
    assert isinstance(s3, S3Storage)


@pytest.mark.integration
def test_presigned_url_serves_the_object(s3_storage: S3Storage) -> None:
    s3_storage.put_bytes("jobs/1/result.png", b"enhanced", "image/png")
    url = s3_storage.presigned_url("jobs/1/result.png", expires_s=60)
    assert url is not None and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local test server
        assert response.read() == b"enhanced"
        assert response.headers["Content-Type"] == "image/png"


def test_unreachable_endpoint_is_storage_unavailable() -> None:
    settings = Settings.from_env(
        {},
        storage_backend="s3",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key="x",
        s3_secret_key="y",
        s3_connect_timeout=0.5,
    )
    storage = S3Storage(make_s3_client(settings), "bucket")
    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable):
        storage.put_bytes("jobs/1/input.png", b"x")
    with pytest.raises(StorageUnavailable):
        storage.get_bytes("jobs/1/input.png")


@pytest.mark.integration
def test_missing_bucket_is_not_ready(seaweedfs: SeaweedFS) -> None:
    storage = S3Storage(seaweedfs.client(), "no-such-bucket-here")
    with pytest.raises(StorageUnavailable, match="does not exist"):
        storage.check()


@pytest.mark.integration
def test_wrong_credentials_are_storage_unavailable(seaweedfs: SeaweedFS, s3_bucket: str) -> None:
    settings = seaweedfs.settings(s3_bucket, s3_secret_key="wrong-secret")
    storage = S3Storage(make_s3_client(settings), s3_bucket)
    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable):
        storage.put_bytes("jobs/1/input.png", b"x")


@pytest.mark.integration
def test_writing_to_a_missing_bucket_is_storage_unavailable(seaweedfs: SeaweedFS) -> None:
    storage = S3Storage(seaweedfs.client(), "no-such-bucket-either")
    with pytest.raises(StorageUnavailable, match="does not exist"):
        storage.get_bytes("jobs/1/input.png")
