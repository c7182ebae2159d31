"""web/openapi.yaml documents every /api/v1 route, and real responses validate against its schemas."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from tests.web.conftest import Images, bearer, upload
from web.core.models import Job
from web.health import OPENAPI_PATH

SPEC: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text())
REGISTRY = Registry().with_resource(
    "urn:openapi", Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


def _pointer(*parts: str) -> str:
    return "urn:openapi#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_api_route_is_documented(app: Flask) -> None:
    documented = {
        (path, method.upper())
        for path, item in SPEC["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    routes = {
        (_openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/v1", "/healthz", "/readyz", "/metrics"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes, "no API routes found"
    assert routes - documented == set(), "routes missing from web/openapi.yaml"
    assert documented - routes == set(), "web/openapi.yaml documents routes the app does not have"


def check(response: TestResponse, path: str, method: str) -> None:
    """Fail unless the status is documented for the operation and the JSON body validates."""
    operation = SPEC["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
    documented = operation["responses"][status]
    parts: tuple[str, ...] = ("paths", path, method.lower(), "responses", status)
    if "$ref" in documented:
        name = documented["$ref"].rsplit("/", 1)[-1]
        documented, parts = SPEC["components"]["responses"][name], ("components", "responses", name)
    content = documented.get("content", {})
    if response.mimetype == "application/json":
        assert "application/json" in content, f"{method} {path} {status}: JSON not documented"
        schema = {"$ref": _pointer(*parts, "content", "application/json", "schema")}
        Draft202012Validator(schema, registry=REGISTRY).validate(response.get_json())
    elif content:
        assert response.mimetype in content, f"{method} {path} {status}: {response.mimetype} not documented"


def _check_times(job: dict[str, Any]) -> None:
    for field in ("created_at", "started_at", "completed_at"):
        if job[field] is not None:
            datetime.fromisoformat(job[field])


def test_responses_match_the_documented_schemas(app: Flask, client: FlaskClient, images: Images) -> None:
    created = upload(client, images.low, reference=images.high)
    check(created, "/api/v1/jobs", "POST")
    job_id = created.get_json()["id"]
    _check_times(created.get_json())
    for bad in (
        upload(client, b""),
        upload(client, images.low, content_type="text/plain"),
        upload(client, Images.bomb()),
    ):
        check(bad, "/api/v1/jobs", "POST")
    check(client.get("/api/v1/jobs?limit=1"), "/api/v1/jobs", "GET")
    check(client.get("/api/v1/jobs?status=nope"), "/api/v1/jobs", "GET")
    check(client.get(f"/api/v1/jobs/{job_id}"), "/api/v1/jobs/{job_id}", "GET")
    check(client.get("/api/v1/jobs/12345"), "/api/v1/jobs/{job_id}", "GET")
    check(client.get(f"/api/v1/jobs/{job_id}/result"), "/api/v1/jobs/{job_id}/result", "GET")
    check(client.post(f"/api/v1/jobs/{job_id}/retry"), "/api/v1/jobs/{job_id}/retry", "POST")
    check(client.post(f"/api/v1/jobs/{job_id}/cancel"), "/api/v1/jobs/{job_id}/cancel", "POST")
    check(client.post(f"/api/v1/jobs/{job_id}/cancel"), "/api/v1/jobs/{job_id}/cancel", "POST")

    with app.extensions["session_factory"]() as session:
        job = session.get(Job, job_id)
        job.status, job.error_code, job.error_message = "failed", "model_error", "the model crashed"
        session.commit()
    failed = client.get(f"/api/v1/jobs/{job_id}")
    check(failed, "/api/v1/jobs/{job_id}", "GET")
    assert failed.get_json()["error"] == {"code": "model_error", "message": "the model crashed"}
    check(client.post(f"/api/v1/jobs/{job_id}/retry"), "/api/v1/jobs/{job_id}/retry", "POST")

    with app.extensions["session_factory"]() as session:
        job = session.get(Job, job_id)
        app.extensions["lowlight"].storage.put_bytes(f"jobs/{job_id}/result.png", images.high, "image/png")
        job.status, job.result_key, job.psnr, job.ssim = "succeeded", f"jobs/{job_id}/result.png", 20.1, 0.8
        job.runtime_ms, job.batch_size, job.model_version = 1234.5, 3, "mirnet-lite@abc"
        session.commit()
    check(client.get(f"/api/v1/jobs/{job_id}"), "/api/v1/jobs/{job_id}", "GET")
    check(client.get(f"/api/v1/jobs/{job_id}/result"), "/api/v1/jobs/{job_id}/result", "GET")
    check(client.delete(f"/api/v1/jobs/{job_id}"), "/api/v1/jobs/{job_id}", "DELETE")
    check(client.delete(f"/api/v1/jobs/{job_id}"), "/api/v1/jobs/{job_id}", "DELETE")
    check(client.get("/healthz"), "/healthz", "GET")
    check(client.get("/readyz"), "/readyz", "GET")
    check(client.get("/metrics"), "/metrics", "GET")


def test_auth_errors_match_the_schema(auth_app: Flask, tokens: dict, images: Images) -> None:
    client = auth_app.test_client()
    check(client.get("/api/v1/jobs"), "/api/v1/jobs", "GET")
    check(upload(client, images.low), "/api/v1/jobs", "POST")
    check(client.get("/api/v1/jobs", headers=bearer(tokens["alice"][1])), "/api/v1/jobs", "GET")


def test_the_checker_catches_a_wrong_body() -> None:
    class Fake:
        status_code, mimetype = 200, "application/json"

        @staticmethod
        def get_json() -> dict[str, Any]:
            return {"id": "not an int"}

    with pytest.raises(ValidationError):
        check(Fake(), "/api/v1/jobs/{job_id}", "GET")  # type: ignore[arg-type]


def test_the_document_is_served(client: FlaskClient) -> None:
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert yaml.safe_load(response.data)["openapi"].startswith("3.1")
