"""Would pulling each output's brightness towards a typical brightness help? Measured on validation only.

Most of what the packaged model loses on eval15 is global brightness (its GT-mean PSNR is 3 dB above the
standard one), and how bright a LOL reference is can hardly be read off its dark input
(``scripts/exposure_stats.py``). When a quantity cannot be predicted well, shrinking a noisy prediction of it
towards its typical value lowers the squared error. This script measures that on the validation split: each
output's log mean brightness is moved a share ``alpha`` of the way towards ``c``, the mean log brightness of the
training references (our485 minus the validation split; eval15 is never read):

    shrunk = clip(output * exp(alpha * (c - log(mean(output)))), 0, 1)

and it prints, for each alpha, the validation PSNR and SSIM (8-bit, as ``lowlight eval`` scores) on all pairs,
on those with a training twin and on those without (``scripts/validation_scenes.py``), the mean per-image gain
over alpha = 0 with its paired standard error, and the GT-mean PSNR (each output scaled to its reference's mean
brightness: the ceiling of any global brightness correction).

Usage:
  python scripts/brightness_prior.py [--model mirnet/weights/default.keras] [--views 3] [--alphas 0 0.25 0.5 0.75 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def log_of_mean(mean: float | np.ndarray) -> np.ndarray:
    """The log of a mean brightness (or of several), kept finite for a black image."""
    return np.log(np.maximum(mean, 1e-6))


def log_brightness(image: np.ndarray) -> float:
    return float(log_of_mean(float(image.mean())))


def shrink_brightness(image: np.ndarray, alpha: float, target: float) -> np.ndarray:
    """Move the image's log mean brightness a share ``alpha`` of the way to ``target`` (one gain, all channels)."""
    gain = np.exp(alpha * (target - log_brightness(image)))
    return np.clip(image * gain, 0.0, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "mirnet" / "weights" / "default.keras")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--data", type=Path, default=REPO / "data" / "lol-train")
    parser.add_argument("--val-list", type=Path, default=REPO.parent / "shared" / "data" / "lol" / "our485-val.txt")
    args = parser.parse_args()

    import validation_scenes as scenes  # beside this script, which Python puts first on sys.path
    from tqdm import tqdm

    from mirnet.evaluation import gt_mean_psnr
    from mirnet.imageio import load_rgb_uint8, to_uint8
    from mirnet.inference import Enhancer
    from mirnet.metrics import psnr, ssim
    from mirnet.models import load_model

    search = scenes.find_twins(args.data, args.val_list, threshold=0.95)
    twin_of = search.has_twin()
    has_twin = np.array([twin_of[pair.name] for pair in search.validation])
    training_logs = log_of_mean(search.train_brightness)
    target, spread = float(training_logs.mean()), float(training_logs.std())
    print(f"training references: mean log brightness {target:.3f} (mean {np.exp(target):.3f}), spread {spread:.3f}")

    enhancer = Enhancer(load_model(args.model), tile=None, views=args.views)
    references, outputs = [], []
    for pair in tqdm(search.validation, desc="enhancing validation pairs", unit="image"):
        low = load_rgb_uint8(str(pair.low)).astype(np.float32) / 255.0
        references.append(load_rgb_uint8(str(pair.high)))
        outputs.append(enhancer.enhance(low))

    reference_logs = np.array([log_brightness(ref / 255.0) for ref in references])
    errors = np.array([log_brightness(out) for out in outputs]) - reference_logs
    to_target = target - reference_logs
    print(
        f"mean |log brightness error|: model {np.abs(errors).mean():.3f}, the training mean alone "
        f"{np.abs(to_target).mean():.3f}; correlation of the model's error with the reference's offset from the "
        f"training mean: {np.corrcoef(errors, to_target)[0, 1]:.3f}"
    )
    ceiling = np.array([gt_mean_psnr(to_uint8(out), ref) for out, ref in zip(outputs, references, strict=True)])
    print(
        f"GT-mean PSNR (not the standard metric; the ceiling of a global correction): {ceiling.mean():.3f} | "
        f"{ceiling[has_twin].mean():.3f} | {ceiling[~has_twin].mean():.3f}"
    )
    print(
        f"validation, {args.views} view(s): all {has_twin.size} | {has_twin.sum()} with a twin | "
        f"{(~has_twin).sum()} without"
    )
    base = None
    for alpha in args.alphas:
        shrunk = [to_uint8(shrink_brightness(out, alpha, target)) for out in outputs]
        psnrs, ssims = np.array([(psnr(o, r), ssim(o, r)) for o, r in zip(shrunk, references, strict=True)]).T
        line = (
            f"alpha {alpha:.2f}: PSNR {psnrs.mean():.3f} | {psnrs[has_twin].mean():.3f} | "
            f"{psnrs[~has_twin].mean():.3f}; SSIM {ssims.mean():.4f}"
        )
        if base is None:
            base = ("alpha 0" if alpha == 0 else f"alpha {alpha:.2f}", psnrs)
        else:
            line += "; " + scenes.paired_difference(psnrs, base[0], base[1], has_twin)
        print(line, flush=True)


if __name__ == "__main__":
    main()
