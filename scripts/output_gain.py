"""One brightness gain for every output, fitted on the validation split and judged by leave-one-out.

Each output of the model (as it ships: its precision, its views, whole images) is multiplied by one gain ``g``, the
same for the three channels, clipped to [0, 1] and scored at 8 bits as ``lowlight eval`` scores. ``g`` is the value
of a grid that gives the highest mean PSNR over the validation pairs. A gain fitted on the pairs it is scored on
flatters itself, so the estimate that counts is leave-one-out: each pair is scored with the gain fitted on all the
others, and the per-image gain over the model as it is comes with its paired standard error, on all pairs, on those
with a training twin and on those without (``scripts/validation_scenes.py``). Only our485 is read; eval15 never.

Usage:
  python scripts/output_gain.py [--model mirnet/weights/default.keras] [--precision bf16] [--low 0.9] [--high 1.1] \
      [--step 0.0025]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from validation_scenes import DATA, VAL_LIST, find_twins, mean_with_error  # noqa: E402


@dataclass(frozen=True)
class GainFit:
    grid: np.ndarray  # the gains tried
    psnr: np.ndarray  # images x gains: each image's PSNR with each gain
    fitted: float  # the gain with the best mean PSNR over all images
    left_out: np.ndarray  # per image: the gain fitted on all the other images
    left_out_psnr: np.ndarray  # per image: its PSNR with its left-out gain


def psnr_with_gains(enhanced: np.ndarray, reference: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The 8-bit PSNR of ``clip(enhanced * g, 0, 1)`` against the 8-bit ``reference``, for each ``g`` of ``grid``."""
    from mirnet.imageio import to_uint8
    from mirnet.metrics import psnr

    scaled = enhanced.astype(np.float64)
    return np.array([psnr(to_uint8(scaled * gain), reference) for gain in grid])


def fit_gains(psnr: np.ndarray, grid: np.ndarray) -> GainFit:
    """The best gain over all images, and each image's leave-one-out gain and PSNR with it (``psnr``: images x
    gains). Ties go to the gain nearest 1, so that no correction wins over a useless one."""
    if psnr.ndim != 2 or psnr.shape[1] != grid.size or psnr.shape[0] < 2:
        raise ValueError(f"need at least two images by {grid.size} gains, got {psnr.shape}")
    order = np.argsort(np.abs(grid - 1.0), kind="stable")  # nearest 1 first, so argmax takes it on a tie

    def best(rows: np.ndarray) -> int:
        return int(order[np.argmax(rows.mean(axis=0)[order])])

    left_out = np.empty(psnr.shape[0])
    left_out_psnr = np.empty(psnr.shape[0])
    for image in range(psnr.shape[0]):
        index = best(np.delete(psnr, image, axis=0))
        left_out[image] = grid[index]
        left_out_psnr[image] = psnr[image, index]
    return GainFit(grid, psnr, float(grid[best(psnr)]), left_out, left_out_psnr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "mirnet" / "weights" / "default.keras")
    parser.add_argument("--precision", default="bf16", help="fp32, bf16 or auto (default: bf16, as v20 ships)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--val-list", type=Path, default=VAL_LIST)
    parser.add_argument("--threshold", type=float, default=0.95, help="twin threshold (validation_scenes.py)")
    parser.add_argument("--low", type=float, default=0.9)
    parser.add_argument("--high", type=float, default=1.1)
    parser.add_argument("--step", type=float, default=0.0025)
    args = parser.parse_args()

    from mirnet.data import load_pair_arrays
    from mirnet.imageio import to_uint8
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    grid = np.round(np.arange(args.low, args.high + args.step / 2, args.step), 6)
    search = find_twins(args.data, args.val_list, args.threshold)
    twin_of = search.has_twin()
    has_twin = np.array([twin_of[pair.name] for pair in search.validation])
    enhancer = Enhancer(load_model(args.model), precision=args.precision, tile=None)
    print(f"{args.model} in {enhancer.precision}, {enhancer.views} view(s) inside, whole images; "
          f"gains {grid[0]:.4f} to {grid[-1]:.4f} in steps of {args.step}")
    rows, log_ratios = [], []
    for index, pair in enumerate(search.validation, start=1):
        low, high = load_pair_arrays(pair)
        enhanced = enhancer.enhance(low)
        reference = to_uint8(high)
        rows.append(psnr_with_gains(enhanced, reference, grid))
        log_ratios.append(float(np.log(to_uint8(enhanced).mean() / max(reference.mean(), 1e-6))))
        print(f"\r{index}/{len(search.validation)} validation pairs enhanced", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    psnr = np.array(rows)
    fit = fit_gains(psnr, grid)
    at_one = psnr[:, int(np.argmin(np.abs(grid - 1.0)))]
    ratios = np.array(log_ratios)
    print(f"mean log(output mean / reference mean): all {ratios.mean():+.4f} ± "
          f"{ratios.std(ddof=1) / np.sqrt(ratios.size):.4f} | with a twin {ratios[has_twin].mean():+.4f} | "
          f"without {ratios[~has_twin].mean():+.4f}")
    print(f"PSNR with gain 1 (the model as it is): {at_one.mean():.3f} | {at_one[has_twin].mean():.3f} | "
          f"{at_one[~has_twin].mean():.3f}")
    fitted_psnr = psnr[:, int(np.argmin(np.abs(grid - fit.fitted)))]
    print(f"gain fitted on all {len(psnr)}: {fit.fitted:.4f}; PSNR with it (in-sample, flattering): "
          f"{fitted_psnr.mean():.3f} ({mean_with_error(fitted_psnr - at_one)})")
    print(f"leave-one-out gains: {fit.left_out.min():.4f} to {fit.left_out.max():.4f}")
    gain = fit.left_out_psnr - at_one
    print(f"leave-one-out PSNR: {fit.left_out_psnr.mean():.3f} | {fit.left_out_psnr[has_twin].mean():.3f} | "
          f"{fit.left_out_psnr[~has_twin].mean():.3f}")
    print(f"leave-one-out gain over gain 1 (paired): all {len(gain)}: {mean_with_error(gain)} | "
          f"{has_twin.sum()} with a twin: {mean_with_error(gain[has_twin])} | {(~has_twin).sum()} without: "
          f"{mean_with_error(gain[~has_twin])}")


if __name__ == "__main__":
    main()
