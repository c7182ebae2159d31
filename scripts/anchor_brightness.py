"""Put a trained network (the detail) and another network's body (the anchor) into one model whose output is the
detail's scaled per channel to the anchor's mean colour: one network chooses each image's brightness, the other
its detail (``anchor=True`` in ``mirnet.architectures``).

The result is written as a run folder beside the detail's, so that ``package_model.py package`` takes it like any
run: ``best.keras`` is the assembled model; the detail run's configuration, state and log are copied (the training
that produced the weights is the detail's); ``best.json`` is the detail's card with the new arguments and an
``anchor`` record of where the anchor came from and of this command, and the assembled model's own
validation PSNR/SSIM (whole images, 1 view outside) in place of the detail's. ``--body-views`` puts the
detail's test-time views inside the network (its refinement then runs once, on their average) so that the anchor
runs once; the model is then used with 1 view outside.

Usage:
  python scripts/anchor_brightness.py --detail runs/pinned-exposure-from-v6 --anchor mirnet/weights/default.keras \
      --body-views 3 --out runs/anchored-3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from mirnet.choices import VIEW_COUNTS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RUN_FILES = ("config.json", "state.json", "log.csv")


def assemble(detail_run: Path, anchor_path: Path, body_views: int, out: Path, command: str) -> dict:
    """Write ``out`` (a run folder) holding the anchored model; returns its card."""
    from mirnet.architectures import build_model
    from mirnet.models import file_sha256, load_model, save_model
    from mirnet.training import load_anchor_weights, load_weights_by_layer

    detail = load_model(detail_run / "best.keras")
    anchor = load_model(anchor_path)
    if detail.architecture != anchor.architecture:
        raise SystemExit(f"the detail is a {detail.architecture}, the anchor a {anchor.architecture}")
    body = ("num_rrg", "num_mrb", "channels", "fold")
    if any(detail.arguments.get(key) != anchor.arguments.get(key) for key in body):
        raise SystemExit(f"the anchor's body must have the detail's shape ({', '.join(body)})")
    arguments = {**detail.arguments, "body_views": body_views, "anchor": True}
    model = build_model(detail.architecture, **arguments)
    load_weights_by_layer(model, detail.model)
    load_anchor_weights(model, anchor.model)
    validation = _validate(model, detail.architecture, arguments, detail.card["training"])
    card = {
        **detail.card,
        "arguments": arguments,
        "description": (
            f"{detail.card.get('description', detail_run.name)}; its output scaled per channel to the mean colour "
            f"of {anchor.version}'s body (the anchor), with {body_views} views of its body inside the network"
        ),
        "anchor": {
            "from": str(anchor_path),
            "version": anchor.version,
            "sha256": file_sha256(anchor_path),
            "detail": str(detail_run / "best.keras"),
            "command": command,
        },
        "inference": {"views": 1},
        "validation": validation,
    }
    for key in ("parameters", "sha256"):  # save_model writes the assembled model's own
        card.pop(key, None)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        shutil.copyfile(detail_run / name, out / name)
    save_model(model, out / "best.keras", card)
    return json.loads((out / "best.json").read_text())


def _validate(model, architecture: str, arguments: dict, training: dict) -> dict:
    """The assembled model's validation PSNR/SSIM (whole images, its body views inside, the network run once), on
    the detail run's split."""
    from mirnet.data import load_validation_arrays
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel
    from mirnet.training import evaluate_pairs

    arrays = load_validation_arrays(training["data"], training["validation_list"])
    loaded = LoadedModel(model, {"architecture": architecture, "arguments": arguments}, "assembled", "assembled")
    psnr, ssim, _ = evaluate_pairs(Enhancer(loaded, tile=None), arrays)
    return {"psnr": psnr, "ssim": ssim}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detail", type=Path, required=True, help="the run folder of the trained network")
    parser.add_argument("--anchor", type=Path, required=True, help="the .keras model whose body sets the brightness")
    parser.add_argument("--body-views", type=int, default=3, choices=VIEW_COUNTS)
    parser.add_argument("--out", type=Path, required=True, help="the run folder to write")
    args = parser.parse_args()
    command = (
        f"python scripts/anchor_brightness.py --detail {args.detail} --anchor {args.anchor} "
        f"--body-views {args.body_views} --out {args.out}"
    )
    card = assemble(args.detail, args.anchor, args.body_views, args.out, command)
    print(f"{args.out / 'best.keras'}: {card['parameters']:,} parameters, arguments {card['arguments']}")


if __name__ == "__main__":
    main()
