"""Paired low/high data: the LOL folder layout, validation splits by name, and the tf.data training stream."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from mirnet.imageio import load_rgb_uint8

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Pair:
    """A dark image and its normally exposed reference."""

    name: str
    low: Path
    high: Path


def list_pairs(data_dir: str | Path) -> list[Pair]:
    """Pairs from ``data_dir/low`` and ``data_dir/high``, matched by file name (the LOL layout)."""
    root = Path(data_dir)
    low_dir, high_dir = root / "low", root / "high"
    if not low_dir.is_dir() or not high_dir.is_dir():
        raise FileNotFoundError(f"{root} must contain low/ and high/ folders with the same file names")
    low = {p.name: p for p in low_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    high = {p.name: p for p in high_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    unmatched = sorted(set(low) ^ set(high))
    if unmatched:
        raise ValueError(f"{root}: files without a partner in low/ or high/: {unmatched[:5]}")
    return [Pair(name, low[name], high[name]) for name in sorted(low, key=natural_key)]


def natural_key(name: str) -> tuple:
    """Sorts 2.png before 10.png."""
    stem = Path(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def read_name_list(path: str | Path) -> list[str]:
    """Names, one a line; blank lines and ``#`` comments ignored."""
    lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def split_pairs(pairs: list[Pair], validation_names: list[str]) -> tuple[list[Pair], list[Pair]]:
    """(training, validation); every validation name must exist, so a typo cannot leak data into training."""
    named = set(validation_names)
    missing = named - {pair.name for pair in pairs}
    if missing:
        raise ValueError(f"validation names not found among the pairs: {sorted(missing, key=natural_key)[:5]}")
    return [pair for pair in pairs if pair.name not in named], [pair for pair in pairs if pair.name in named]


@dataclass(frozen=True)
class ImagePair:
    """A pair in memory, whole: H x W x 3 float32 arrays in [0, 1] (what evaluation scores)."""

    name: str
    low: np.ndarray
    high: np.ndarray


def load_image_pair(pair: Pair) -> ImagePair:
    """Read both files of ``pair`` as 8-bit RGB (EXIF orientation applied), scaled to [0, 1]."""
    low, high = (load_rgb_uint8(str(path)).astype(np.float32) / 255.0 for path in (pair.low, pair.high))
    return ImagePair(pair.name, low, high)


def load_validation_pairs(data_dir: str | Path, val_list: str | Path) -> list[ImagePair]:
    """The pairs of ``data_dir`` named in ``val_list``, loaded whole: what scripts validate on."""
    _, validation = split_pairs(list_pairs(data_dir), read_name_list(val_list))
    return [load_image_pair(pair) for pair in validation]


def _decode(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


CropSize = int | tuple[int, int] | list[int]


def crop_shape(crop_size: CropSize) -> tuple[int, int]:
    """(height, width) of a crop given as one side (square) or as [height, width]."""
    if isinstance(crop_size, int):
        return crop_size, crop_size
    height, width = crop_size
    return int(height), int(width)


def _augment(stacked: tf.Tensor, crop_size: CropSize, seed: tf.Tensor) -> tf.Tensor:
    """An aligned random crop of low and high (stacked on channels) and a random flip; square crops are also
    turned by a multiple of 90 degrees, oblong ones by 0 or 180 (a flip up-down) so that all keep one shape."""
    height, width = crop_shape(crop_size)
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    crop = tf.image.stateless_random_crop(stacked, (height, width, 6), seed=seeds[0])
    crop = tf.image.stateless_random_flip_left_right(crop, seed=seeds[1])
    if height != width:
        return tf.image.stateless_random_flip_up_down(crop, seed=seeds[2])
    turns = tf.random.stateless_uniform((), seeds[2], minval=0, maxval=4, dtype=tf.int32)
    return tf.image.rot90(crop, turns)


def training_dataset(pairs: list[Pair], crop_size: CropSize, batch_size: int, seed: int) -> tf.data.Dataset:
    """An endless stream of (low, high) batches of aligned augmented crops, reproducible for a given seed.

    ``crop_size`` is one side (square crops) or [height, width]; [400, 592] trains on almost whole LOL images,
    so the network sees the same global statistics as at inference.

    Decoded images are cached in memory as uint8 (LOL's 485 pairs take about 700 MB); crops are made from
    the cache, so every step sees new crops without decoding again.
    """
    if not pairs:
        raise ValueError("no training pairs")
    lows = tf.constant([str(pair.low) for pair in pairs])
    highs = tf.constant([str(pair.high) for pair in pairs])
    images = (
        tf.data.Dataset.from_tensor_slices((lows, highs))
        .map(lambda lo, hi: tf.concat([_decode(lo), _decode(hi)], axis=-1), num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
        .repeat()
    )
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def to_pair(stacked: tf.Tensor, s: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        crop = _augment(stacked, crop_size, s)
        return tf.cast(crop[..., :3], tf.float32) / 255.0, tf.cast(crop[..., 3:], tf.float32) / 255.0

    crops = tf.data.Dataset.zip(images, seeds).map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return crops.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
