"""The embedded broker's SQLite file when the platform's processes start together (as ``make run`` starts them)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from kombu import Connection

from web.core.broker import TRAINING_QUEUE, prepare_sqlite_broker, sqlite_broker_path

PROCESSES = 8


def _first_use(url: str, start: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    """What each process does first: make the broker ready, then publish to its queue."""
    start.wait()
    try:
        prepare_sqlite_broker(url, ("enhance", TRAINING_QUEUE))
        with Connection(url) as connection:
            queue = connection.SimpleQueue("enhance")
            queue.put({"job": 1})
            queue.close()
    except Exception as exc:  # reported to the test, which fails on any
        errors.put(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")


def test_processes_starting_together_on_a_fresh_broker_file_all_get_through(tmp_path: Path) -> None:
    # Without the lock, 8 processes racing on a fresh file fail here with "table kombu_queue already exists" or
    # "UNIQUE constraint failed: kombu_queue.name" (kombu creates both on first use in each process): in 3 runs
    # of one round without it, 3 failed, each with 2 to 6 of the 8 processes refused.
    context = multiprocessing.get_context("spawn")
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    start, errors = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=_first_use, args=(url, start, errors)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    failures = [errors.get() for _ in range(errors.qsize())]
    assert failures == []
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    with Connection(url) as connection:
        assert connection.SimpleQueue("enhance").qsize() == PROCESSES


def test_only_sqlite_files_need_preparing(tmp_path: Path) -> None:
    assert sqlite_broker_path("redis://127.0.0.1:6379/0") is None
    assert sqlite_broker_path("sqla+sqlite:///:memory:") is None
    assert sqlite_broker_path(f"sqla+sqlite:///{tmp_path}/var/broker.db") == tmp_path / "var" / "broker.db"
    prepare_sqlite_broker("redis://127.0.0.1:1/0", ["enhance"])  # never connects to a broker it need not prepare
    prepare_sqlite_broker(f"sqla+sqlite:///{tmp_path}/var/broker.db", ["enhance"])
    assert (tmp_path / "var" / "broker.db").is_file()
