"""Seconds per training step in fp32 and in mixed bf16, measured in this one run, and their ratio.

The step is the one `lowlight train` runs (the same loss, optimizer and compiled function), on one fixed batch, so
the data pipeline is left out. The machines here are noisy: compare the ratio, not the seconds between runs.
Usage: python scripts/bench_training.py [--config configs/recipe/20-from-context-again.json] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def step_seconds(config: dict, precision: str, steps: int) -> tuple[float, float]:
    """(seconds of the first, traced, step; median seconds of the next ``steps``) at ``precision``."""
    import tensorflow as tf

    from mirnet.data import crop_shape
    from mirnet.training import TrainConfig, build_for_training, make_train_step

    # Random weights instead of init_from's: the step costs the same, and no earlier run needs to be here.
    model = build_for_training(TrainConfig(**{**config, "precision": precision, "init_from": None}))
    train_step = make_train_step(model)
    rng = np.random.default_rng(0)
    shape = (config["batch_size"], *crop_shape(config["crop_size"]), 3)
    high = tf.constant(rng.random(shape, dtype=np.float32))
    low = tf.constant(high.numpy() * 0.1)
    started = time.perf_counter()
    float(train_step(low, high))
    first = time.perf_counter() - started
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        float(train_step(low, high))
        times.append(time.perf_counter() - started)
    return first, float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "recipe" / "20-from-context-again.json")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per precision, after the first")
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    print(f"{args.config.name}: {config['arch']} {config['arguments']}, batch {config['batch_size']} of "
          f"{config['crop_size']} crops, median of {args.steps} steps")
    results = {}
    for precision in ("fp32", "bf16"):
        first, median = step_seconds(config, precision, args.steps)
        results[precision] = median
        print(f"{precision}: first step {first:.1f} s (tracing), then {median:.3f} s per step")
    print(f"bf16 step time / fp32 step time: {results['bf16'] / results['fp32']:.2f}")


if __name__ == "__main__":
    main()
