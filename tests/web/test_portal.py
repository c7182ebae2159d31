"""Portal pages through the test client: they render, read jobs through the services, serve images through
the app, and ask for a token when authentication is on."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import Images, bearer, upload
from web.core.models import Job


def test_upload_page_says_auth_is_off(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="dropzone"' in html and "multiple" in html
    assert "Authentication is off" in html


def test_jobs_and_job_pages_render(app: Flask, client: FlaskClient, images: Images) -> None:
    job_id = upload(client, images.low, filename="night.png", reference=images.high).get_json()["id"]
    jobs_html = client.get("/jobs").get_data(as_text=True)
    assert "night.png" in jobs_html and "queued" in jobs_html
    job_html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert f"Job {job_id}" in job_html and "Waiting for a worker" in job_html
    assert f'data-url="/api/v1/jobs/{job_id}/cancel"' in job_html and 'data-action="retry"' not in job_html
    assert client.get(f"/jobs/{job_id}/files/input").data == images.low
    assert client.get(f"/jobs/{job_id}/files/reference").data == images.high
    assert client.get(f"/jobs/{job_id}/files/result").status_code == 409
    assert client.get(f"/jobs/{job_id}/files/secrets").status_code == 404

    with app.extensions["session_factory"]() as session:
        job = session.get(Job, job_id)
        app.extensions["lowlight"].storage.put_bytes(f"jobs/{job_id}/result.png", images.high, "image/png")
        job.status, job.result_key, job.psnr, job.ssim = (
            "succeeded",
            f"jobs/{job_id}/result.png",
            19.25,
            0.8123,
        )
        job.runtime_ms, job.batch_size = 812.0, 2
        session.commit()
    job_html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "19.25 dB" in job_html and "0.8123" in job_html and "812 ms" in job_html
    assert 'id="compare"' in job_html and 'id="download"' in job_html
    assert 'data-action="cancel"' not in job_html and 'data-action="delete"' in job_html
    download = client.get(f"/jobs/{job_id}/files/result?download=1")
    assert download.data == images.high
    assert download.headers["Content-Disposition"] == 'attachment; filename="night-enhanced.png"'


def test_missing_job_page_is_an_html_404(client: FlaskClient) -> None:
    response = client.get("/jobs/4242", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "job 4242 not found" in response.get_data(as_text=True)


def test_portal_asks_for_a_token_when_auth_is_on(auth_app: Flask, tokens: dict, images: Images) -> None:
    client = auth_app.test_client()
    response = client.get("/jobs")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Authentication is off" not in client.get("/login").get_data(as_text=True)

    assert client.post("/login", data={"token": "llt_wrong"}).status_code == 401
    signed_in = client.post("/login?next=/jobs", data={"token": tokens["alice"][1]})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/jobs"
    # The portal session also authorizes the API calls its JavaScript makes.
    job_id = upload(client, images.low).get_json()["id"]
    assert "alice" in client.get("/jobs").get_data(as_text=True)
    assert client.get(f"/jobs/{job_id}/files/input").status_code == 200
    bob = auth_app.test_client()
    assert bob.get(f"/api/v1/jobs/{job_id}", headers=bearer(tokens["bob"][1])).status_code == 404
    client.post("/logout")
    assert client.get("/api/v1/jobs").status_code == 401


def test_login_does_not_redirect_off_site(auth_app: Flask, tokens: dict) -> None:
    client = auth_app.test_client()
    response = client.post("/login?next=//evil.example/", data={"token": tokens["alice"][1]})
    assert response.headers["Location"] == "/"


def test_static_assets_are_served(client: FlaskClient) -> None:
    for asset in ("portal.js", "portal.css"):
        with client.get(f"/static/{asset}") as response:
            assert response.status_code == 200
