"""Compare MIRNet variants under one CPU training budget, on the same data and recipe.

Three stages, each resumable (run them all with no arguments):

- ``prepare``: measure each candidate's seconds per training step here and write ``configs/compare/<name>.json``
  with as many steps as fit in ``--budget-minutes`` (a committed config is kept as it is, so the comparison
  can be re-run with the same steps);
- ``train``: ``lowlight train --config`` each candidate into ``runs/compare/<name>`` (resumes after a kill);
- ``report``: parameters, GFLOPs per 600x400 image, seconds per 600x400 image in fp32 and bf16 (all measured in
  this one run), the best validation PSNR/SSIM and the steps and hours of each run, written to
  ``docs/results/compare_architectures.md``.

Usage: python scripts/compare_architectures.py [prepare|train|report|all] [--budget-minutes 9] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "compare"
RUNS = REPO / "runs" / "compare"
REPORT = REPO / "docs" / "results" / "compare_architectures.md"
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample" / "low" / "2.png"

# name -> (architecture, arguments). The seed's network, the previous default, and variants that move where
# resolution drops (fold 2, 4 or 8 pixels into channels before the multi-scale body) and how deep the body is.
CANDIDATES: dict[str, tuple[str, dict[str, int]]] = {
    "seed-lite-3x2x64": ("mirnet-lite", {"num_rrg": 3, "num_mrb": 2, "channels": 64}),
    "mirnet-f2-2x1x32": ("mirnet", {"fold": 2, "num_rrg": 2, "num_mrb": 1, "channels": 32}),
    "mirnet-f4-2x1x32": ("mirnet", {"fold": 4, "num_rrg": 2, "num_mrb": 1, "channels": 32}),
    "mirnet-f4-2x2x32": ("mirnet", {"fold": 4, "num_rrg": 2, "num_mrb": 2, "channels": 32}),
    "mirnet-f8-2x2x64": ("mirnet", {"fold": 8, "num_rrg": 2, "num_mrb": 2, "channels": 64}),
}

# The same recipe for every candidate; only the network and the number of steps (from the budget) differ.
RECIPE = {
    "data": "data/lol-train",
    "val_list": "../shared/data/lol/our485-val.txt",
    "batch_size": 8,
    "crop_size": 256,
    "learning_rate": 5e-4,
    "min_learning_rate": 1e-6,
    "ssim_weight": 0.2,
    "checkpoint_every": 50,
    "seed": 0,
}


def seconds_per_step(arch: str, arguments: dict, repeats: int = 3) -> float:
    import keras
    import tensorflow as tf

    from mirnet.architectures import build_model
    from mirnet.losses import RestorationLoss
    from mirnet.training import _make_train_step

    model = build_model(arch, **arguments)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=RestorationLoss(ssim_weight=RECIPE["ssim_weight"]))
    step = _make_train_step(model)
    shape = (RECIPE["batch_size"], RECIPE["crop_size"], RECIPE["crop_size"], 3)
    low, high = tf.random.uniform(shape), tf.random.uniform(shape)
    for _ in range(2):
        float(step(low, high))
    start = time.perf_counter()
    for _ in range(repeats):
        float(step(low, high))
    return (time.perf_counter() - start) / repeats


def prepare(budget_minutes: float, names: list[str]) -> None:
    CONFIGS.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = CONFIGS / f"{name}.json"
        if path.exists():
            print(f"{name}: keeping {path.relative_to(REPO)}")
            continue
        arch, arguments = CANDIDATES[name]
        per_step = seconds_per_step(arch, arguments)
        steps = max(30, int(budget_minutes * 60 / per_step) // 10 * 10)
        config = {
            **RECIPE,
            "arch": arch,
            "arguments": arguments,
            "out": f"runs/compare/{name}",
            "steps": steps,
            "val_every": max(10, steps // 4),
            "warmup_steps": max(10, steps // 20),
        }
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        print(f"{name}: {per_step:.2f} s/step -> {steps} steps in {budget_minutes} min -> {path.relative_to(REPO)}")


def train(names: list[str]) -> None:
    for name in names:
        config = CONFIGS / f"{name}.json"
        state = RUNS / name / "state.json"
        steps = json.loads(config.read_text())["steps"]
        if state.exists() and json.loads(state.read_text())["step"] >= steps:
            print(f"{name}: already trained")
            continue
        print(f"{name}: training ({steps} steps)", flush=True)
        subprocess.run([sys.executable, "-m", "worker.cli", "train", "--config", str(config)], cwd=REPO, check=True)


def report(names: list[str], repeats: int) -> None:
    import numpy as np

    from mirnet.architectures import build_model
    from mirnet.flops import gflops_per_image
    from mirnet.imageio import load_rgb_uint8
    from mirnet.inference import Enhancer, best_seconds
    from mirnet.models import LoadedModel

    image = load_rgb_uint8(str(SAMPLE)).astype(np.float32) / 255
    rows = []
    for name in names:
        arch, arguments = CANDIDATES[name]
        model = build_model(arch, **arguments)
        gflops = gflops_per_image(model, arch, arguments)
        loaded = LoadedModel(model, {"architecture": arch, "arguments": arguments}, name, "built")
        timings = {
            precision: best_seconds(Enhancer(loaded, precision=precision, tile=None), image, repeats)
            for precision in ("fp32", "bf16")
        }
        run = RUNS / name
        best = json.loads((run / "best.json").read_text()) if (run / "best.json").exists() else {}
        state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
        rows.append(
            {
                "name": name,
                "arch": arch,
                "arguments": arguments,
                "parameters": model.count_params(),
                "gflops": gflops,
                "fp32": timings["fp32"],
                "bf16": timings["bf16"],
                "val_psnr": best.get("validation", {}).get("psnr"),
                "val_ssim": best.get("validation", {}).get("ssim"),
                "best_step": best.get("training", {}).get("steps"),
                "steps": state.get("step"),
                "hours": state.get("seconds", 0) / 3600,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    seed_time = next((row["fp32"] for row in rows if row["name"].startswith("seed-lite")), None)
    lines = [
        "| candidate | parameters | GFLOPs / 600x400 | fp32 s / 600x400 | vs seed fp32 | bf16 s / 600x400 "
        "| val PSNR (dB) | val SSIM | steps (best) | hours |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row['fp32'] / seed_time:.2f}x" if seed_time else "-"
        psnr = f"{row['val_psnr']:.2f}" if row["val_psnr"] is not None else "-"
        ssim = f"{row['val_ssim']:.3f}" if row["val_ssim"] is not None else "-"
        lines.append(
            f"| `{row['name']}` | {row['parameters']:,} | {row['gflops']:.1f} | {row['fp32']:.3f} | {ratio} "
            f"| {row['bf16']:.3f} | {psnr} | {ssim} | {row['steps']} ({row['best_step']}) | {row['hours']:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        "`python scripts/compare_architectures.py report` (timings: best of "
        f"{repeats}, one run, one process; training figures from runs/compare/*/best.json and state.json)\n\n"
        + table
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", nargs="?", default="all", choices=["prepare", "train", "report", "all"])
    parser.add_argument("--budget-minutes", type=float, default=9.0)
    parser.add_argument("--only", action="append", choices=sorted(CANDIDATES), help="one candidate (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = args.only or list(CANDIDATES)
    if args.stage in ("prepare", "all"):
        prepare(args.budget_minutes, names)
    if args.stage in ("train", "all"):
        train(names)
    if args.stage in ("report", "all"):
        report(names, args.repeats)


if __name__ == "__main__":
    main()
