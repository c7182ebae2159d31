"""Finding 2 (open redirect after login) and the login half of finding 6 (login CSRF)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.web.security.conftest import EVIL, Site


@pytest.mark.parametrize(
    "target", ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/", "/\r\n/evil.example"]
)
def test_next_cannot_leave_the_site(lan: Site, target: str) -> None:
    response = lan.client.post(f"/login?next={quote(target)}", data={"token": lan.tokens["alice"]})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_keeps_a_path_of_this_site(lan: Site) -> None:
    response = lan.client.post(f"/login?next={quote('/jobs?status=queued')}", data={"token": lan.tokens["alice"]})
    assert response.headers["Location"] == "/jobs?status=queued"


def test_another_site_cannot_sign_the_browser_in(lan: Site) -> None:
    """Login CSRF: a page posting the attacker's token would make the victim upload into the attacker's account."""
    response = lan.client.post("/login", data={"token": lan.tokens["bob"]}, headers={"Origin": EVIL})
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert lan.client.get("/jobs").status_code == 302  # still signed out
