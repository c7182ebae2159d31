"""``worker.model.get_enhancer`` between batches: registers the configured model, follows the active version,
and keeps the current model when a new version cannot be loaded (jobs go on; it is not retried every batch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.platform import write_tiny_model
from tests.retraining.conftest import tiny_settings
from web.core.registry import services as registry
from worker import model, runtime


def test_the_worker_follows_the_active_version_and_survives_a_broken_one(
    tmp_path: Path, sqlite_url: str, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tiny_settings(tmp_path, sqlite_url, model=str(tiny_model_file))
    for name, value in (("_enhancer", None), ("_enhancer_pid", None), ("_unloadable", None), ("_download_dir", None)):
        monkeypatch.setattr(model, name, value)
    monkeypatch.setattr(runtime, "_context", None)
    ctx = runtime.get_context(settings)

    first = model.get_enhancer(settings)
    assert first.loaded.version == "tiny-4"
    with ctx.sessions() as session:
        assert [(v.version, v.state) for v in registry.list_versions(session)] == [("tiny-4", "active")]

    loads: list[str] = []
    real_load = model._load_active
    monkeypatch.setattr(model, "_load_active", lambda s, active: loads.append(active[0]) or real_load(s, active))
    other = write_tiny_model(tmp_path / "other.keras", channels=6)
    card = json.loads(other.with_suffix(".json").read_text())
    with ctx.sessions() as session:
        broken = registry.register_version(session, ctx.storage, b"not a keras file", card)
        registry.promote(session, broken.version)
    assert model.get_enhancer(settings) is first
    assert model.get_enhancer(settings) is first
    assert loads == [broken.version]  # tried once, not before every batch

    with ctx.sessions() as session:
        good = registry.register_version(session, ctx.storage, other.read_bytes(), card)
        registry.promote(session, good.version)
    switched = model.get_enhancer(settings)
    assert switched.loaded.version == good.version and model.get_enhancer(settings) is switched
    assert loads == [broken.version, good.version]
