"""``lowlight pairs``, ``lowlight retrain --now`` and ``lowlight models``, configured by the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.retraining.conftest import lol_folder
from worker import runtime
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
    monkeypatch.setattr(runtime, "_context", None)

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
