"""The HTTP API's own client (web/openapi.yaml): upload, read and download jobs over ``/api/v1``.

It imports neither Flask nor TensorFlow, so ``lowlight submit`` starts at once on a laptop that only talks to
a server. Every failure becomes one of two errors with a sentence a user can act on: :class:`ServerUnavailable`
(nothing answered) or :class:`ApiError` (the server answered with its JSON error).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

# Answers worth another try: the server said "later" (rate limit, storage or broker briefly away).
NamedBytes = tuple[str, bytes]  # (file name, content) of one multipart part

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRIES = 5
MAX_RETRY_WAIT_S = 30.0
CONNECT_RETRIES = 3
LIST_PAGE = 100  # the API's largest page


class ServerUnavailable(Exception):
    """Nothing answered at the server's address, or it kept answering "try later"."""


@dataclass
class ApiError(Exception):
    """The server refused a request; ``code`` and ``message`` are its own words."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (HTTP {self.status})"


def idempotency_key(image: bytes, reference: bytes | None) -> str:
    """A key made of the content alone, so running the same command again finds the jobs it made."""
    digest = hashlib.sha256(hashlib.sha256(image).digest())
    if reference is not None:
        digest.update(hashlib.sha256(reference).digest())
    return f"submit-{digest.hexdigest()}"


def _error_of(response: requests.Response) -> ApiError:
    try:
        body = response.json().get("error") or {}
    except (ValueError, AttributeError):
        body = {}
    message = body.get("message") or response.text.strip()[:300] or response.reason
    return ApiError(response.status_code, body.get("code") or "http_error", message)


def _retry_after(response: requests.Response, attempt: int) -> float:
    try:
        wait = float(response.headers.get("Retry-After", ""))
    except ValueError:
        wait = 2.0**attempt
    return min(MAX_RETRY_WAIT_S, max(0.1, wait))


class ApiClient:
    """One server, one token, one keep-alive connection pool."""

    def __init__(self, server: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send, waiting out 429/5xx "later" answers (every call here is safe to repeat); raise on errors."""
        url = path if path.startswith(("http://", "https://")) else self.server + path
        for attempt in range(RETRIES + 1):
            try:
                response = self.http.request(method, url, timeout=self.timeout_s, **kwargs)
            except requests.ConnectionError as exc:
                # A kept-alive connection the server closed as it was reused (gunicorn closes idle ones after
                # 2 s) resets; a server that is down refuses every time.
                if attempt < CONNECT_RETRIES:
                    time.sleep(0.25 * 2**attempt)
                    continue
                raise ServerUnavailable(f"cannot reach the server at {self.server}: {_reason(exc)}") from None
            except requests.Timeout:
                raise ServerUnavailable(f"the server at {self.server} did not answer in {self.timeout_s:g} s") from None
            if response.status_code not in RETRY_STATUSES or attempt == RETRIES:
                break
            time.sleep(_retry_after(response, attempt))
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: proves the address is the platform before anything is uploaded."""
        response = self._request("GET", "/healthz")
        try:
            return response.json()
        except ValueError:
            raise ServerUnavailable(f"{self.server} answered, but it is not the low-light platform") from None

    def create_job(
        self, image: NamedBytes, reference: NamedBytes | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """``POST /api/v1/jobs``; with the same ``key`` the server returns the first job instead of a new one."""
        files = {"image": image} if reference is None else {"image": image, "reference": reference}
        headers = {"Idempotency-Key": key} if key else {}
        return self._request("POST", "/api/v1/jobs", files=files, headers=headers).json()

    def get_job(self, job_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/jobs/{job_id}").json()

    def jobs_since(self, lowest_id: int) -> dict[int, dict[str, Any]]:
        """Every job this token sees with an id of at least ``lowest_id``, newest first, a page of 100 per
        request: one request reads a hundred jobs where ``get_job`` would need a hundred."""
        found: dict[int, dict[str, Any]] = {}
        params: dict[str, int] = {"limit": LIST_PAGE}
        while True:
            page = self._request("GET", "/api/v1/jobs", params=params).json()
            found.update((job["id"], job) for job in page["jobs"] if job["id"] >= lowest_id)
            cursor = page.get("next_cursor")
            if cursor is None or cursor <= lowest_id:
                return found
            params["cursor"] = cursor

    def download_result(self, job: dict[str, Any], target: Path) -> None:
        """Write the result PNG to ``target`` through a temporary name, so a file there is always complete.

        A presigned redirect is followed; requests drops the token when the redirect leaves the server's host.
        """
        response = self._request("GET", job["links"]["result"])
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(response.content)
        partial.replace(target)


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if known in text:
            return known.lower()
    return text.splitlines()[0][:200]
