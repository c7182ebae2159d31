"""Finding 1 (high): with auth off on loopback, other web pages and DNS rebinding must not reach the API,
and admin actions need the operator's admin token even there."""

from __future__ import annotations

import pytest

from tests.web.conftest import Images, upload
from tests.web.security.conftest import EVIL, Site
from web.core.models import Job, JobStatus
from web.core.registry.models import TrainingRun


def _queued_job(site: Site, images: Images) -> int:
    response = upload(site.client, images.low)
    assert response.status_code == 202
    return response.get_json()["id"]


@pytest.mark.parametrize("cross_site", [{"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}])
def test_another_site_cannot_upload_cancel_or_delete(laptop: Site, images: Images, cross_site: dict) -> None:
    job_id = _queued_job(laptop, images)
    assert upload(laptop.client, images.low, headers=cross_site).status_code == 403
    assert laptop.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=cross_site).status_code == 403
    refused = laptop.client.delete(f"/api/v1/jobs/{job_id}", headers=cross_site)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "cross_origin"
    with laptop.sessions()() as session:
        assert [(job.id, job.status) for job in session.query(Job)] == [(job_id, JobStatus.QUEUED.value)]
    assert laptop.enqueued == [job_id]


def test_the_portal_itself_still_uploads(laptop: Site, images: Images) -> None:
    """The portal's fetch() sends its own origin; curl sends none: both are fine."""
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert upload(laptop.client, images.low, headers=same).status_code == 202
    assert upload(laptop.client, images.low).status_code == 202


def test_another_site_cannot_roll_back_promote_or_retrain(laptop: Site) -> None:
    active, candidate = laptop.versions()
    evil = {"Origin": EVIL, **laptop.auth("admin")}
    assert laptop.client.post(f"/api/v1/models/{active}/rollback", headers=evil).status_code == 403
    assert laptop.client.post(f"/api/v1/models/{candidate}/promote", headers=evil).status_code == 403
    started = laptop.client.post(
        "/api/v1/training-runs", data='{"steps": 5}', headers={**evil, "Content-Type": "text/plain"}
    )
    assert started.status_code == 403
    assert laptop.runs_sent == []
    assert laptop.client.get("/api/v1/models").get_json()["active"] == active


def test_admin_actions_need_the_admin_token_even_with_auth_off(laptop: Site) -> None:
    _, candidate = laptop.versions()
    for anonymous in (
        laptop.client.post(f"/api/v1/models/{candidate}/promote"),
        laptop.client.post("/api/v1/training-runs"),
        laptop.client.get("/api/v1/training-runs"),
        laptop.client.post(f"/api/v1/models/{candidate}/promote", headers=laptop.auth("alice")),
    ):
        assert anonymous.status_code == 403, anonymous.get_data(as_text=True)
    assert laptop.runs_sent == []
    promoted = laptop.client.post(f"/api/v1/models/{candidate}/promote", headers=laptop.auth("admin"))
    assert promoted.status_code == 200 and promoted.get_json()["state"] == "active"


def test_a_training_trigger_must_be_json(laptop: Site) -> None:
    """A form or text/plain body is what a cross-site <form> can send; the API reads JSON only."""
    plain = {**laptop.auth("admin"), "Content-Type": "text/plain"}
    response = laptop.client.post("/api/v1/training-runs", data='{"steps": 5}', headers=plain)
    assert response.status_code == 415
    with laptop.sessions()() as session:
        assert session.query(TrainingRun).count() == 0


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/models", "/", "/jobs"])
def test_a_rebound_host_name_is_refused(laptop: Site, images: Images, path: str) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, and the browser sends Host: rebind.evil.example."""
    _queued_job(laptop, images)
    response = laptop.client.get(path, headers={"Host": "rebind.evil.example"})
    assert response.status_code == 400
    assert "dark.png" not in response.get_data(as_text=True)
    assert laptop.client.get(path, headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_an_instance_bound_to_one_address_answers_that_name_only(make_laptop) -> None:  # noqa: ANN001
    site = make_laptop(host="10.1.2.3", require_auth=True)
    assert site.client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
    assert site.client.get("/healthz", headers={"Host": "rebind.evil.example"}).status_code == 400
    named = make_laptop(host="0.0.0.0", require_auth=True, allowed_hosts="photos.example.org")
    assert named.client.get("/healthz", headers={"Host": "photos.example.org"}).status_code == 200
    assert named.client.get("/healthz", headers={"Host": "10.1.2.3"}).status_code == 400
