"""Decode and encode user images safely, without TensorFlow.

Every refusal happens as early as it can: the byte count before anything is parsed, the header's dimensions
before a single pixel is decoded. What comes out is always float32 RGB in [0, 1] for the network, plus what is
needed to write the result back the way the user gave it (bit depth, alpha, grayscale).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Pillow's own bomb check is replaced by ours (configurable, and raised before decoding).
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUPPORTED_FORMATS = {"PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP", "GIF", "PPM"}
# A real photograph needs far more than one byte per hundred pixels, even as PNG.
_BOMB_PIXELS_PER_BYTE = 100
# zlib level of written PNGs: 1 encodes LOL's 600x400 results about 5x faster than Pillow's default 6 (0.08 s against
# 0.37 s each on a busy 2-core machine) for files about 12% larger; OpenCV's default for 16-bit PNGs is 1 too.
PNG_COMPRESS_LEVEL = 1


class InvalidImageError(ValueError):
    """An input that cannot be enhanced. ``str(err)`` is one line naming the file and the reason."""

    def __init__(self, name: str, reason: str, code: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class ImageLimits:
    """What an input may be. Checked before any large allocation."""

    max_pixels: int = 50_000_000
    max_side: int = 20_000
    max_bytes: int = 100 * 2**20


@dataclass
class DecodedImage:
    """An image ready for the network, and what is needed to write its result back faithfully."""

    rgb: np.ndarray  # float32, H x W x 3, in [0, 1], EXIF orientation applied
    alpha: np.ndarray | None  # H x W, uint8 or uint16 like the source, passed through untouched
    bit_depth: int  # 8 or 16
    grayscale: bool
    mode: str  # the source's Pillow mode, for reports

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def read_header(data: bytes, name: str = "image", limits: ImageLimits | None = None) -> Image.Image:
    """Open ``data`` lazily and check size limits from the header alone; no pixel is decoded."""
    limits = limits or ImageLimits()
    if len(data) == 0:
        raise InvalidImageError(name, "the file is empty (zero bytes)", "empty")
    if len(data) > limits.max_bytes:
        raise InvalidImageError(
            name, f"the file has {len(data):,} bytes, over the limit of {limits.max_bytes:,}", "too_large"
        )
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidImageError(name, "not an image (no known image format recognised)", "not_an_image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(name, f"unreadable image header ({exc})", "truncated") from None
    if image.format not in _SUPPORTED_FORMATS:
        raise InvalidImageError(name, f"unsupported image format {image.format}", "not_an_image")
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImageError(name, f"invalid dimensions {width}x{height}", "not_an_image")
    pixels = width * height
    if pixels > limits.max_pixels or max(width, height) > limits.max_side:
        limit = f"{limits.max_pixels:,} pixels and {limits.max_side:,} per side"
        if pixels > _BOMB_PIXELS_PER_BYTE * len(data):
            reason = f"decompression bomb: the header claims {width}x{height} from {len(data):,} bytes"
            raise InvalidImageError(name, f"{reason} (limit {limit})", "decompression_bomb")
        raise InvalidImageError(name, f"{width}x{height} is over the limit of {limit}", "too_large")
    return image


@dataclass(frozen=True)
class ImageInfo:
    """What validation learned about an image: its displayed size (EXIF orientation applied) and format."""

    width: int
    height: int
    format: str
    mode: str


_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}


def _load_pixels(image: Image.Image, name: str) -> None:
    """Decode the pixels in the source's own type; truncated or corrupt data becomes an InvalidImageError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError(name, f"truncated or corrupt image data ({exc})", "truncated") from None


def inspect_image(data: bytes, name: str = "image", limits: ImageLimits | None = None) -> ImageInfo:
    """Check that ``data`` is a complete image within ``limits``, without converting its pixels to floats.

    The web tier uses this: it needs to know an upload is sound, and a quarter of the memory decode_image takes.
    """
    image = read_header(data, name, limits)
    _load_pixels(image, name)
    width, height = image.size
    if image.getexif().get(0x0112, 1) in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width, height, image.format or "", image.mode)


def decode_image(data: bytes, name: str = "image", limits: ImageLimits | None = None) -> DecodedImage:
    """Decode ``data`` into a :class:`DecodedImage`, or raise :class:`InvalidImageError`."""
    image = read_header(data, name, limits)
    _load_pixels(image, name)
    if _is_16bit_color_png(data):
        return _decode_16bit_color_png(data, image, name)
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(name, f"corrupt EXIF orientation ({exc})", "truncated") from None
    return _from_pillow(image)


def _from_pillow(image: Image.Image) -> DecodedImage:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.asarray(image, dtype=np.float64)
        gray = np.clip(gray, 0, 65535) / 65535.0
        return DecodedImage(_gray_to_rgb(gray), None, 16, True, mode)
    if mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
        return DecodedImage(_gray_to_rgb(gray), None, 8, True, mode)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in ("L", "LA"):
        arr = np.asarray(image)
        gray = (arr[..., 0] if arr.ndim == 3 else arr).astype(np.float32) / 255.0
        alpha = arr[..., 1].copy() if image.mode == "LA" else None
        return DecodedImage(_gray_to_rgb(gray), alpha, 8, True, mode)
    alpha = None
    if image.mode in ("RGBA", "RGBa"):
        alpha = np.asarray(image.getchannel("A")).copy()
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return DecodedImage(rgb, alpha, 8, False, mode)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray.astype(np.float32)[..., None], 3, axis=2)


def _is_16bit_color_png(data: bytes) -> bool:
    """Pillow silently reduces 48/64-bit PNGs to 8 bits; detect them from IHDR (bit depth 16, colour 2 or 6)."""
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 29 or data[12:16] != b"IHDR":
        return False
    return data[24] == 16 and data[25] in (2, 6)


def _decode_16bit_color_png(data: bytes, header: Image.Image, name: str) -> DecodedImage:
    import cv2  # only needed for 16-bit colour, which Pillow cannot keep

    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16:
        raise InvalidImageError(name, "truncated or corrupt 16-bit PNG data", "truncated")
    channels = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    rgb = channels[..., :3].astype(np.float32) / 65535.0
    alpha = channels[..., 3].copy() if channels.shape[2] == 4 else None
    orientation = header.getexif().get(0x0112, 1)
    decoded_image = DecodedImage(rgb, alpha, 16, False, "RGB;16")
    return _apply_orientation(decoded_image, orientation)


def _apply_orientation(image: DecodedImage, orientation: int) -> DecodedImage:
    ops = {2: "lr", 3: "r180", 4: "ud", 5: "t", 6: "r270", 7: "tv", 8: "r90"}
    op = ops.get(orientation)
    if op is None:
        return image

    def fix(a: np.ndarray) -> np.ndarray:
        if op == "lr":
            return a[:, ::-1]
        if op == "ud":
            return a[::-1]
        if op == "r180":
            return a[::-1, ::-1]
        if op == "r90":
            return np.rot90(a, 1)
        if op == "r270":
            return np.rot90(a, -1)
        if op == "t":
            return np.swapaxes(a, 0, 1)
        return np.rot90(np.swapaxes(a, 0, 1), 2)

    alpha = None if image.alpha is None else np.ascontiguousarray(fix(image.alpha))
    return DecodedImage(np.ascontiguousarray(fix(image.rgb)), alpha, image.bit_depth, image.grayscale, image.mode)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] and round (not truncate) to 8 bits."""
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(rgb: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(rgb, 0.0, 1.0) * 65535.0).astype(np.uint16)


def encode_png(image: DecodedImage, enhanced_rgb: np.ndarray) -> bytes:
    """Write ``enhanced_rgb`` as PNG the way the source was: same bit depth, grayscale kept, alpha passed through."""
    if enhanced_rgb.shape[:2] != image.rgb.shape[:2]:
        raise ValueError(f"enhanced shape {enhanced_rgb.shape} does not match the source {image.rgb.shape}")
    if image.grayscale:
        enhanced_rgb = enhanced_rgb.mean(axis=2, keepdims=True)
    if image.bit_depth == 16:
        return _encode_png16(image, enhanced_rgb)
    pixels = to_uint8(enhanced_rgb)
    if image.alpha is not None:
        alpha = image.alpha if image.alpha.dtype == np.uint8 else (image.alpha >> 8).astype(np.uint8)
        pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
    if pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _encode_png16(image: DecodedImage, enhanced_rgb: np.ndarray) -> bytes:
    import cv2

    pixels = to_uint16(enhanced_rgb)
    if image.alpha is not None:
        alpha = image.alpha if image.alpha.dtype == np.uint16 else image.alpha.astype(np.uint16) * 257
        pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
    if pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL])
    if not ok:
        raise ValueError("could not encode the 16-bit PNG")
    return encoded.tobytes()


def load_rgb_uint8(path: str) -> np.ndarray:
    """Read an image file as 8-bit RGB (for metrics against references)."""
    with open(path, "rb") as handle:
        decoded = decode_image(handle.read(), name=path, limits=ImageLimits(max_pixels=2**31, max_side=2**20))
    return to_uint8(decoded.rgb)
