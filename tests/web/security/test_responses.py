"""Finding 7: /metrics needs a token when tokens are on and names its charset once; /readyz shows no paths;
every response carries CSP, nosniff, frame-ancestors and Referrer-Policy; user files are sandboxed and
streamed; the portal's models page shows training runs to admins only."""

from __future__ import annotations

from pathlib import Path

from tests.web.conftest import Images, upload
from tests.web.security.conftest import Site
from web.core.registry import services as registry


def test_metrics_need_a_token_when_tokens_are_on(lan: Site) -> None:
    assert lan.client.get("/metrics").status_code == 401
    response = lan.client.get("/metrics", headers=lan.auth("alice"))
    assert response.status_code == 200
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("text/plain; version=") and content_type.count("charset") == 1


def test_readyz_shows_no_paths(make_laptop, tmp_path: Path) -> None:  # noqa: ANN001
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"")  # the object folder is a file: storage is not usable
    site: Site = make_laptop(local_storage_dir=str(blocked / "objects"))
    response = site.client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["storage"] == "error: StorageUnavailable"
    assert str(tmp_path) not in response.get_data(as_text=True)


def test_pages_and_api_answers_carry_the_security_headers(laptop: Site) -> None:
    for path in ("/", "/jobs", "/api/v1/jobs", "/healthz", "/api/v1/jobs/99"):
        headers = laptop.client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, path
        assert "script-src" not in policy  # scripts fall back to 'self': no inline script runs


def test_a_gif_that_is_also_html_is_served_sandboxed(laptop: Site, images: Images) -> None:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (8, 8), (10, 10, 10)).save(buffer, format="GIF")
    polyglot = buffer.getvalue() + b"<html><script>alert(document.cookie)</script></html>"
    job = upload(laptop.client, polyglot, filename="x.gif", content_type="image/gif").get_json()
    response = laptop.client.get(f"/jobs/{job['id']}/files/input")
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_downloads_are_streamed(laptop: Site, images: Images) -> None:
    job_id = upload(laptop.client, images.low).get_json()["id"]
    laptop.finish(job_id, result=images.high)
    for path, expected in ((f"/api/v1/jobs/{job_id}/result", images.high), (f"/jobs/{job_id}/files/input", images.low)):
        with laptop.app.test_request_context(path):
            response = laptop.app.full_dispatch_request()  # the app's own response, before the test client reads it
            assert response.status_code == 200 and response.is_streamed, path
            assert b"".join(response.response) == expected
            response.close()


def test_the_models_page_shows_training_runs_to_admins_only(lan: Site) -> None:
    with lan.sessions()() as session:
        run = registry.create_run(session, lan.app.extensions["lowlight"].settings, "schedule", steps=50)
        run.status, run.step = "running", 10
        session.commit()
    alice = lan.client.get("/models", headers=lan.auth("alice")).get_data(as_text=True)
    assert 'id="run-step"' not in alice and 'id="runs"' not in alice and 'id="runs-admin-only"' in alice
    assert lan.client.get("/api/v1/training-runs", headers=lan.auth("alice")).status_code == 403
    admin = lan.client.get("/models", headers=lan.auth("admin")).get_data(as_text=True)
    assert 'step <span id="run-step">10</span> of 50' in admin and 'id="runs"' in admin
