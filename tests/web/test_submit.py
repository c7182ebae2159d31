"""``lowlight submit`` against the real platform served over HTTP, and against a server that is not there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.serving import make_server

import web.client
from tests.fixtures.platform import REPO_ROOT, PlatformFactory
from tests.fixtures.services import free_port
from web.client import ApiClient, ApiError, idempotency_key
from web.core.models import Job
from web.core.tokens import create_token
from web.submit import collect_photos
from worker.cli import main


def write_png(path: Path, seed: int, size: tuple[int, int] = (40, 24)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 90, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@contextmanager
def serve(app) -> Iterator[str]:
    """The Flask app on a real socket (werkzeug's threaded server), so the client speaks real HTTP to it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``lowlight`` in a fresh process; it also reports which heavy packages the command imported."""
    script = (
        "import sys; from worker.cli import main; code = main(sys.argv[1:]); "
        "heavy = sorted({'tensorflow', 'flask', 'sqlalchemy', 'boto3'} & set(sys.modules)); "
        "print('imported:', heavy, file=sys.stderr); sys.exit(code)"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def count_jobs(platform) -> int:
    with platform.sessions() as session:
        return session.scalar(select(func.count()).select_from(Job))


@pytest.mark.integration
@pytest.mark.slow
def test_submit_a_folder_with_references_then_resume_without_new_jobs(
    platform_factory: PlatformFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = platform_factory("embedded")
    platform.start_worker()
    photos, references, out = tmp_path / "photos", tmp_path / "high", tmp_path / "out"
    for seed, name in enumerate(("a", "b", "c")):
        write_png(photos / f"{name}.png", seed)
        if name != "c":
            write_png(references / f"{name}.png", seed + 10)
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    command = ["submit", str(photos), "-o", str(out), "--references", str(references)]
    with serve(platform.app) as url:
        first = run_cli([*command, "--server", url, "--json"])
        assert first.returncode == 1, first.stderr
        records = {Path(r["file"]).name: r for r in json.loads(first.stdout)}
        for name, has_reference in (("a", True), ("b", True), ("c", False)):
            job = records[f"{name}.png"]["job"]
            assert job["status"] == "succeeded" and job["has_reference"] is has_reference
            assert (job["metrics"]["psnr"] is not None) is has_reference
            assert Image.open(out / f"{name}.png").size == (40, 24)
        assert records["broken.png"]["job"] is None and not (out / "broken.png").exists()
        failure = next(line for line in first.stderr.splitlines() if line.startswith("failed:"))
        assert "broken.png" in failure and "refused" in failure and "HTTP 4" in failure
        assert "3 enhanced" in first.stderr and "1 failed" in first.stderr
        assert "imported: []" in first.stderr, "the client must not import TensorFlow, Flask or the database layer"
        jobs = count_jobs(platform)
        assert jobs == 3

        (out / "a.png").unlink()  # as if the first run had been interrupted before this download
        again = run_cli(command, env={"LOWLIGHT_SERVER": url})
        unwritable = [*command, "-o", str(photos / "a.png" / "out"), "--server", url]  # a folder under a file
        assert main(unwritable) == 2
        assert "error: [Errno" in capsys.readouterr().err
    assert again.returncode == 1, again.stderr
    assert count_jobs(platform) == jobs, "re-running the same command must not queue the photos again"
    assert Image.open(out / "a.png").size == (40, 24)
    assert "3 enhanced" in again.stdout


def test_a_server_that_is_down_is_refused_with_a_sentence(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "dark.png", 0)
    port = free_port()  # nothing listens there
    result = run_cli(["submit", "--server", f"http://127.0.0.1:{port}", str(photo), "-o", str(tmp_path / "out")])
    assert result.returncode == 2
    assert f"cannot reach the server at http://127.0.0.1:{port}: connection refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_a_token_is_sent_a_wrong_one_stops_the_run_and_the_job_list_is_paged(
    platform_factory: PlatformFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = platform_factory("embedded", require_auth=True)  # no worker: the jobs only need to be queued
    with platform.sessions() as session:
        _, token = create_token(session, "laptop")
    photos = [str(write_png(tmp_path / f"{n}.png", n)) for n in range(2)]
    with serve(platform.app) as url:
        assert main(["submit", "--server", url, "--token", "llt_wrong", *photos, "-o", str(tmp_path / "out")]) == 2
        assert "HTTP 401" in capsys.readouterr().err
        assert count_jobs(platform) == 0
        client = ApiClient(url, token)
        ids = [
            client.create_job((f"{n}.png", write_png(tmp_path / "more.png", n).read_bytes()))["id"] for n in range(5)
        ]
        assert client.get_job(ids[0])["status"] == "queued"
        monkeypatch.setattr(web.client, "LIST_PAGE", 2)  # three pages, the last one partly older than asked
        assert sorted(client.jobs_since(ids[1])) == ids[1:]

        photo = Path(photos[0])
        canceled = client.create_job((photo.name, photo.read_bytes()), key=idempotency_key(photo.read_bytes(), None))
        assert client.http.post(f"{url}/api/v1/jobs/{canceled['id']}/cancel").status_code == 200
        capsys.readouterr()
        assert main(["submit", "--server", url, "--token", token, str(photo), "-o", str(tmp_path / "out")]) == 1
        assert f"failed: {photo}: job {canceled['id']} canceled\n" in capsys.readouterr().err


def test_collect_photos_takes_files_folders_and_globs_once_with_stable_names(tmp_path: Path) -> None:
    for name in ("one/x.png", "one/y.jpg", "two/x.png", "two/notes.txt", "refs/x.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    inputs = [str(tmp_path / "one"), str(tmp_path / "two" / "*.png"), str(tmp_path / "one" / "x.png"), "nothing*"]
    photos, missing = collect_photos(inputs, tmp_path / "out", tmp_path / "refs")
    assert [(p.source.relative_to(tmp_path).as_posix(), p.output.name) for p in photos] == [
        ("one/x.png", "x.png"),
        ("one/y.jpg", "y.png"),
        ("two/x.png", "x-2.png"),
    ]
    assert [p.reference.name if p.reference else None for p in photos] == ["x.jpg", None, "x.jpg"]
    assert missing == ["nothing*"]


def test_idempotency_keys_depend_on_the_content_alone() -> None:
    image = b"pixels"
    assert idempotency_key(image, None) == idempotency_key(bytes(image), None)
    assert idempotency_key(image, None) != idempotency_key(image, b"reference")
    assert idempotency_key(image, b"reference") != idempotency_key(b"other", b"reference")


def test_a_busy_answer_is_waited_out_and_a_refusal_keeps_the_servers_words() -> None:
    """A stand-in WSGI server answering 429 then 422, the answers a rate-limited, validating server gives."""
    paths: list[str] = []

    def answer(environ, start_response):
        paths.append(environ["PATH_INFO"])
        if len(paths) == 1:
            start_response("429 Too Many Requests", [("Retry-After", "0"), ("Content-Type", "application/json")])
            return [b'{"error": {"code": "rate_limited", "message": "slow down"}}']
        start_response("422 Unprocessable Entity", [("Content-Type", "application/json")])
        return [b'{"error": {"code": "not_an_image", "message": "image (x.png): not an image"}}']

    with serve(answer) as url, pytest.raises(ApiError) as refused:
        ApiClient(url).create_job(("x.png", b"not an image"), key="k")
    assert paths == ["/api/v1/jobs", "/api/v1/jobs"]
    assert str(refused.value) == "not_an_image: image (x.png): not an image (HTTP 422)"
