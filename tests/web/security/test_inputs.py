"""Findings 6 and 7 about what a request may say: ids and cursors past 2^63, `limit` out of range, long or
replayed Idempotency-Keys, file names with NUL and bidi characters, unbounded training steps, 405 without
Allow."""

from __future__ import annotations

import pytest

from tests.web.conftest import Images, upload
from tests.web.security.conftest import Site

HUGE = str(2**31)  # ids are 32-bit INTEGER columns; 2**63 was an OverflowError on SQLite


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/jobs/{HUGE}",
        f"/api/v1/jobs/{HUGE}/result",
        f"/jobs/{HUGE}",
        f"/jobs/{HUGE}/files/input",
        f"/api/v1/training-runs/{HUGE}",
        f"/api/v1/jobs/{2**63}",
    ],
)
def test_an_id_past_what_the_database_stores_is_404(lan: Site, path: str) -> None:
    """On PostgreSQL 2**31 was a DataError, on SQLite 2**63 an OverflowError: both 500s."""
    response = lan.client.get(path, headers={**lan.auth("admin"), "Accept": "application/json"})
    assert response.status_code == 404
    assert lan.client.delete(path, headers=lan.auth("admin")).status_code in (404, 405)


@pytest.mark.parametrize("query", [f"cursor={HUGE}", f"cursor={2**63}", "cursor=0", "limit=0", "limit=101", "limit=-5"])
def test_list_parameters_out_of_range_are_400(laptop: Site, query: str) -> None:
    response = laptop.client.get(f"/api/v1/jobs?{query}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"


def test_a_long_idempotency_key_is_refused_not_cut(laptop: Site, images: Images) -> None:
    first, second = "k" * 255 + "1", "k" * 255 + "2"
    assert upload(laptop.client, images.low, headers={"Idempotency-Key": first}).status_code == 400
    assert upload(laptop.client, images.other_low, headers={"Idempotency-Key": second}).status_code == 400
    assert upload(laptop.client, images.low, headers={"Idempotency-Key": "k" * 255}).status_code == 202


def test_a_replay_must_repeat_the_whole_upload(laptop: Site, images: Images) -> None:
    key = {"Idempotency-Key": "upload-1"}
    first = upload(laptop.client, images.low, reference=images.high, headers=key)
    assert first.status_code == 202
    again = upload(laptop.client, images.low, reference=images.high, headers=key)
    assert again.get_json()["id"] == first.get_json()["id"]
    changed_contribute = upload(laptop.client, images.low, reference=images.high, headers=key, contribute="true")
    changed_reference = upload(laptop.client, images.low, reference=images.other_low, headers=key)
    no_reference = upload(laptop.client, images.low, headers=key)
    for replay in (changed_contribute, changed_reference, no_reference):
        assert replay.status_code == 409 and replay.get_json()["error"]["code"] == "idempotency_key_reused"


def test_file_names_lose_nul_and_bidi_characters(laptop: Site, images: Images) -> None:
    name = "photo\u202egnp.exe\x00\u200b.png"
    job = upload(laptop.client, images.low, filename=name).get_json()
    assert job["filename"] == "photognp.exe.png"


def test_training_steps_are_bounded(laptop: Site) -> None:
    response = laptop.client.post("/api/v1/training-runs", json={"steps": 10**12}, headers=laptop.auth("admin"))
    assert response.status_code == 400 and "100000" in response.get_json()["error"]["message"]
    assert laptop.runs_sent == []
    ok = laptop.client.post("/api/v1/training-runs", json={"steps": 5}, headers=laptop.auth("admin"))
    assert ok.status_code == 202 and ok.get_json()["progress"]["steps"] == 5


def test_405_says_what_is_allowed(laptop: Site) -> None:
    response = laptop.client.put("/api/v1/jobs")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.get_json()["error"]["code"] == "method_not_allowed"
