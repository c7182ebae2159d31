"""scripts/package_model.py: the earlier stages a packaged model's card lists, with their steps and hours, for a
chain of training runs of which only some are still on disk and one in the middle was never packaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts.loading import load_script


def _stage(repo: Path, name: str, init_from: str | None) -> Path:
    path = repo / "configs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"out": f"runs/{name}", "init_from": init_from}))
    return path


def _run_folder(repo: Path, name: str, *, steps: int, seconds: float, card: dict | None = None) -> None:
    folder = repo / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    if steps:
        (folder / "state.json").write_text(json.dumps({"step": steps, "seconds": seconds}))
    (folder / "best.json").write_text(json.dumps(card or {"training": {"seconds": seconds}}))


def _packaged_card(stages: list[dict], own_steps: int, hours_all_stages: float) -> dict:
    return {"training": {"earlier_stages": stages, "total_steps": own_steps, "hours_all_stages": hours_all_stages}}


@pytest.fixture()
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    module = load_script("package_model")
    monkeypatch.setattr(module, "REPO", tmp_path)
    return module


def test_stages_behind_an_unpackaged_run_take_their_figures_from_the_packaged_card_before_it(
    script, tmp_path: Path
) -> None:
    # a -> b were packaged as v2 (its card sits beside b's weights, as when the packaged default is copied there);
    # c trained from v2 and was never packaged; d, the run being packaged, trained from c.
    a = _stage(tmp_path, "a", None)
    b = _stage(tmp_path, "b", "runs/a/best.keras")
    c = _stage(tmp_path, "c", "runs/b/best.keras")
    d = json.loads(_stage(tmp_path, "d", "runs/c/best.keras").read_text())
    v2 = _packaged_card([{"command": "lowlight train --config configs/a.json", "steps": 700, "hours": 0.5}], 300, 0.75)
    _run_folder(tmp_path, "b", steps=0, seconds=0, card=v2)
    _run_folder(tmp_path, "c", steps=1000, seconds=2520.0)

    stages = script.earlier_stages(d, [a, b, c])

    assert stages == [
        {"command": "lowlight train --config configs/a.json", "steps": 700, "hours": 0.5},
        {"command": "lowlight train --config configs/b.json", "steps": 300, "hours": 0.25},
        {"command": "lowlight train --config configs/c.json", "steps": 1000, "hours": 0.7},
    ]


def test_a_stage_with_neither_its_run_folder_nor_a_packaged_card_is_refused(script, tmp_path: Path) -> None:
    a = _stage(tmp_path, "a", None)
    b = json.loads(_stage(tmp_path, "b", "runs/a/best.keras").read_text())
    _run_folder(tmp_path, "a", steps=0, seconds=0)  # a run's own best.json, not a packaged card

    with pytest.raises(SystemExit, match="no steps and hours for"):
        script.earlier_stages(b, [a])


def test_a_card_that_records_another_number_of_stages_than_given_is_refused(script, tmp_path: Path) -> None:
    a = _stage(tmp_path, "a", None)
    b = _stage(tmp_path, "b", "runs/a/best.keras")
    c = json.loads(_stage(tmp_path, "c", "runs/b/best.keras").read_text())
    _run_folder(tmp_path, "b", steps=0, seconds=0, card=_packaged_card([], 300, 0.25))  # one stage, not two

    with pytest.raises(SystemExit, match="records 1 stages, --stage gave 2"):
        script.earlier_stages(c, [a, b])


def test_a_stage_that_does_not_start_from_the_one_before_is_refused(script, tmp_path: Path) -> None:
    a = _stage(tmp_path, "a", None)
    b = json.loads(_stage(tmp_path, "b", "runs/elsewhere/best.keras").read_text())

    with pytest.raises(SystemExit, match="not from the stage before"):
        script.earlier_stages(b, [a])
