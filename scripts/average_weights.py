"""Validation PSNR/SSIM of a weighted average of several trained models of one architecture (a "model soup").

Validation split only: this is a way of choosing, and eval15 is never read here. Each argument is a .keras file with
its card, and optionally ``:share``; shares are normalised to sum to 1. A negative share extrapolates:
``v4.keras:-0.25 v5.keras:1.25`` is v5 + 0.25 x (v5 - v4), a quarter of the step from v4 to v5 beyond v5.

With ``--grow`` the models may be networks grown from one another (``init_from``): each is loaded by layer name into
the last model's network, so a layer that a model lacks keeps that network's initial value (zero, for the inputs a
refinement grows to start at zero), and the average is the last model's network with its card.

Usage:
  python scripts/average_weights.py runs/v3.keras:1 runs/v4.keras:1 [--views 1] [--save averaged.keras]
  python scripts/average_weights.py mirnet/weights/default.keras:1 runs/grown/best.keras:1 --grow
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mirnet.choices import VIEW_COUNTS

if TYPE_CHECKING:
    import keras

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


def grown_weights(members: Sequence[keras.Model], architecture: str, arguments: dict) -> list[list[np.ndarray]]:
    """Each of ``members`` loaded by layer name into a new network ``architecture(**arguments)``: its weights where
    it has the layer, the new network's initial values where it does not (:func:`load_weights_by_layer`)."""
    from mirnet.architectures import build_model
    from mirnet.training import load_weights_by_layer

    weights = []
    for member in members:
        network = build_model(architecture, **arguments)
        load_weights_by_layer(network, member)
        weights.append(network.get_weights())
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="FILE.keras[:share]")
    parser.add_argument("--views", type=int, default=1, choices=VIEW_COUNTS)
    parser.add_argument(
        "--save", type=Path, help="write the averaged model here, with the first model's card (the last's with --grow)"
    )
    parser.add_argument("--grow", action="store_true", help="load every model into the last one's network by layer")
    args = parser.parse_args()

    from mirnet.data import load_validation_arrays
    from mirnet.inference import Enhancer
    from mirnet.models import load_model, save_model
    from mirnet.training import evaluate_pairs

    shares = [parse_share(text) for text in args.models]
    total = sum(share for _, share in shares)
    loaded = [load_model(path) for path, _ in shares]
    target = loaded[-1] if args.grow else loaded[0]
    if args.grow:
        try:
            weights = grown_weights([m.model for m in loaded], target.architecture, target.arguments)
        except ValueError as error:
            raise SystemExit(f"--grow: {error}") from None
    elif any((m.architecture, m.arguments) != (target.architecture, target.arguments) for m in loaded):
        raise SystemExit("the models must share one architecture and its arguments (or be grown: --grow)")
    else:
        weights = [m.model.get_weights() for m in loaded]
    try:
        averaged = combine(weights, [share for _, share in shares])
    except ValueError as error:
        raise SystemExit(str(error)) from None
    target.model.set_weights(averaged)

    arrays = load_validation_arrays(DATA, VAL_LIST)
    val_psnr, val_ssim, _ = evaluate_pairs(Enhancer(target, tile=None, views=args.views), arrays)
    mix = ", ".join(f"{path.name} {share / total:.2f}" for path, share in shares)
    print(f"{mix}: validation ({len(arrays)} pairs, {args.views} view(s)) PSNR {val_psnr:.3f} dB, SSIM {val_ssim:.4f}")
    if args.save:
        save_model(target.model, args.save, {**target.card, "averaged_from": mix})


if __name__ == "__main__":
    main()
