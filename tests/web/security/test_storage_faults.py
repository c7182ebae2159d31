"""Finding 6: a local storage fault other than a missing object (a blocked path, an unreadable object) is
503 storage_unavailable, not a 500; nothing is left behind."""

from __future__ import annotations

from pathlib import Path

from tests.web.conftest import Images, upload
from tests.web.security.conftest import Site
from web.core.models import Job


def _objects(site: Site) -> Path:
    return Path(site.app.extensions["lowlight"].settings.local_storage_dir)


def test_a_store_that_cannot_be_written_is_503(laptop: Site, images: Images) -> None:
    root = _objects(laptop)
    root.mkdir(parents=True, exist_ok=True)
    (root / "jobs").write_bytes(b"")  # a file where the jobs folder must be
    response = upload(laptop.client, images.low)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "storage_unavailable"
    with laptop.sessions()() as session:
        assert session.query(Job).count() == 0
    assert laptop.enqueued == []


def test_an_object_that_cannot_be_read_is_503(laptop: Site, images: Images) -> None:
    job_id = upload(laptop.client, images.low).get_json()["id"]
    laptop.finish(job_id)
    result = _objects(laptop) / "jobs" / str(job_id) / "result.png"
    result.unlink()
    result.mkdir()  # the object's path is a folder: reading it fails with IsADirectoryError
    for path in (f"/api/v1/jobs/{job_id}/result", f"/jobs/{job_id}/files/result"):
        response = laptop.client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 503, path
        assert response.get_json()["error"]["code"] == "storage_unavailable"
