"""``lowlight submit``: send a set of photos to a running platform and bring the results home.

Everything goes through the HTTP API (:mod:`web.client`); nothing here touches a database or storage, and
nothing imports Flask or TensorFlow. Each upload carries an Idempotency-Key made of its content, so running
the same command again after an interruption finds the jobs already made (and their results) instead of
queueing them twice. Results are written as each job succeeds; a file that fails gets one line with the
server's reason, and the exit code is 1 when any did.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

    from web.client import ApiClient

# The formats the server accepts (web.core.uploads); folders are searched for these, not recursively.
PHOTO_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm"})
FINAL = frozenset({"succeeded", "failed", "canceled"})
# One poll is one request per hundred unfinished jobs, so it can be frequent: a result waits at most 2 s.
POLL_MIN_S, POLL_MAX_S = 0.25, 2.0


@dataclass
class Photo:
    """One file to enhance, its reference (matched by name) and where its result goes."""

    source: Path
    output: Path
    reference: Path | None = None
    job: dict[str, Any] | None = None
    error: str | None = None

    def record(self) -> dict[str, Any]:
        """What ``--json`` prints for this file: the job's final record as the server gave it."""
        return {
            "file": str(self.source),
            "reference": str(self.reference) if self.reference else None,
            "output": str(self.output) if self.error is None else None,
            "job": self.job,
            "error": self.error,
        }


def _matches(item: str) -> list[Path]:
    path = Path(item)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if path.is_file():
        return [path]
    return sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())


def collect_photos(
    inputs: Sequence[str], out_dir: Path, references: Path | None = None
) -> tuple[list[Photo], list[str]]:
    """Files, folders and globs in order, once each, with ``OUT/<stem>.png`` (``<stem>-2.png`` for a second
    photo of that stem), and the inputs that matched nothing. The same command always gives the same names."""
    by_stem: dict[str, Path] = {}
    if references is not None:
        by_stem = {p.stem: p for p in _matches(str(references))}
    sources = list(dict.fromkeys(path for item in inputs for path in _matches(item)))
    missing = [item for item in inputs if not _matches(item)]
    photos, taken = [], set()
    for source in sources:
        output, counter = out_dir / f"{source.stem}.png", 2
        while output in taken:
            output, counter = out_dir / f"{source.stem}-{counter}.png", counter + 1
        taken.add(output)
        photos.append(Photo(source, output, by_stem.get(source.stem)))
    return photos, missing


class Submission:
    """Uploads every photo, polls the unfinished jobs with backoff and downloads each result once it exists.

    The server offers no stream of job events (web/openapi.yaml), so the client polls the job list.
    """

    def __init__(self, client: ApiClient, photos: list[Photo], bar: tqdm) -> None:
        self.client = client
        self.photos = photos
        self.bar = bar
        self.waiting: list[Photo] = []

    def run(self) -> None:
        next_poll = time.monotonic() + POLL_MIN_S
        for photo in self.photos:
            self._upload(photo)
            if time.monotonic() >= next_poll:  # results of early uploads come home while later ones go out
                self._poll()
                next_poll = time.monotonic() + POLL_MIN_S
        wait = POLL_MIN_S
        while self.waiting:
            time.sleep(wait)
            wait = POLL_MIN_S if self._poll() else min(POLL_MAX_S, wait * 2)

    def _upload(self, photo: Photo) -> None:
        from web.client import ApiError, idempotency_key

        try:
            image = photo.source.read_bytes()
            reference = photo.reference.read_bytes() if photo.reference else None
        except OSError as exc:
            return self._finish(photo, f"cannot read it: {exc.strerror or exc}")
        key = idempotency_key(image, reference)
        named_reference = (photo.reference.name, reference) if photo.reference and reference is not None else None
        try:
            photo.job = self.client.create_job((photo.source.name, image), named_reference, key)
        except ApiError as exc:
            if exc.status in (401, 403):
                raise  # every other upload would be refused the same way
            return self._finish(photo, f"refused: {exc}")
        self._settle(photo)

    def _poll(self) -> int:
        """Read the unfinished jobs (a page of the job list per hundred); returns how many became final."""
        from web.client import ApiError

        before = len(self.waiting)
        current = self.client.jobs_since(min(photo.job["id"] for photo in self.waiting))
        for photo in list(self.waiting):
            try:  # a job missing from the list was deleted meanwhile: get_job says so
                photo.job = current.get(photo.job["id"]) or self.client.get_job(photo.job["id"])
            except ApiError as exc:
                self.waiting.remove(photo)
                self._finish(photo, f"job {photo.job['id']}: {exc}")
                continue
            self._settle(photo)
        return before - len(self.waiting)

    def _settle(self, photo: Photo) -> None:
        status = photo.job["status"]
        if status not in FINAL:
            if photo not in self.waiting:
                self.waiting.append(photo)
            return
        if photo in self.waiting:
            self.waiting.remove(photo)
        if status == "succeeded":
            return self._download(photo)
        error = photo.job.get("error")
        detail = f": {error['code']}: {error['message']}" if error else ""
        self._finish(photo, f"job {photo.job['id']} {status}{detail}")

    def _download(self, photo: Photo) -> None:
        from web.client import ApiError

        photo.output.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_result(photo.job, photo.output)
        except ApiError as exc:  # deleted or expired between the poll and the download: this file only
            return self._finish(photo, f"the result of job {photo.job['id']}: {exc}")
        self._finish(photo, None)

    def _finish(self, photo: Photo, error: str | None) -> None:
        photo.error = error
        if error is not None:
            self.bar.write(f"failed: {photo.source}: {error}", file=sys.stderr)
        self.bar.update(1)


def add_submit_parser(commands: argparse._SubParsersAction) -> None:
    """The ``submit`` subcommand on the ``lowlight`` parser (only argparse is imported for it)."""
    submit = commands.add_parser("submit", help="enhance photos on a running platform server, over its HTTP API")
    submit.add_argument("photos", nargs="+", metavar="PHOTO", help="files, folders or globs")
    submit.add_argument("-o", "--out", required=True, type=Path, help="folder for the results (PNG)")
    submit.add_argument(
        "--server", default=os.environ.get("LOWLIGHT_SERVER"), help="e.g. http://host:8000 (env LOWLIGHT_SERVER)"
    )
    submit.add_argument("--token", default=os.environ.get("LOWLIGHT_TOKEN"), help="API token (env LOWLIGHT_TOKEN)")
    submit.add_argument("--references", type=Path, help="folder of references, matched to photos by file name")
    submit.add_argument("--json", action="store_true", help="print the jobs' final records as JSON")


def run_submit(args: argparse.Namespace) -> int:
    """0 when every photo was enhanced and downloaded, 1 when some failed, 2 when nothing could be tried."""
    from tqdm import tqdm

    from web.client import ApiClient, ApiError, ServerUnavailable

    if not args.server:
        print("error: say which server: --server URL or LOWLIGHT_SERVER", file=sys.stderr)
        return 2
    photos, missing = collect_photos(args.photos, args.out, args.references)
    for item in missing:
        print(f"error: {item}: no such file, folder or matching glob", file=sys.stderr)
    if not photos:
        return 2
    unmatched = sum(1 for photo in photos if photo.reference is None)
    if args.references is not None and unmatched:
        print(f"note: {unmatched} photo(s) have no reference of the same name in {args.references}", file=sys.stderr)
    client = ApiClient(args.server, args.token)
    with tqdm(total=len(photos), unit="photo", desc="submit", file=sys.stderr) as bar:
        try:
            client.health()
            Submission(client, photos, bar).run()
        except (ServerUnavailable, ApiError, OSError) as exc:  # OSError: the output folder cannot be written
            bar.write(f"error: {exc}; run the same command again to resume", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            bar.write("interrupted; run the same command again to resume", file=sys.stderr)
            return 130
    enhanced = sum(1 for photo in photos if photo.error is None)
    failed = len(photos) - enhanced + len(missing)
    if args.json:
        print(json.dumps([photo.record() for photo in photos], indent=2))
    summary = f"{enhanced} enhanced into {args.out}, {failed} failed"
    print(summary, file=sys.stderr if args.json else sys.stdout)
    return 1 if failed else 0
