"""Two switches of the active version at the same moment (an operator's promote while the gate promotes, two
operators) on PostgreSQL: the later one waits for the earlier and wins; neither fails, and exactly one version
is active afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from web.core.registry import services as registry
from web.core.storage import LocalStorage

CARD = {"architecture": "mirnet-lite", "arguments": {}}


def _in_thread(action: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:  # reported by the test, not swallowed
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _wait_until_a_backend_waits_for_a_lock(sessions: sessionmaker[Session], timeout: float = 20.0) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as probe:
            if probe.scalar(query):
                return
        time.sleep(0.05)
    raise AssertionError("the second switch never waited for the first")


def test_a_promote_during_another_switch_waits_for_it_and_wins(
    postgres_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    sessions = postgres_sessions
    storage = LocalStorage(str(tmp_path / "objects"))
    with sessions() as session:
        first = registry.register_version(session, storage, b"v1", CARD, state=registry.ACTIVE).version
        by_gate = registry.register_version(session, storage, b"v2", CARD).version
        by_operator = registry.register_version(session, storage, b"v3", CARD).version

    # The gate's switch has retired the old version but not yet committed when the operator's arrives.
    gate_session = sessions()
    at_commit, may_commit = threading.Event(), threading.Event()
    real_commit = gate_session.commit

    def commit_when_allowed() -> None:
        at_commit.set()
        assert may_commit.wait(30)
        real_commit()

    gate_session.commit = commit_when_allowed  # type: ignore[method-assign]
    gate, gate_errors = _in_thread(lambda: registry.promote(gate_session, by_gate, reason="gate"))
    operator_session = sessions()
    try:
        assert at_commit.wait(30), gate_errors
        operator, operator_errors = _in_thread(lambda: registry.promote(operator_session, by_operator))
        _wait_until_a_backend_waits_for_a_lock(sessions)
        may_commit.set()
        gate.join(30)
        operator.join(30)
    finally:
        may_commit.set()
        gate_session.close()
        operator_session.close()

    assert gate_errors == [] and operator_errors == []
    with sessions() as session:
        states = {row.version: row.state for row in registry.list_versions(session)}
    assert states == {first: registry.RETIRED, by_gate: registry.RETIRED, by_operator: registry.ACTIVE}
