"""Start the whole platform locally as processes: web, a worker, a trainer, the scheduler (``make run`` calls this).

With no environment set this is the embedded default: SQLite (``var/lowlight.db``), a local object store
(``var/objects``) and kombu's SQLAlchemy transport over SQLite (``var/broker.db``) as the broker, so nothing
but Python is needed. The same variables as in production (DATABASE_URL, BROKER_URL, STORAGE_BACKEND, ...)
point it at PostgreSQL, Redis and S3 instead. The schema is migrated first (``alembic upgrade head``).

Ctrl-C or SIGTERM stops every child; if one child dies (say the worker cannot load its model), the others are
stopped too and the exit code is non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from web.core.settings import Settings  # noqa: E402

STOP_TIMEOUT_S = 30


def describe(settings: Settings) -> str:
    broker = settings.broker_url
    if broker.startswith("sqla+"):
        broker = f"kombu SQLAlchemy transport ({broker.removeprefix('sqla+')}), no server needed"
    storage = settings.local_storage_dir if settings.storage_backend == "local" else settings.s3_endpoint_url
    auth = "required" if settings.auth_required else "off (bound to loopback)"
    return (
        f"  portal    http://{settings.host}:{settings.port}/\n"
        f"  database  {settings.database_url.split('@')[-1]}\n"
        f"  broker    {broker.split('@')[-1]}\n"
        f"  storage   {settings.storage_backend}: {storage}\n"
        f"  model     {settings.model or 'packaged default'}\n"
        f"  tokens    {auth}\n"
        "  admin     promote, roll back, retrain: python -m web.cli create-token NAME --admin (SECURITY.md)"
    )


def commands(settings: Settings, var_dir: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "web": [python, "-m", "web"],
        "worker": [
            python, "-m", "celery", "-A", "worker.celery_app", "worker",
            "-Q", settings.queue_name, "--concurrency", "1", "--loglevel", "INFO", "-n", "worker@%h",
        ],
        # Retraining runs on its own queue and process, so it never blocks enhancement.
        "trainer": [
            python, "-m", "celery", "-A", "worker.celery_app", "worker",
            "-Q", "training", "--concurrency", "1", "--loglevel", "INFO", "-n", "trainer@%h",
        ],
        "beat": [
            python, "-m", "celery", "-A", "worker.celery_app", "beat",
            "--schedule", str(var_dir / "celerybeat-schedule"), "--loglevel", "INFO",
        ],
    }  # fmt: skip


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def migrate(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "upgrade", "head"]
    subprocess.run(command, env=env, check=True)


def stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child still running (warm shutdown), then SIGKILL whatever outlives the timeout."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"run_platform: {name} did not stop in {STOP_TIMEOUT_S}s; killing it", file=sys.stderr)
            child.kill()
            child.wait()


def supervise(children: dict[str, subprocess.Popen[bytes]], stopping: list[int]) -> int:
    """Wait until a signal arrives (exit 0) or a child dies (exit 1); stop the rest either way."""
    code = 0
    while not stopping:
        dead = {name: child.returncode for name, child in children.items() if child.poll() is not None}
        if dead:
            print(f"run_platform: {', '.join(f'{n} exited with {c}' for n, c in dead.items())}", file=sys.stderr)
            code = 1
            break
        time.sleep(0.5)
    print("run_platform: stopping", file=sys.stderr, flush=True)
    stop_all(children)
    return code


def main() -> int:
    settings = Settings.from_env()
    var_dir = Path("var")
    var_dir.mkdir(exist_ok=True)
    env = child_env()
    print("Starting the low-light platform:\n" + describe(settings), flush=True)
    migrate(env)
    stopping: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    children: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in commands(settings, var_dir).items():
        # A session of their own: Ctrl-C reaches only this script, which forwards it as SIGTERM.
        children[name] = subprocess.Popen(command, env=env, start_new_session=True)
    return supervise(children, stopping)


if __name__ == "__main__":
    sys.exit(main())
