"""The portal in headless Chromium (Debian's ``chromium``) driven by Playwright, against a real worker.

Upload a LOL pair through the upload page, wait on the job page until the worker has succeeded, see the PSNR,
download the result, and check that the downloaded file is the job's result.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.fixtures.services import free_port
from tests.web.conftest import SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set PORTAL_SCREENSHOT=docs/img/portal-job.png to refresh the README's picture; by default it goes to tmp.
SCREENSHOT_ENV = "PORTAL_SCREENSHOT"


@pytest.fixture
def portal_url(running_platform) -> Iterator[str]:
    """The platform's Flask app (real enqueue to the real worker) served over HTTP on 127.0.0.1."""
    server = make_server("127.0.0.1", free_port(), running_platform.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_upload_a_pair_wait_see_psnr_and_download(
    running_platform, portal_url: str, browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1200, "height": 1100}, accept_downloads=True)
    page.set_default_timeout(120_000)
    page.goto(portal_url + "/")
    expect(page.locator("#auth-off")).to_be_visible()

    page.set_input_files("#files", str(SAMPLES / "low" / "2.png"))
    row = page.locator("#queue tbody tr")
    expect(row).to_have_count(1)
    row.locator("input.reference").set_input_files(str(SAMPLES / "high" / "2.png"))
    page.click("#upload-all")

    page.wait_for_url("**/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[-1])
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=120_000)
    job = running_platform.job(job_id)
    assert job["status"] == "succeeded" and job["metrics"]["psnr"] is not None
    expect(page.locator("#metric-psnr")).to_have_text(f"{job['metrics']['psnr']:.2f} dB")
    expect(page.locator("#metric-batch")).to_have_text(str(job["metrics"]["batch_size"]))
    expect(page.locator("#compare img.after")).to_be_visible()
    page.locator("#compare-range").fill("35")

    with page.expect_download() as download_info:
        page.click("#download")
    downloaded = tmp_path / "downloaded.png"
    download_info.value.save_as(downloaded)
    result = running_platform.client.get(f"/api/v1/jobs/{job_id}/result")
    assert downloaded.read_bytes() == result.data
    assert download_info.value.suggested_filename == "2-enhanced.png"

    page.goto(portal_url + "/jobs")
    expect(page.locator(f'tr[data-id="{job_id}"] .status')).to_have_text("succeeded")

    page.goto(f"{portal_url}/jobs/{job_id}")
    page.wait_for_load_state("networkidle")
    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "portal-job.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
