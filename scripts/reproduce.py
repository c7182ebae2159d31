"""Reproduce the shipped model: train the recipe's steps in order, then package the last one with its card.

The recipe is ``configs/recipe/NN-<what>.json`` (01, 02, ... in the order the shipped lineage trained them). Every
step builds the full ``mirnet-refined`` network and trains only the parts grown so far (``train_layers``); the
others stay at their zero start, so they change nothing. Each step starts from the one before it
(``init_from``: ``runs/recipe/<previous>/best.keras``).

Run it again after an interruption: finished steps are skipped, an interrupted one resumes from its checkpoint.
The packaged result goes to ``--out`` (``runs/recipe/mirnet-refined.keras`` and its card): the shipped network
runs the body on 4 views and its refinement on 2 of them, in bf16, with the card's fp32 fallback (3 views, 1
refinement) for CPUs that compute only fp32 fast. ``scripts/package_model.py measure`` adds the eval15 and speed
figures once the result is made the packaged default.

Usage:
  python scripts/reproduce.py [--dry-run] [--until NN] [--data data/lol-train] [--out runs/recipe/mirnet-refined.keras]
  python scripts/reproduce.py --data DIR --val-list NAMES --runs DIR --steps-override 2 --tiny   (a quick check)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "recipe"
RUNS = "runs/recipe"  # where the committed steps write (their ``out``), relative to the repository
VERSION = "mirnet-lol-v21-reproduced"
DESCRIPTION = "the recipe of configs/recipe reproduced by scripts/reproduce.py"
# How the shipped model runs its trained weights (the packaging steps of the lineage: v7 put the body's 4 views in
# bf16, v21 ran the refinement on 2 of them; the fp32 fallback is what a CPU without fast bf16 runs).
PACKAGED_ARGUMENTS = {"views": 4, "refine_views": 2}
PACKAGED_INFERENCE = {"precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1}
# --tiny: a network and crops small enough that every step takes seconds on a CPU (proves the chain, not the model).
TINY = {"arguments": {"channels": 4, "groups": 1}, "crop_size": 16, "batch_size": 2}


@dataclass(frozen=True)
class Step:
    """A recipe step: its number, its committed config file, and the config it runs with (overrides applied)."""

    number: int
    path: Path
    config: dict[str, Any]

    @property
    def out(self) -> Path:
        return _in_repo(self.config["out"])

    def state(self) -> int:
        """The step its run has reached (0 when it has not started)."""
        state = self.out / "state.json"
        return int(json.loads(state.read_text())["step"]) if state.exists() else 0

    def finished(self) -> bool:
        return (self.out / "best.keras").exists() and self.state() >= int(self.config["steps"])


def _in_repo(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else REPO / candidate


def _named(path: Path) -> str:
    """``path`` as the card names it: relative to the repository when it lies in it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def recipe_files(recipe: Path = RECIPE) -> list[Path]:
    """The recipe's step files in order; their numbers must run 01, 02, ... without a gap."""
    files = sorted(recipe.glob("[0-9][0-9]-*.json"))
    numbers = [int(path.name[:2]) for path in files]
    if numbers != list(range(1, len(files) + 1)):
        raise SystemExit(f"{recipe}: the steps must be numbered 01, 02, ... without a gap, not {numbers}")
    return files


def _moved(path: str | None, runs: Path | None) -> str | None:
    """A committed ``runs/recipe/...`` path moved under ``runs``."""
    if path is None or runs is None:
        return path
    relative = Path(path).relative_to(RUNS)
    return str(runs / relative)


def load_steps(
    recipe: Path = RECIPE,
    data: str | None = None,
    val_list: str | None = None,
    runs: Path | None = None,
    steps_override: int | None = None,
    tiny: bool = False,
) -> list[Step]:
    """The recipe's steps with the overrides applied: the data, the validation list (``""``: none), where the runs
    go, how many steps each trains, and ``tiny``: a small network and crops."""
    steps = []
    for path in recipe_files(recipe):
        config = json.loads(path.read_text())
        config["out"] = _moved(config["out"], runs)
        config["init_from"] = _moved(config.get("init_from"), runs)
        if data is not None:
            config["data"] = data
        if val_list is not None:
            config["val_list"] = val_list or None
        if steps_override is not None:
            config.update(steps=steps_override, warmup_steps=0)
            config.update(val_every=steps_override, checkpoint_every=steps_override)
        if tiny:
            config.update({key: value for key, value in TINY.items() if key != "arguments"})
            config["arguments"] = {**config["arguments"], **TINY["arguments"]}
        steps.append(Step(int(path.name[:2]), path, config))
    return steps


def check_chain(steps: list[Step]) -> None:
    """Each step must start from the one before it (the first from nothing), or the recipe is not one lineage."""
    expected = None
    for step in steps:
        if step.config.get("init_from") != expected:
            raise SystemExit(f"{step.path.name} starts from {step.config.get('init_from')!r}, not {expected!r}")
        expected = str(Path(step.config["out"]) / "best.keras")


def describe(step: Step) -> str:
    reached, total = step.state(), int(step.config["steps"])
    status = "done" if step.finished() else (f"interrupted at {reached}/{total}" if reached else "to do")
    layers = ", ".join(step.config.get("train_layers") or ["all"])
    return f"{step.path.name}: {total} steps, views {step.config['arguments']['views']}, trains {layers} [{status}]"


def train_step(step: Step) -> None:
    """Run (or resume) one step's training, with the working directory at the repository (its paths are)."""
    from mirnet.training import TrainConfig, Trainer

    print(f"== {describe(step)}", flush=True)
    config = {**step.config, "out": str(step.out)}
    if config.get("init_from"):
        config["init_from"] = str(_in_repo(config["init_from"]))
    config["data"] = str(_in_repo(config["data"]))
    if config.get("val_list"):
        config["val_list"] = str(_in_repo(config["val_list"]))
    Trainer(TrainConfig(**config)).run()


def package_last(steps: list[Step], out: Path) -> dict[str, Any]:
    """Package the last step's best weights as the shipped network runs them, with a card listing every step."""
    import package_model  # scripts/ is on the path of a script run from it

    earlier = [
        {
            "command": f"lowlight train --config {_named(step.path)}",
            "steps": step.state(),
            "hours": round(json.loads((step.out / "state.json").read_text())["seconds"] / 3600, 2),
        }
        for step in steps[:-1]
    ]
    last = steps[-1]
    return package_model.package(
        last.out,
        VERSION,
        DESCRIPTION,
        earlier,
        PACKAGED_INFERENCE,
        out=out,
        arguments=PACKAGED_ARGUMENTS,
        train_config=_named(last.path),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="list the steps and where each stands; train nothing")
    parser.add_argument("--until", type=int, metavar="NN", help="stop after step NN (no packaging before the last)")
    parser.add_argument("--out", type=Path, default=REPO / RUNS / "mirnet-refined.keras", help="the packaged model")
    parser.add_argument("--data", help="training pairs (low/ and high/) instead of the recipe's data/lol-train")
    parser.add_argument("--val-list", help="validation names instead of the recipe's ('' for none)")
    parser.add_argument("--runs", type=Path, help="write the runs under this folder instead of runs/recipe")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the folder of the steps (default configs/recipe)")
    parser.add_argument("--steps-override", type=int, metavar="N", help="train every step N steps (a quick check)")
    parser.add_argument("--tiny", action="store_true", help="a 4-channel body on 16-px crops (a quick check)")
    args = parser.parse_args(argv)
    runs = args.runs.resolve() if args.runs else None
    steps = load_steps(args.recipe, args.data, args.val_list, runs, args.steps_override, args.tiny)
    check_chain(steps)
    chosen = [step for step in steps if args.until is None or step.number <= args.until]
    if args.dry_run:
        for step in chosen:
            print(describe(step))
        if len(chosen) == len(steps):
            print(
                f"then package {steps[-1].out / 'best.keras'} as {args.out} with {PACKAGED_ARGUMENTS}, "
                f"{PACKAGED_INFERENCE}"
            )
        return 0
    for step in chosen:
        if step.finished():
            print(f"== {step.path.name}: done, skipped")
            continue
        train_step(step)
    if len(chosen) < len(steps):
        print(f"stopped after step {chosen[-1].number:02d} (--until); run without it to finish and package")
        return 0
    card = package_last(steps, args.out)
    print(f"packaged {args.out}: {card['parameters']:,} parameters, validation {card['validation']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
