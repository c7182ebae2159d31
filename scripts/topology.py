"""The docker-compose.yml topology as processes on this machine, with faults, and throughput at 1, 2 and 4 workers.

Starts a fresh PostgreSQL database (on the server at 127.0.0.1:5432), its own redis-server on a free port (so it
can restart it), SeaweedFS (`weed mini`, the bucket created with `weed shell` as the compose file does), the web
app (gunicorn through `python -m web`), beat, and Celery workers started the way tests/fixtures/platform.py starts
them, all running a tiny untrained mirnet-lite. Then:

1. throughput: ``--bench-jobs`` jobs through the HTTP API with 1 worker, again with 2, again with 4;
2. faults: ``--jobs`` jobs; one worker is SIGKILLed while it runs a batch, Redis is restarted, and every job must
   end ``succeeded`` exactly once (one final write in all worker logs, or none for a write cut off by the kill;
   attempts 2 only for the killed batch),
   with a result of the input's size that matches an independent enhancement for a sample of jobs.

    .venv/bin/python scripts/topology.py --jobs 200

Exit code 0 when every check holds; the logs stay in the printed work folder when one does not.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests.fixtures.platform import WorkerProcess, migrate, settings_env, start_worker, write_tiny_model  # noqa: E402
from tests.fixtures.services import free_port, postgres_database  # noqa: E402
from web.core.settings import Settings  # noqa: E402

FINAL = ("succeeded", "failed", "canceled")
CLAIMED = re.compile(r"job \d+: claimed a batch of \d+: jobs \[([\d, ]+)\]")
FINAL_WRITE = re.compile(r"job (\d+) (?:succeeded|failed|released)\b")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class RedisServer:
    """A redis-server of our own on 127.0.0.1, persisted with appendonly like the compose service."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.workdir), "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = spawn(command, self.workdir / "redis.log")
        wait_until(lambda: port_open(self.port), 20, "redis-server listening")

    def restart(self) -> float:
        """Stop (SIGTERM: it writes its append-only file) and start again on the same port; seconds down."""
        assert self.process is not None
        started = time.monotonic()
        stop_process(self.process)
        self.start()
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@contextmanager
def seaweedfs(workdir: Path, bucket: str, access_key: str, secret_key: str) -> Iterator[str]:
    """`weed mini` on free ports; the bucket is made with `weed shell`, the command docker-compose.yml runs."""
    import json

    beside_python = Path(sys.executable).with_name("weed")
    weed = str(beside_python) if beside_python.exists() else (shutil.which("weed") or "weed")
    identity = {"name": "topology", "credentials": [{"accessKey": access_key, "secretKey": secret_key}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    (workdir / "s3.json").write_text(json.dumps({"identities": [identity]}))
    (workdir / "weed").mkdir()
    http = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc = {name: free_port() for name in http}
    command = [
        weed, "mini", f"-dir={workdir / 'weed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={workdir / 's3.json'}",
        *(f"-{name}.port={port}" for name, port in http.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
    ]  # fmt: skip
    process = spawn(command, workdir / "weed.log")
    try:
        endpoint = f"http://127.0.0.1:{http['s3']}"
        wait_until(lambda: _answers(f"{endpoint}/healthz"), 60, "SeaweedFS S3 healthz")
        shell = [weed, "shell", f"-master=127.0.0.1:{http['master']}.{grpc['master']}"]
        shell.append(f"-filer=127.0.0.1:{http['filer']}.{grpc['filer']}")
        script = f"s3.bucket.create -name {bucket}\n"

        # S3 can answer before the filer takes shell commands; the command succeeds once the bucket exists.
        def bucket_created() -> bool:
            done = subprocess.run(shell, input=script.encode(), capture_output=True, timeout=60)
            return done.returncode == 0

        wait_until(bucket_created, 60, f"SeaweedFS bucket {bucket} (weed shell)", interval=1.0)
        yield endpoint
    finally:
        stop_process(process)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def dark_png(seed: int, side: int) -> bytes:
    """A dark photo-like image (gradients plus noise) of its own size per seed: 3/4 to all of ``side`` wide."""
    rng = np.random.default_rng(seed)
    width = int(rng.integers(3 * side // 4, side + 1))
    height = int(rng.integers(width // 2, 3 * width // 4 + 1))
    y, x = np.mgrid[0:height, 0:width]
    base = (x[..., None] * rng.uniform(0.1, 0.3, 3) + y[..., None] * rng.uniform(0.1, 0.3, 3)) % 60
    pixels = np.clip(base + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Platform:
    settings: Settings
    workdir: Path
    base_url: str
    redis: RedisServer
    image_side: int
    workers: list[WorkerProcess] = field(default_factory=list)
    inputs: dict[int, bytes] = field(default_factory=dict)
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.engine = create_engine(self.settings.database_url, pool_size=1)

    def add_workers(self, count: int) -> None:
        started = [start_worker(self.settings, self.workdir, f"w{len(self.workers) + i + 1}") for i in range(count)]
        for worker in started:
            worker.wait_ready(timeout=300)
        self.workers += started

    def submit(self, count: int) -> list[int]:
        """Upload ``count`` new images, eight at a time (the web tier's 2 processes x 4 threads)."""
        images = [dark_png(seed, self.image_side) for seed in range(len(self.inputs), len(self.inputs) + count)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(self._upload, images))
        self.inputs.update(zip(ids, images, strict=True))
        return ids

    def _upload(self, data: bytes) -> int:
        response = requests.post(f"{self.base_url}/api/v1/jobs", files={"image": ("photo.png", data)}, timeout=60)
        response.raise_for_status()
        return response.json()["id"]

    def statuses(self, ids: list[int]) -> dict[int, str]:
        """Read straight from the job table: cheaper to poll than one API request per job."""
        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT id, status FROM jobs WHERE id = ANY(:ids)"), {"ids": ids})
            return {job_id: status for job_id, status in rows}

    def wait_final(self, ids: list[int], timeout: float) -> None:
        wait_until(lambda: all(s in FINAL for s in self.statuses(ids).values()), timeout, "jobs final", 0.25)

    def job(self, job_id: int) -> dict:
        response = self.http.get(f"{self.base_url}/api/v1/jobs/{job_id}", timeout=30)
        response.raise_for_status()
        return response.json()

    def result(self, job_id: int) -> bytes:
        response = self.http.get(f"{self.base_url}/api/v1/jobs/{job_id}/result", timeout=30)
        response.raise_for_status()
        return response.content

    def logs(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)


def measure(platform: Platform, jobs: int) -> float:
    """Jobs per second from the first upload to the last job's success."""
    started = time.monotonic()
    ids = platform.submit(jobs)
    platform.wait_final(ids, timeout=600)
    elapsed = time.monotonic() - started
    failed = {i: s for i, s in platform.statuses(ids).items() if s != "succeeded"}
    if failed:
        raise RuntimeError(f"throughput jobs did not succeed: {failed}")
    return jobs / elapsed


def unfinished_batch(worker: WorkerProcess) -> list[int]:
    """The jobs of the worker's last claimed batch (by its log) that have no final write in its log yet."""
    log = worker.log()
    claims = list(CLAIMED.finditer(log))
    if not claims:
        return []
    last = claims[-1]
    written = {int(job_id) for job_id in FINAL_WRITE.findall(log, last.end())}
    return [int(job_id) for job_id in last[1].split(", ") if int(job_id) not in written]


def kill_mid_batch(platform: Platform, timeout: float = 120) -> tuple[WorkerProcess, list[int]]:
    """SIGKILL the first worker holding claims it has not finished, by its log and the job table.

    A worker's log says which jobs it claimed; the table says they are still ``processing``. Telling a batch by
    the time since a message arrived is not enough: on two cores, four workers can starve a worker's no-op
    message (its job already in another worker's batch) past any such wait.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in platform.workers:
            batch = unfinished_batch(worker)
            if batch and all(status == "processing" for status in platform.statuses(batch).values()):
                worker.kill()
                return worker, batch
        time.sleep(0.02)
    raise TimeoutError("no worker was seen holding a batch to be killed in")


def independent_enhancer(model_path: Path, settings: Settings) -> Callable[[bytes], np.ndarray]:
    """The model loaded in this process (not by a worker): PNG bytes in, uint8 RGB out."""
    from mirnet.imageio import decode_image, to_uint8
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    enhancer = Enhancer(load_model(str(model_path)), settings.precision, settings.tile, settings.max_batch)
    return lambda png: to_uint8(enhancer.enhance(decode_image(png).rgb))


def verify(
    platform: Platform, ids: list[int], model_path: Path, sample: int, killed_at: datetime, killed_batch: list[int]
) -> list[str]:
    """Every job succeeded exactly once with a correct result, only the killed batch's jobs claimed twice.

    A final write is logged right after its commit, so a kill can fall between the two: a job of the first
    attempt that became final within a second before the kill may have no log line (never two)."""
    problems: list[str] = []
    logs = platform.logs()
    jobs = {job_id: platform.job(job_id) for job_id in ids}
    for job_id, job in jobs.items():
        if job["status"] != "succeeded":
            problems.append(f"job {job_id} ended {job['status']}: {job['error']}")
            continue
        writes = len(re.findall(rf"job {job_id} succeeded\b", logs))
        completed = datetime.fromisoformat(job["completed_at"])
        unlogged_at_kill = job["attempts"] == 1 and timedelta(0) <= killed_at - completed <= timedelta(seconds=1)
        if writes == 0 and unlogged_at_kill:
            print(f"  job {job_id}: final {(killed_at - completed).total_seconds():.3f} s before the kill, unlogged")
        elif writes != 1:
            problems.append(f"job {job_id}: {writes} final writes in the worker logs")
        result = Image.open(io.BytesIO(platform.result(job_id)))
        source = Image.open(io.BytesIO(platform.inputs[job_id]))
        if result.size != source.size:
            problems.append(f"job {job_id}: result {result.size} for an input of {source.size}")
    retaken = [job_id for job_id, job in jobs.items() if job["attempts"] > 1]
    if not retaken:
        problems.append("no job was taken over after the kill (attempts all 1): the kill missed the batch")
    if not set(retaken) <= set(killed_batch) or any(job["attempts"] > 2 for job in jobs.values()):
        problems.append(f"jobs outside the killed batch {killed_batch} were claimed again: {sorted(retaken)}")
    enhance = independent_enhancer(model_path, platform.settings)
    for job_id in ids[:: max(1, len(ids) // sample)][:sample]:
        expected = enhance(platform.inputs[job_id])
        got = np.asarray(Image.open(io.BytesIO(platform.result(job_id))).convert("RGB"))
        difference = int(np.abs(expected.astype(int) - got.astype(int)).max())
        if difference > 1:
            problems.append(f"job {job_id}: result differs from an independent enhancement by {difference}")
    print(f"  taken over after the kill (attempts 2): {len(retaken)} jobs {sorted(retaken)}")
    return problems


def build_settings(workdir: Path, database_url: str, broker_url: str, endpoint: str, keys: tuple[str, str]) -> Settings:
    return Settings.from_env(
        {},
        database_url=database_url,
        broker_url=broker_url,
        storage_backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket="lowlight",
        s3_access_key=keys[0],
        s3_secret_key=keys[1],
        secret_key="topology-" + keys[1],
        secret_key_file=str(workdir / "secret_key"),
        model=str(workdir / "tiny.keras"),
        max_batch=4,
        max_batch_delay_ms=200,
        # Short limits, so leases (10 s) and lost-message resends (45 s) happen within the run.
        task_soft_time_limit=30,
        task_time_limit=40,
        rate_limit_uploads="100000/minute",  # the load run uploads from one address, faster than a person
    )


def start_web_and_beat(settings: Settings, workdir: Path, stack: ExitStack) -> str:
    port = free_port()
    env = {**os.environ, **settings_env(settings), "HOST": "127.0.0.1", "PORT": str(port), "WEB_WORKERS": "2"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    web = spawn([sys.executable, "-m", "web"], workdir / "web.log", env)
    stack.callback(stop_process, web)
    beat_command = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "beat",
        "--schedule", str(workdir / "celerybeat-schedule"), "--loglevel", "INFO",
    ]  # fmt: skip
    beat = spawn(beat_command, workdir / "beat.log", env)
    stack.callback(stop_process, beat)
    base_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{base_url}/readyz"), 60, "web /readyz")
    return base_url


def run(args: argparse.Namespace, workdir: Path) -> int:
    print(f"topology in {workdir} ({os.cpu_count()} CPU cores)", flush=True)
    write_tiny_model(workdir / "tiny.keras", channels=args.channels, groups=1, blocks=args.blocks)
    keys = ("topology", uuid.uuid4().hex)
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database("topology"))
        migrate(database_url)
        redis = RedisServer(workdir)
        redis.start()
        stack.callback(redis.stop)
        endpoint = stack.enter_context(seaweedfs(workdir, "lowlight", *keys))
        settings = build_settings(workdir, database_url, redis.url, endpoint, keys)
        platform = Platform(settings, workdir, start_web_and_beat(settings, workdir, stack), redis, args.side)
        stack.callback(lambda: [worker.stop() for worker in platform.workers])
        stack.callback(platform.engine.dispose)
        print("  postgres, redis-server, weed mini, web (gunicorn), beat: up", flush=True)

        rates = {}
        for total in (1, 2, 4):
            platform.add_workers(total - len(platform.workers))
            rates[total] = measure(platform, args.bench_jobs)
            print(f"  {total} worker{'s' if total > 1 else ' '}: {rates[total]:5.2f} jobs/s", flush=True)

        started = time.monotonic()
        first = platform.submit(args.jobs // 2)
        victim, batch = kill_mid_batch(platform)
        killed_at = datetime.now(UTC)
        print(
            f"  SIGKILLed {victim.log_path.stem} (pid {victim.process.pid}) in the middle of a batch "
            f"(holding jobs {sorted(batch)})",
            flush=True,
        )
        print(f"  restarted redis-server (down {redis.restart():.1f} s)", flush=True)
        second = platform.submit(args.jobs - len(first))
        platform.wait_final(first + second, timeout=args.timeout)
        print(f"  {args.jobs} jobs final after {time.monotonic() - started:.1f} s", flush=True)
        problems = verify(platform, first + second, workdir / "tiny.keras", args.sample, killed_at, batch)
    report(args, rates, problems)
    if problems:  # the work folder may not outlive the machine (CI): the killed worker's last words, here
        print(f"\nthe last lines of {victim.log_path.name}:\n" + "\n".join(victim.log().splitlines()[-30:]))
    return 1 if problems else 0


def report(args: argparse.Namespace, rates: dict[int, float], problems: list[str]) -> None:
    cores = os.cpu_count()
    print(f"\nthroughput ({args.bench_jobs} jobs per step, images up to {args.side} px wide, mirnet-lite "
          f"channels={args.channels}, batches of up to 4, measured in this run):")  # fmt: skip
    for workers, rate in rates.items():
        print(f"  {workers} worker{'s' if workers > 1 else ' '}  {rate:5.2f} jobs/s  x{rate / rates[1]:.2f}")
    gain = rates[4] / rates[2]
    print(
        f"  expected on {cores} CPU cores: the curve flattens at {cores} workers (they share the same {cores} cores; "
        f"with one GPU per worker it keeps rising)\n  measured here: 4 workers give x{gain:.2f} of what 2 give"
    )
    if gain > 1.1:
        print(
            "  (more than the cores alone explain: on a shared machine more worker processes also take a larger "
            "share of the CPU from other work, and they overlap each other's upload, database and storage waits)"
        )
    if problems:
        print(f"\nFAILED: {len(problems)} problems", *problems, sep="\n  ")
    else:
        print(
            f"\nOK: all {args.jobs} jobs succeeded exactly once (one final write each; attempts 2 only for the "
            f"killed batch), results of the inputs' sizes, {args.sample} equal to an independent enhancement"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs of the fault run")
    parser.add_argument("--bench-jobs", type=int, default=32, help="jobs per throughput step")
    parser.add_argument("--side", type=int, default=384, help="largest image width in pixels")
    parser.add_argument("--channels", type=int, default=16, help="width of the mirnet-lite model")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks per group of the tiny model")
    parser.add_argument("--sample", type=int, default=3, help="results compared with an independent run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the fault run's jobs to finish")
    parser.add_argument("--keep", action="store_true", help="keep the work folder even when everything passed")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="topology-"))
    code = 1
    try:
        code = run(args, workdir)
    finally:
        if code == 0 and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
