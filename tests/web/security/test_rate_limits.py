"""Finding 6: uploads, sign-ins, wrong tokens and training triggers are rate-limited per client address
(Flask-Limiter); the limits come from the settings and a refusal is a 429 with Retry-After."""

from __future__ import annotations

from tests.web.conftest import Images, bearer, upload
from tests.web.security.conftest import Site


def _refused(response) -> None:  # noqa: ANN001
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "too_many_requests"
    assert int(response.headers["Retry-After"]) > 0


def test_uploads_are_limited(make_laptop, images: Images) -> None:  # noqa: ANN001
    site: Site = make_laptop(rate_limit_uploads="2/minute")
    assert [upload(site.client, images.low).status_code for _ in range(2)] == [202, 202]
    _refused(upload(site.client, images.low))
    assert site.client.get("/api/v1/jobs").status_code == 200  # reading is not an upload
    assert len(site.enqueued) == 2


def test_sign_ins_are_limited(make_laptop) -> None:  # noqa: ANN001
    site: Site = make_laptop(rate_limit_logins="3/minute", require_auth=True)
    assert [site.client.post("/login", data={"token": "llt_guess"}).status_code for _ in range(3)] == [401] * 3
    _refused(site.client.post("/login", data={"token": site.tokens["alice"]}))
    assert site.client.get("/login").status_code == 200  # the form itself stays reachable


def test_guessing_tokens_locks_the_guesser_out(make_laptop) -> None:  # noqa: ANN001
    site: Site = make_laptop(rate_limit_bad_tokens="3/minute", require_auth=True)
    for guess in ("llt_a", "llt_b", "llt_c"):
        assert site.client.get("/api/v1/jobs", headers=bearer(guess)).status_code == 401
    _refused(site.client.get("/api/v1/jobs/1", headers=bearer("llt_d")))
    _refused(site.client.get("/api/v1/jobs", headers=site.auth("alice")))  # the whole app, for this address
    other = {"REMOTE_ADDR": "10.9.9.9"}
    assert site.client.get("/api/v1/jobs", headers=site.auth("alice"), environ_base=other).status_code == 200


def test_honest_requests_do_not_count_as_guesses(make_laptop) -> None:  # noqa: ANN001
    site: Site = make_laptop(rate_limit_bad_tokens="2/minute", require_auth=True)
    assert all(site.client.get("/api/v1/jobs", headers=site.auth("alice")).status_code == 200 for _ in range(5))


def test_training_triggers_are_limited(make_laptop) -> None:  # noqa: ANN001
    site: Site = make_laptop(rate_limit_training="1/hour")
    assert site.client.post("/api/v1/training-runs", headers=site.auth("admin")).status_code == 202
    _refused(site.client.post("/api/v1/training-runs", headers=site.auth("admin")))
    assert len(site.runs_sent) == 1
