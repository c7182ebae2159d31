"""PSNR and SSIM of a result against the job's reference, with a plain note when they cannot be computed.

The metrics are computed on the PNG exactly as stored (decoded back to 8-bit RGB), so what the API reports is
what anyone gets by comparing the downloaded file with the reference. A reference that is missing, unreadable
or of another size is a note on the job, never a failure of the enhancement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirnet.imageio import DecodedImage, ImageLimits, InvalidImageError, decode_image, to_uint8
from mirnet.metrics import psnr, ssim
from web.core.storage import ObjectStorage

SSIM_MIN_SIDE = 11


@dataclass(frozen=True)
class Reference:
    pixels: np.ndarray | None = None  # uint8 H x W x 3
    note: str | None = None


@dataclass(frozen=True)
class Metrics:
    psnr: float | None = None
    ssim: float | None = None
    note: str | None = None


def load_reference(storage: ObjectStorage, key: str | None, image: DecodedImage, limits: ImageLimits) -> Reference:
    """Read the reference of a job; StorageUnavailable propagates (it is worth a retry)."""
    if not key:
        return Reference()
    try:
        decoded = decode_image(storage.get_bytes(key), name="reference", limits=limits)
    except FileNotFoundError:
        return Reference(note="the reference image is no longer in storage; PSNR/SSIM not computed")
    except InvalidImageError as exc:
        return Reference(note=f"the reference could not be read ({exc.code}: {exc.reason}); PSNR/SSIM not computed")
    if (decoded.width, decoded.height) != (image.width, image.height):
        ref_size, image_size = f"{decoded.width}x{decoded.height}", f"{image.width}x{image.height}"
        return Reference(note=f"the reference is {ref_size} but the image is {image_size}; PSNR/SSIM not computed")
    return Reference(pixels=to_uint8(decoded.rgb))


def score(result_png: bytes, reference: Reference) -> Metrics:
    """Metrics of the stored result against the reference (None when there is none)."""
    if reference.pixels is None:
        return Metrics(note=reference.note)
    result = to_uint8(decode_image(result_png, name="result", limits=ImageLimits(2**40, 2**30, 2**40)).rgb)
    value = psnr(result, reference.pixels)
    if min(result.shape[:2]) < SSIM_MIN_SIDE:
        return Metrics(psnr=value, note=f"the image is smaller than {SSIM_MIN_SIDE} pixels; SSIM not computed")
    return Metrics(psnr=value, ssim=ssim(result, reference.pixels))
