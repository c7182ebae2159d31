"""What the platform costs on top of the model: the same images through the bare Enhancer and the whole platform.

    python scripts/bench_platform.py [--images 12] [--model FILE] [--workers 1 2]

(a) The bare ``Enhancer`` in this process, in batches of MAX_BATCH as the worker runs them, loaded and warmed
up as a worker loads it (``worker.model.load_enhancer``), so neither path pays for tracing in its time.
(b) The whole platform with real services: a fresh PostgreSQL database, Redis, SeaweedFS, the web tier
(``python -m web``, gunicorn) and Celery workers, driven by ``lowlight submit`` in its own process, all images
uploaded at once so the queue stays full. It prints images per second of both, the platform's overhead over the
model's own time, and where the platform's time goes, from the job rows' timestamps; then the same with each
count of ``--workers``.

The services come from the tests' fixtures (tests/fixtures), so this is a development tool: it needs the test
extras (``make install``) and the PostgreSQL and Redis of the test setup (TEST_POSTGRES_ADMIN_URL,
TEST_REDIS_HOST). Figures from one run only: compare the ratios, these machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures.platform import migrate, settings_env, start_worker  # noqa: E402
from tests.fixtures.services import REDIS_HOST, SeaweedFS, free_port, postgres_database, run_seaweedfs  # noqa: E402
from web.core.settings import Settings  # noqa: E402

DATA = REPO_ROOT.parent / "shared" / "data" / "lol"
DEFAULT_FOLDERS = [DATA / "eval15" / "low", DATA / "sample" / "low"]


@dataclass
class BareRun:
    seconds: float  # the model alone (Enhancer.enhance_many)
    decode_s: float
    encode_s: float
    precision: str


@dataclass
class PlatformRun:
    workers: int
    seconds: float  # lowlight submit's wall time: first upload to last download
    phases: dict[str, float]


def pick_images(folders: list[Path], count: int) -> list[Path]:
    """Distinct files: the client's Idempotency-Keys are made of content, so copies would become one job."""
    files = sorted((p for folder in folders for p in folder.glob("*.png")), key=lambda p: (p.parent, p.name))
    if len(files) < count:
        raise SystemExit(f"only {len(files)} images in {', '.join(map(str, folders))}; asked for {count}")
    return files[:count]


def run_bare(images: list[Path], settings: Settings) -> BareRun:
    from mirnet.imageio import decode_image, encode_png
    from worker.model import load_enhancer

    enhancer = load_enhancer(settings)
    batches = [images[i : i + settings.max_batch] for i in range(0, len(images), settings.max_batch)]
    model_s = decode_s = encode_s = 0.0
    for batch in batches:
        started = time.perf_counter()
        decoded = [decode_image(p.read_bytes()) for p in batch]
        decoded_at = time.perf_counter()
        outputs = enhancer.enhance_many([d.rgb for d in decoded])
        enhanced_at = time.perf_counter()
        for item, output in zip(decoded, outputs, strict=True):
            encode_png(item, output)
        decode_s += decoded_at - started
        model_s += enhanced_at - decoded_at
        encode_s += time.perf_counter() - enhanced_at
    return BareRun(model_s, decode_s, encode_s, enhancer.precision)


def _child_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {**os.environ, **settings_env(settings), **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env | {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


@contextmanager
def serving(settings: Settings, workdir: Path, workers: int) -> Iterator[str]:
    """The web tier and ``workers`` Celery workers, ready; yields the server's URL."""
    import requests

    log = (workdir / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "web"], env=_child_env(settings, WEB_WORKERS="1"), stdout=log, stderr=log
    )
    started = [start_worker(settings, workdir, f"w{n}") for n in range(workers)]
    url = f"http://127.0.0.1:{settings.port}"
    try:
        for worker in started:
            worker.wait_ready(timeout=600)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=2).raise_for_status()
                break
            except requests.RequestException as exc:
                if time.monotonic() > deadline or web.poll() is not None:
                    log_tail = (workdir / "web.log").read_text()[-2000:]
                    raise RuntimeError(f"the web tier did not start:\n{log_tail}") from exc
                time.sleep(0.3)
        yield url
    finally:
        for worker in started:
            worker.stop()
        web.terminate()
        web.wait(timeout=30)
        log.close()


def _intervals_union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def phases_of(rows: list[dict], began: float, ended: float) -> dict[str, float]:
    """Where the wall time of the run went, from the job rows' timestamps (epoch seconds).

    The phases add up to the wall time: before the first claim (first upload, broker, batch collection),
    the workers busy (claim to completion: read, decode, model, encode, result upload, scoring, database),
    no worker busy between the first claim and the last completion, and after the last completion (the
    client's last poll and downloads). Uploads and queue waits overlap the work; they are shown as means.
    """
    first_claim = min(r["started"] for r in rows)
    last_done = max(r["completed"] for r in rows)
    busy = _intervals_union([(r["started"], r["completed"]) for r in rows])
    return {
        "before first claim": first_claim - began,
        "workers busy": busy,
        "no worker busy": (last_done - first_claim) - busy,
        "after last completion": ended - last_done,
        "uploads done after": max(r["created"] for r in rows) - began,
        "mean queue wait": sum(r["started"] - r["created"] for r in rows) / len(rows),
        "mean batch": sum(r["batch_size"] for r in rows) / len(rows),
    }


def read_rows(database_url: str) -> list[dict]:
    from sqlalchemy import select

    from web.core.db import make_engine
    from web.core.models import Job

    engine = make_engine(database_url)
    with engine.connect() as connection:
        jobs = connection.execute(select(Job.status, Job.created_at, Job.started_at, Job.completed_at, Job.batch_size))
        rows = [
            {
                "created": j.created_at.timestamp(),
                "started": j.started_at.timestamp(),
                "completed": j.completed_at.timestamp(),
                "batch_size": j.batch_size,
            }
            for j in jobs
            if j.status == "succeeded"
        ]
    engine.dispose()
    return rows


def run_platform(images: list[Path], base: dict, seaweed: SeaweedFS, workers: int, workdir: Path) -> PlatformRun:
    workdir.mkdir()
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    with postgres_database("bench") as database_url:
        settings = seaweed.settings(bucket, database_url=database_url, port=free_port(), **base)
        migrate(database_url)
        with serving(settings, workdir, workers) as url:
            command = [sys.executable, "-m", "worker.cli", "submit", "--server", url, "-o", str(workdir / "out")]
            began = time.time()
            env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # a client: no platform settings
            done = subprocess.run([*command, *map(str, images)], env=env, capture_output=True, text=True)
            ended = time.time()
        if done.returncode != 0:
            raise RuntimeError(f"lowlight submit exited with {done.returncode}:\n{done.stderr[-3000:]}")
        rows = read_rows(database_url)
    if len(rows) != len(images):
        raise RuntimeError(f"{len(rows)} of {len(images)} jobs succeeded")
    phases = phases_of(rows, began, ended)
    phases["result uploads redone"] = time_storage(seaweed, bucket, sorted((workdir / "out").glob("*.png")))
    return PlatformRun(workers, ended - began, phases)


def time_storage(seaweed: SeaweedFS, bucket: str, results: list[Path]) -> float:
    """Seconds to put the run's result PNGs into its bucket again, as the worker stores them: the share of
    "workers busy" that the result upload takes, which the job rows cannot separate."""
    from web.core.storage import S3Storage

    storage = S3Storage(seaweed.client(), bucket)
    payloads = [(f"again/{path.name}", path.read_bytes()) for path in results]
    started = time.perf_counter()
    for key, data in payloads:
        storage.put_bytes(key, data, content_type="image/png")
    return time.perf_counter() - started


PHASES_OF_WALL = ("before first claim", "workers busy", "no worker busy", "after last completion")


def report(images: list[Path], bare: BareRun, runs: list[PlatformRun]) -> None:
    n = len(images)
    print(f"{n} images ({', '.join(sorted({p.parent.parent.name for p in images}))}), precision {bare.precision}")
    print(f"(a) bare Enhancer, model only   {n / bare.seconds:7.3f} images/s  ({bare.seconds:.1f} s)")
    with_io = bare.seconds + bare.decode_s + bare.encode_s
    print(
        f"    + decode and PNG encode     {n / with_io:7.3f} images/s  ({bare.decode_s:.1f} s + {bare.encode_s:.1f} s)"
    )
    for run in runs:
        print(f"(b) platform, {run.workers} worker(s)       {n / run.seconds:7.3f} images/s  ({run.seconds:.1f} s)")
        print(f"    overhead over the model's own time: {100 * (run.seconds / bare.seconds - 1):+.1f}%")
        working = run.phases["workers busy"] + run.phases["no worker busy"]  # first claim to last completion
        print(
            f"    with the queue full (first claim to last completion): {n / working:.3f} images/s, "
            f"{100 * (working / bare.seconds - 1):+.1f}% over the model"
        )
        if run is not runs[0]:
            print(f"    throughput x{runs[0].seconds / run.seconds:.2f} of {runs[0].workers} worker(s)")
        for name, value in run.phases.items():
            unit = "" if name == "mean batch" else " s"
            share = f"  ({100 * value / run.seconds:4.1f}% of the run)" if name in PHASES_OF_WALL else ""
            print(f"      {name:<24}{value:7.2f}{unit}{share}")
        if run.workers == 1:
            beyond = run.phases["workers busy"] - bare.seconds
            print(f"      {'busy beyond the model':<24}{beyond:7.2f} s  (read, decode, encode, store, score, database)")
            print(f"        of which decode {bare.decode_s:.2f} s and PNG encode {bare.encode_s:.2f} s as in (a)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=12, help="how many distinct images (default 12)")
    parser.add_argument(
        "--folder", type=Path, action="append", help="where to take them (default LOL eval15 + sample low/)"
    )
    parser.add_argument("--model", default=None, help="a .keras file (default: the packaged model)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run (default 1 2)")
    parser.add_argument("--max-batch", type=int, default=Settings.max_batch, help="MAX_BATCH of the worker")
    args = parser.parse_args()
    images = pick_images(args.folder or DEFAULT_FOLDERS, args.images)
    settings = Settings.from_env({}, model=args.model, max_batch=args.max_batch)
    bare = run_bare(images, settings)
    base = {
        "model": args.model,
        "precision": bare.precision,  # decided once, here: the workers need not probe again
        "max_batch": args.max_batch,
        "broker_url": f"redis://{REDIS_HOST}/{random.randint(1, 15)}",
        "queue_name": f"bench-{uuid.uuid4().hex[:8]}",  # a Redis db others may use: our own keys only
        "secret_key": uuid.uuid4().hex,
    }
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-platform-")))
        seaweed = stack.enter_context(run_seaweedfs(Path(tempfile.mkdtemp(dir=root))))
        runs = [run_platform(images, base, seaweed, count, root / f"workers-{count}") for count in args.workers]
    report(images, bare, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
