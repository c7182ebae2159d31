"""Validation of uploaded images before anything is stored.

Every check runs here, on bytes in memory, so a rejected upload leaves nothing behind in storage or the
database. ``mirnet.imageio.inspect_image`` checks the limits from the header before pixels are decoded, then
decodes them in their own type (no float copy), with the same reader the worker uses, so an accepted upload
is one the worker can read.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mirnet.imageio import ImageLimits, InvalidImageError, inspect_image, read_header
from web.core.errors import ServerBusy, UploadRejected
from web.core.settings import Settings

# Declared types we accept. Browsers and curl send image/<format>, or octet-stream when they do not know.
ACCEPTED_CONTENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/tiff",
        "image/bmp",
        "image/x-ms-bmp",
        "image/webp",
        "image/gif",
        "image/x-portable-pixmap",
        "application/octet-stream",
        "",
    }
)
_FORMAT_TYPES = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),
    "TIFF": ("tif", "image/tiff"),
    "BMP": ("bmp", "image/bmp"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "PPM": ("ppm", "image/x-portable-pixmap"),
}


@dataclass(frozen=True)
class ValidatedImage:
    """An upload that decoded under the limits, with what the job row and storage need."""

    data: bytes
    width: int
    height: int
    extension: str
    content_type: str
    sha256: str


def image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(max_pixels=settings.max_pixels, max_side=settings.max_side, max_bytes=settings.max_upload_bytes)


def _refuse_amplification(size: tuple[int, int], length: int, field: str, name: str, settings: Settings) -> None:
    """A large image from few bytes (a one-colour 7000x7000 PNG is 143 KB) costs the web process hundreds
    of MiB to decode: above DECODE_CHECK_PIXELS, more than MAX_PIXELS_PER_BYTE pixels per byte is a bomb."""
    pixels = size[0] * size[1]
    if pixels > settings.decode_check_pixels and pixels > settings.max_pixels_per_byte * length:
        message = (
            f"{name}: {size[0]}x{size[1]} from {length:,} bytes is over {settings.max_pixels_per_byte} pixels "
            "per byte (a decompression bomb)"
        )
        raise UploadRejected(field, "decompression_bomb", message)


@functools.cache
def _decode_slots(count: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(count)


@contextmanager
def decode_slot(settings: Settings) -> Iterator[None]:
    """At most MAX_CONCURRENT_DECODES uploads decode at once in this process; the next waits DECODE_WAIT_S
    and then gets a 503, so a burst of uploads cannot multiply the decode memory."""
    slots = _decode_slots(settings.max_concurrent_decodes)
    if not slots.acquire(timeout=settings.decode_wait_s):
        raise ServerBusy("the server is decoding as many uploads as it may; try again shortly")
    try:
        yield
    finally:
        slots.release()


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def validate_image(
    data: bytes, field: str, filename: str, content_type: str | None, settings: Settings
) -> ValidatedImage:
    """Return the validated image or raise :class:`UploadRejected` with a code saying what is wrong."""
    declared = _media_type(content_type)
    if declared not in ACCEPTED_CONTENT_TYPES:
        raise UploadRejected(
            field, "unsupported_media_type", f"{field}: content type {declared!r} is not an image type"
        )
    name = f"{field} ({filename})" if filename else field
    if len(data) > settings.max_upload_bytes:
        message = f"{name}: {len(data):,} bytes is over the limit of {settings.max_upload_bytes:,}"
        raise UploadRejected(field, "too_large", message)
    try:
        limits = image_limits(settings)
        _refuse_amplification(read_header(data, name, limits).size, len(data), field, name, settings)
        with decode_slot(settings):
            info = inspect_image(data, name=name, limits=limits)
    except InvalidImageError as exc:
        raise UploadRejected(field, exc.code, str(exc)) from exc
    extension, stored_type = _FORMAT_TYPES.get(info.format, ("bin", "application/octet-stream"))
    return ValidatedImage(
        data=data,
        width=info.width,
        height=info.height,
        extension=extension,
        content_type=stored_type,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def reference_note(image: ValidatedImage, reference: ValidatedImage | None) -> str | None:
    """A per-job note when the reference cannot be compared pixel for pixel (metrics are then skipped)."""
    if reference is None or (reference.width, reference.height) == (image.width, image.height):
        return None
    return (
        f"reference is {reference.width}x{reference.height} but the image is {image.width}x{image.height}; "
        "PSNR and SSIM are not computed"
    )
