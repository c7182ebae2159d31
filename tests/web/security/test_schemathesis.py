"""A bounded, derandomized schemathesis run over web/openapi.yaml against the real app (PostgreSQL, tokens
required), once with an ordinary token and once with the admin token: no 5xx, and every answer matches the
document (status code, content type, body schema)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.conftest import Images, upload
from tests.web.security.conftest import Site
from web.health import OPENAPI_PATH

pytestmark = pytest.mark.slow  # about 45 s on two cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(params=["alice", "admin"])
def caller(request: pytest.FixtureRequest, make_lan: Callable[..., Site], images: Images) -> tuple[Site, str]:
    """The site with a few jobs and model versions, so generated ids sometimes hit real rows."""
    site = make_lan(rate_limit_uploads="1000/minute", rate_limit_training="1000/hour")
    for _ in range(2):
        upload(site.client, images.low, headers=site.auth(request.param))
    site.versions()
    return site, request.param


schema = schemathesis.openapi.from_path(OPENAPI_PATH)


@schema.parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_document(case, caller: tuple[Site, str]) -> None:  # noqa: ANN001
    site, name = caller
    case.call_and_validate(app=site.app, headers=site.auth(name), checks=CHECKS)
