"""Images per second at batch 1 vs the configured batch size, measured in one run on the same images.

Batch 1 is what a worker with MAX_BATCH=1 does: one image per model pass. The batched run is what the worker
does with MAX_BATCH=N: N images per ``enhance_many`` call, their tiles sharing model batches of up to N.
Both enhancers are warmed up first (graph tracing is not counted) and the two runs alternate for ``--rounds``
rounds, so a noisy neighbour slows both alike. The model is the configured one (MODEL, or the packaged
default); when there is none, an untrained mirnet-lite of the size given by ``--lite-*`` (speed does not
depend on the weights).

    python scripts/bench_batching.py [--images DIR] [--batch N] [--repeat 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from web.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_IMAGES = REPO_ROOT.parent / "shared" / "data" / "lol" / "sample" / "low"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of input images")
    parser.add_argument("--batch", type=int, default=settings.max_batch, help="batch size (MAX_BATCH)")
    parser.add_argument("--repeat", type=int, default=2, help="use each image this many times")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of each mode, alternating")
    parser.add_argument("--model", default=settings.model, help="model path or packaged name (MODEL)")
    parser.add_argument("--tile", type=int, default=settings.tile)
    parser.add_argument("--lite-groups", type=int, default=2)
    parser.add_argument("--lite-blocks", type=int, default=2)
    parser.add_argument("--lite-channels", type=int, default=32)
    return parser.parse_args(argv)


def load_images(folder: Path, repeat: int) -> list[np.ndarray]:
    from mirnet.imageio import decode_image

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return [decode_image(p.read_bytes(), name=p.name).rgb for p in paths] * repeat


def load_loaded_model(args: argparse.Namespace):  # -> mirnet.models.LoadedModel
    from mirnet.models import ModelLoadError, load_model

    try:
        return load_model(args.model)
    except ModelLoadError as exc:
        if args.model is not None:
            raise SystemExit(f"cannot load {args.model}: {exc}") from exc
    import keras

    from mirnet.architectures import build_model
    from mirnet.models import LoadedModel

    arguments = {"groups": args.lite_groups, "blocks": args.lite_blocks, "channels": args.lite_channels}
    keras.utils.set_random_seed(0)
    model = build_model("mirnet-lite", **arguments)
    card = {"architecture": "mirnet-lite", "arguments": arguments}
    return LoadedModel(model=model, card=card, version="mirnet-lite-untrained", source="built in memory")


def run(enhancer, images: list[np.ndarray], batch: int) -> float:  # noqa: ANN001 (a TensorFlow type)
    """Seconds to enhance ``images`` in groups of ``batch``, as the worker would."""
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        enhancer.enhance_many(images[start : start + batch])
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from mirnet.inference import Enhancer

    images = load_images(args.images, args.repeat)
    loaded = load_loaded_model(args)
    single = Enhancer(loaded, tile=args.tile, batch_size=1)
    batched = Enhancer(loaded, tile=args.tile, batch_size=args.batch)
    run(single, images, 1)  # warm-up: trace every window shape once
    run(batched, images, args.batch)
    single_s = batched_s = 0.0
    for _ in range(args.rounds):
        single_s += run(single, images, 1)
        batched_s += run(batched, images, args.batch)
    count = len(images) * args.rounds
    size = f"{images[0].shape[1]}x{images[0].shape[0]}"
    architecture, arguments = loaded.card["architecture"], loaded.card["arguments"]
    print(f"model: {loaded.version} ({architecture} {arguments}), tile {args.tile}")
    print(f"images: {len(images)} ({size}) from {args.images}, {args.rounds} timed rounds per batch size")
    one, many = count / single_s, count / batched_s
    print(f"batch 1: {one:.3f} images/s")
    print(f"batch {args.batch}: {many:.3f} images/s")
    print(f"ratio (batch {args.batch} / batch 1): {many / one:.2f}x")


if __name__ == "__main__":
    main()
