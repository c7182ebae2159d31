"""``lowlight pairs``, ``lowlight retrain --now`` and ``lowlight models``, configured by the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.platform import write_tiny_model
from tests.retraining.conftest import lol_folder
from web.core.db import make_session_factory
from web.core.registry import services as registry
from web.core.settings import Settings
from web.core.storage import LocalStorage
from worker.cli import main


@pytest.mark.slow
def test_import_retrain_now_list_and_roll_back(
    tmp_path: Path, sqlite_url: str, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    environment = {
        "DATABASE_URL": sqlite_url,
        "BROKER_URL": "memory://",
        "LOCAL_STORAGE_DIR": str(tmp_path / "objects"),
        "MODEL": str(tiny_model_file),
        "RETRAIN_CROP_SIZE": "32",
        "RETRAIN_LEARNING_RATE": "0.002",
        "RETRAIN_MIN_NEW_PAIRS": "100",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert main(["pairs", "import", str(lol_folder(tmp_path / "val", ["9.png"])), "--holdout"]) == 0
    assert main(["pairs", "import", str(lol_folder(tmp_path / "train", ["2.png", "5.png"]))]) == 0
    assert main(["pairs", "import", str(tmp_path / "train")]) == 0
    out = capsys.readouterr().out
    assert "1 new pairs (1 holdout), 0 already known" in out and "0 new pairs (0 holdout), 2 already known" in out
    assert main(["pairs", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 3 and "holdout (operator)" in listing[0] and "new" in listing[1]

    assert main(["retrain", "--now", "--steps", "30"]) == 0
    decision = capsys.readouterr().out
    assert "run 1: succeeded; promoted: PSNR" in decision

    assert main(["models", "list"]) == 0
    versions = capsys.readouterr().out.splitlines()
    assert versions[0].startswith("tiny-4") and " retired " in versions[0]
    assert versions[1].startswith("v2") and " active " in versions[1]
    assert main(["models", "rollback", "tiny-4"]) == 0
    assert "tiny-4 is now active" in capsys.readouterr().out
    assert main(["models", "promote", "tiny-4"]) == 2
    assert "only a candidate can be promoted" in capsys.readouterr().err


def test_register_adds_a_newer_model_file_to_an_existing_registry(
    tmp_path: Path, sqlite_url: str, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name, value in {
        "DATABASE_URL": sqlite_url,
        "BROKER_URL": "memory://",
        "LOCAL_STORAGE_DIR": str(tmp_path / "objects"),
        "MODEL": str(tiny_model_file),
    }.items():
        monkeypatch.setenv(name, value)
    with make_session_factory(Settings.from_env())() as session:  # what a worker does when it starts
        assert registry.register_initial(session, LocalStorage(str(tmp_path / "objects")), tiny_model_file)

    # An upgrade ships newer packaged weights: the registry, first filled from the old ones, takes them in.
    newer = write_tiny_model(tmp_path / "newer.keras", channels=6)
    assert main(["models", "register", str(newer)]) == 0
    assert "tiny-6 is now candidate" in capsys.readouterr().out
    assert main(["models", "promote", "tiny-6"]) == 0
    assert "tiny-6 is now active" in capsys.readouterr().out
    newest = write_tiny_model(tmp_path / "newest.keras", channels=5)
    assert main(["models", "register", str(newest), "--promote"]) == 0
    assert "tiny-5 is now active" in capsys.readouterr().out

    assert main(["models", "register", str(newer)]) == 2
    assert "tiny-6 is already registered with these weights" in capsys.readouterr().err
    renamed = tmp_path / "renamed.keras"
    renamed.write_bytes(tiny_model_file.read_bytes())
    renamed.with_suffix(".json").write_text(newer.with_suffix(".json").read_text())
    assert main(["models", "register", str(renamed)]) == 2
    assert "tiny-4 is already registered with these weights" in capsys.readouterr().err
    named_twice = tmp_path / "named-twice.keras"
    write_tiny_model(named_twice, channels=7)
    named_twice.with_suffix(".json").write_text(newer.with_suffix(".json").read_text())
    assert main(["models", "register", str(named_twice)]) == 2
    assert "another model is already registered as tiny-6" in capsys.readouterr().err
    assert main(["models", "register", str(tmp_path / "missing.keras")]) == 2
    assert "missing.json" in capsys.readouterr().err

    assert main(["models", "list"]) == 0
    listing = [line.split()[:2] for line in capsys.readouterr().out.splitlines()]
    assert listing == [["tiny-4", "retired"], ["tiny-6", "retired"], ["tiny-5", "active"]]


def test_register_into_an_empty_registry_makes_the_file_the_active_version(
    tmp_path: Path, sqlite_url: str, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "objects"))
    assert main(["models", "register", str(tiny_model_file), "--promote"]) == 0
    assert "tiny-4 is now active" in capsys.readouterr().out


def test_a_database_without_the_schema_is_a_clear_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    database = tmp_path / "fresh.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "objects"))
    assert main(["pairs", "list"]) == 2
    error = capsys.readouterr().err
    assert "has no schema yet" in error and "python -m web.cli migrate" in error
    from web.core.db import upgrade_database

    upgrade_database(f"sqlite:///{database}")
    assert main(["pairs", "list"]) == 0
