"""``worker.model.ServedModel.current`` between batches: registers the configured model, follows the active version,
and keeps the current model when a new version cannot be loaded (jobs go on; it is not retried every batch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.platform import write_tiny_model
from tests.retraining.conftest import tiny_settings
from web.core.registry import services as registry
from worker.context import WorkerContext


def test_the_worker_follows_the_active_version_and_survives_a_broken_one(
    tmp_path: Path, sqlite_url: str, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tiny_settings(tmp_path, sqlite_url, model=str(tiny_model_file))
    ctx = WorkerContext.from_settings(settings)
    model = ctx.model

    first = ctx.enhancer
    assert first.loaded.version == "tiny-4"
    with ctx.sessions() as session:
        assert [(v.version, v.state) for v in registry.list_versions(session)] == [("tiny-4", "active")]

    loads: list[str] = []
    real_load = model._load_active
    monkeypatch.setattr(model, "_load_active", lambda active: loads.append(active[0]) or real_load(active))
    other = write_tiny_model(tmp_path / "other.keras", channels=6)
    card = json.loads(other.with_suffix(".json").read_text())
    with ctx.sessions() as session:
        broken = registry.register_version(session, ctx.storage, b"not a keras file", card)
        registry.promote(session, broken.version)
    assert ctx.enhancer is first
    assert ctx.enhancer is first
    assert loads == [broken.version]  # tried once, not before every batch

    with ctx.sessions() as session:
        good = registry.register_version(session, ctx.storage, other.read_bytes(), card)
        registry.promote(session, good.version)
    switched = ctx.enhancer
    assert switched.loaded.version == good.version and ctx.enhancer is switched
    assert loads == [broken.version, good.version]
