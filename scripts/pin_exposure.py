"""Training references re-exposed to a model's own choice of brightness (stage 16 in docs/MODEL.md).

Every stage that trained the network's body moved each scene's brightness towards the training references and lost
on scenes it had not seen. This writes a copy of a LOL folder whose *training* references carry the brightness and
colour balance the model already gives them: each reference is multiplied, per channel, by the ratio of the model's
output mean to the reference's mean (one whole-image pass, the view the network trains on), so training on the copy
rewards structure and detail and no longer pulls any image's brightness away from where the model has it. The
validation pairs (``--val-list``) keep their true references, so checkpoints are still chosen on the real task.
The dark inputs are linked, not copied. Nothing here touches eval15.

  python scripts/pin_exposure.py --model mirnet/weights/default.keras --data data/lol-train \\
      --val-list ../shared/data/lol/our485-val.txt --out data/lol-train-pinned-v6
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def channel_gains(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per channel, the output's mean over the reference's: what re-exposes the reference to the output."""
    return output.mean(axis=(0, 1)) / np.maximum(reference.mean(axis=(0, 1)), 1e-6)


def pinned_reference(reference: np.ndarray, output: np.ndarray) -> np.ndarray:
    """``reference`` (float, [0, 1]) scaled per channel to ``output``'s mean colour, clipped, as 8-bit."""
    scaled = reference * channel_gains(output, reference)
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def _replace(path: Path, link_to: Path | None = None) -> Path:
    """Remove what ``path`` holds (a file or a link from an earlier run); link it to ``link_to`` if given."""
    if path.is_symlink() or path.exists():
        path.unlink()
    if link_to is not None:
        os.symlink(os.path.relpath(link_to.resolve(), path.parent.resolve()), path)
    return path


def pin(model_path: Path, data: Path, val_list: Path, out: Path) -> None:
    from PIL import Image

    from mirnet.data import list_pairs, load_pair_arrays, read_name_list, split_pairs
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    training, validation = split_pairs(list_pairs(data), read_name_list(val_list))
    (out / "low").mkdir(parents=True, exist_ok=True)
    (out / "high").mkdir(parents=True, exist_ok=True)
    enhancer = Enhancer(load_model(model_path), tile=None, views=1)
    for pair in [*training, *validation]:
        _replace(out / "low" / pair.name, link_to=pair.low)
    for pair in validation:
        _replace(out / "high" / pair.name, link_to=pair.high)
    gains = []
    for number, pair in enumerate(training, 1):
        low, high = load_pair_arrays(pair)
        output = enhancer.enhance(low)
        gains.append(channel_gains(output, high))
        target = _replace(out / "high" / pair.name)  # never written through a link an earlier run left
        Image.fromarray(pinned_reference(high, output)).save(target)
        if number % 50 == 0 or number == len(training):
            print(f"{number}/{len(training)} references re-exposed", flush=True)
    logs = np.abs(np.log(np.array(gains)))
    print(f"{len(training)} training references re-exposed, {len(validation)} validation references kept; "
          f"mean |log gain| {logs.mean():.4f} (median {np.median(logs):.4f}, largest {logs.max():.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the model whose brightness the references take")
    parser.add_argument("--data", type=Path, required=True, help="a LOL folder (low/, high/)")
    parser.add_argument("--val-list", type=Path, required=True, help="validation names: their references stay")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pin(args.model, args.data, args.val_list, args.out)


if __name__ == "__main__":
    main()
