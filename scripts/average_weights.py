"""Validation PSNR/SSIM of a weighted average of several trained models of one architecture (a "model soup").

Validation split only: this is a way of choosing, and eval15 is never read here. Each argument is a .keras file with
its card, and optionally ``:share``; shares are normalised to sum to 1. A negative share extrapolates:
``v4.keras:-0.25 v5.keras:1.25`` is v5 + 0.25 x (v5 - v4), a quarter of the step from v4 to v5 beyond v5.

Usage:
  python scripts/average_weights.py runs/v3.keras:1 runs/v4.keras:1 [--views 1] [--save averaged.keras]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirnet.choices import VIEW_COUNTS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "lol-train"
VAL_LIST = REPO.parent / "shared" / "data" / "lol" / "our485-val.txt"


def parse_share(text: str) -> tuple[Path, float]:
    """``FILE.keras:0.25`` -> (FILE.keras, 0.25); a bare file has the share 1."""
    path, separator, share = text.rpartition(":")
    if separator:
        try:
            return Path(path), float(share)
        except ValueError:
            pass
    return Path(text), 1.0


def combine(weights: Sequence[Sequence[np.ndarray]], shares: Sequence[float]) -> list[np.ndarray]:
    """The weighted sum of several models' weight lists, with ``shares`` normalised to sum to 1."""
    if len(weights) != len(shares) or not weights:
        raise ValueError("one share for each model, and at least one model")
    total = float(sum(shares))
    if abs(total) < 1e-9:
        raise ValueError(f"the shares sum to {total:g}: they must not cancel out")
    return [
        sum((share / total) * model_weights[i] for share, model_weights in zip(shares, weights, strict=True))
        for i in range(len(weights[0]))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="FILE.keras[:share]")
    parser.add_argument("--views", type=int, default=1, choices=VIEW_COUNTS)
    parser.add_argument("--save", type=Path, help="write the averaged model here, with the first model's card")
    args = parser.parse_args()

    from mirnet.data import load_validation_arrays
    from mirnet.inference import Enhancer
    from mirnet.models import load_model, save_model
    from mirnet.training import evaluate_pairs

    shares = [parse_share(text) for text in args.models]
    total = sum(share for _, share in shares)
    loaded = [load_model(path) for path, _ in shares]
    if any((m.architecture, m.arguments) != (loaded[0].architecture, loaded[0].arguments) for m in loaded):
        raise SystemExit("the models must share one architecture and its arguments")
    try:
        averaged = combine([m.model.get_weights() for m in loaded], [share for _, share in shares])
    except ValueError as error:
        raise SystemExit(str(error)) from None
    target = loaded[0]
    target.model.set_weights(averaged)

    arrays = load_validation_arrays(DATA, VAL_LIST)
    val_psnr, val_ssim, _ = evaluate_pairs(Enhancer(target, tile=None, views=args.views), arrays)
    mix = ", ".join(f"{path.name} {share / total:.2f}" for path, share in shares)
    print(f"{mix}: validation ({len(arrays)} pairs, {args.views} view(s)) PSNR {val_psnr:.3f} dB, SSIM {val_ssim:.4f}")
    if args.save:
        save_model(target.model, args.save, {**target.card, "averaged_from": mix})


if __name__ == "__main__":
    main()
