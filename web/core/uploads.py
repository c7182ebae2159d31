"""Validation of uploaded images before anything is stored.

Every check runs here, on bytes in memory, so a rejected upload leaves nothing behind in storage or the
database. ``mirnet.imageio.inspect_image`` checks the limits from the header before pixels are decoded, then
decodes them in their own type (no float copy), with the same reader the worker uses, so an accepted upload
is one the worker can read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mirnet.imageio import ImageLimits, InvalidImageError, inspect_image
from web.core.errors import UploadRejected
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
        info = inspect_image(data, name=name, limits=image_limits(settings))
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
