"""Seconds per fine-tuning step of the packaged model as the retraining job runs it (random crops, batches of 4):
training the layers its card's last stage trained (``train_layers``, from ``worker.retraining.trained_recipe``, as
the job does) against training the whole network with the same recipe, alternated over rounds in one process;
prints their ratio.

    python scripts/bench_fine_tune.py ../shared/data/lol/sample
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PACKAGED = REPO / "mirnet" / "weights" / "default.keras"


def seconds_per_step(data: Path, out: Path, card: dict, recipe: dict[str, Any], steps: int, crop: int) -> float:
    """Mean seconds a step after the first ``steps // 5`` (tracing, warm-up), from the trainer's log rows."""
    from mirnet.training import TrainConfig, Trainer

    every = max(steps // 5, 1)
    config = TrainConfig(
        data=str(data),
        out=str(out),
        arch=card["architecture"],
        arguments=card["arguments"],
        steps=steps,
        val_every=every,
        checkpoint_every=steps,
        batch_size=4,
        crop_size=crop,
        learning_rate=1e-4,
        min_learning_rate=1e-5,
        init_from=str(PACKAGED),
        **recipe,
    )
    stamps: list[float] = []
    Trainer(config, log=lambda message: None, on_log_row=lambda row: stamps.append(time.perf_counter())).run()
    return (stamps[-1] - stamps[0]) / (steps - every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a LOL-style folder (low/ and high/)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--crop", type=int, default=128, help="RETRAIN_CROP_SIZE's default")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from mirnet.models import load_model
    from worker.retraining import trained_recipe

    card = load_model().card
    recipe = trained_recipe(PACKAGED)
    whole = {**recipe, "train_layers": None}
    print(f"{card['version']}, crops of {args.crop}, batches of 4, {args.steps} steps a run")
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            partial = seconds_per_step(args.data, Path(tmp) / f"card-{round_}", card, recipe, args.steps, args.crop)
            full = seconds_per_step(args.data, Path(tmp) / f"whole-{round_}", card, whole, args.steps, args.crop)
            print(f"round {round_ + 1}: train_layers {recipe['train_layers']}: {partial:.3f} s a step; the whole "
                  f"network: {full:.3f} s a step; ratio {partial / full:.2f}", flush=True)


if __name__ == "__main__":
    main()
