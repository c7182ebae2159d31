"""Finding 5: tokens can be listed and revoked from the CLI; a portal session dies at logout and with its
token; the session cookie is Secure off loopback."""

from __future__ import annotations

from click.testing import CliRunner

from tests.web.security.conftest import Site
from web.cli import main


def _sign_in(site: Site, name: str) -> str:
    response = site.client.post("/login", data={"token": site.tokens[name]})
    assert response.status_code == 302
    cookie = site.client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_list_and_revoke_tokens_from_the_cli(lan: Site) -> None:
    env = {"DATABASE_URL": lan.app.extensions["lowlight"].settings.database_url}
    runner = CliRunner()
    listed = runner.invoke(main, ["list-tokens"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(row[1], row[2], row[4]) for row in rows] == [
        ("alice", "user", "active"),
        ("bob", "user", "active"),
        ("admin", "admin", "active"),
    ]
    assert lan.tokens["alice"] not in listed.output
    alice_id = rows[0][0]
    assert lan.client.get("/api/v1/jobs", headers=lan.auth("alice")).status_code == 200
    revoked = runner.invoke(main, ["revoke-token", alice_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert lan.client.get("/api/v1/jobs", headers=lan.auth("alice")).status_code == 401
    assert lan.client.get("/api/v1/jobs", headers=lan.auth("bob")).status_code == 200
    assert "revoked" in runner.invoke(main, ["list-tokens"], env=env).stdout.splitlines()[0]
    missing = runner.invoke(main, ["revoke-token", "999"], env=env)
    assert missing.exit_code != 0 and "no token 999" in missing.output


def test_a_copied_session_cookie_dies_at_logout(lan: Site) -> None:
    stolen = _sign_in(lan, "alice")
    assert lan.client.get("/jobs").status_code == 200
    assert lan.client.post("/logout").status_code == 302
    lan.client.set_cookie("session", stolen)
    assert lan.client.get("/jobs").status_code == 302
    assert lan.client.get("/api/v1/jobs").status_code == 401


def test_a_session_dies_with_its_token(lan: Site) -> None:
    _sign_in(lan, "alice")
    assert lan.client.get("/api/v1/jobs").status_code == 200
    from web.core.tokens import list_tokens, revoke_token  # here, so the other probes run without them

    with lan.sessions()() as session:
        alice = next(token for token in list_tokens(session) if token.name == "alice")
        revoke_token(session, alice.id)
    assert lan.client.get("/api/v1/jobs").status_code == 401
    assert lan.client.post("/login", data={"token": lan.tokens["alice"]}).status_code == 401


def test_the_session_cookie_is_secure_off_loopback(make_lan) -> None:  # noqa: ANN001
    site = make_lan(host="10.1.2.3")
    response = site.client.post("/login", data={"token": site.tokens["alice"]}, headers={"Host": "10.1.2.3"})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    loopback = make_lan()
    signed_in = loopback.client.post("/login", data={"token": loopback.tokens["alice"]})
    assert "Secure" not in signed_in.headers["Set-Cookie"]
