"""Odd inputs are handled; bad ones are refused with a one-line reason before any large allocation."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mirnet.imageio import ImageLimits, InvalidImageError, decode_image, encode_png, to_uint8


def _png(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit PNG written by hand (Pillow cannot write one)."""
    h, w, _ = pixels.shape
    big_endian = pixels.astype(">u2")
    raw = b"".join(b"\x00" + big_endian[row].tobytes() for row in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge image."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def test_rgb_png_round_trips(rng):
    pixels = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    decoded = decode_image(_png(Image.fromarray(pixels)))
    assert decoded.rgb.dtype == np.float32 and decoded.rgb.shape == (7, 9, 3)
    assert np.array_equal(to_uint8(decoded.rgb), pixels)
    out = Image.open(io.BytesIO(encode_png(decoded, decoded.rgb)))
    assert out.mode == "RGB" and np.array_equal(np.asarray(out), pixels)


def test_grayscale_stays_grayscale(rng):
    pixels = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    decoded = decode_image(_png(Image.fromarray(pixels, "L")))
    assert decoded.grayscale and decoded.rgb.shape == (5, 6, 3)
    out = Image.open(io.BytesIO(encode_png(decoded, decoded.rgb)))
    assert out.mode == "L" and np.array_equal(np.asarray(out), pixels)


def test_palette_image_is_decoded_to_its_colours():
    image = Image.new("P", (4, 3))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    decoded = decode_image(_png(image))
    rgb = to_uint8(decoded.rgb)
    assert tuple(rgb[0, 0]) == (255, 0, 0) and tuple(rgb[1, 1]) == (0, 255, 0)


def test_cmyk_jpeg_is_converted_to_rgb():
    buffer = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buffer, format="JPEG", quality=95)
    rgb = to_uint8(decode_image(buffer.getvalue()).rgb)
    assert rgb.shape == (16, 16, 3)
    assert rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 60  # red


def test_alpha_is_passed_through_untouched(rng):
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    decoded = decode_image(_png(Image.fromarray(rgba, "RGBA")))
    assert np.array_equal(decoded.alpha, rgba[..., 3])
    brighter = np.clip(decoded.rgb * 1.5, 0, 1)
    out = np.asarray(Image.open(io.BytesIO(encode_png(decoded, brighter))))
    assert out.shape == (6, 5, 4) and np.array_equal(out[..., 3], rgba[..., 3])


def test_16bit_grayscale_keeps_16_bits():
    values = np.array([[0, 1000, 65535], [300, 40000, 12345]], dtype=np.uint16)
    decoded = decode_image(_png(Image.fromarray(values)))
    assert decoded.bit_depth == 16 and decoded.grayscale
    out = Image.open(io.BytesIO(encode_png(decoded, decoded.rgb)))
    assert np.array_equal(np.asarray(out).astype(np.uint16), values)


def test_16bit_rgb_keeps_16_bits(rng):
    pixels = rng.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    decoded = decode_image(_png16_rgb(pixels))
    assert decoded.bit_depth == 16
    assert np.abs(decoded.rgb * 65535 - pixels).max() < 0.5  # not reduced to 8 bits
    import cv2

    out = cv2.imdecode(np.frombuffer(encode_png(decoded, decoded.rgb), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and np.array_equal(out[..., ::-1], pixels)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (4, 2), (0, 0, 0))
    image.putpixel((0, 0), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=100)
    decoded = decode_image(buffer.getvalue())
    assert decoded.rgb.shape[:2] == (4, 2)  # portrait once rotated
    assert to_uint8(decoded.rgb)[0, 1].mean() > 128  # the white corner moved to the top right


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (7, 3)])
def test_tiny_images_decode(size, rng):
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    assert decode_image(_png(Image.fromarray(pixels))).rgb.shape == (*size, 3)


def _refusal(data: bytes, limits: ImageLimits | None = None) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as caught:
        decode_image(data, name="upload.png", limits=limits)
    message = str(caught.value)
    assert message.startswith("upload.png: ") and "\n" not in message
    return caught.value


def test_zero_bytes_are_refused():
    assert _refusal(b"").code == "empty"


def test_text_is_not_an_image():
    assert _refusal(b"hello, this is not a picture\n" * 10).code == "not_an_image"


def test_truncated_png_is_refused(lol_sample):
    data = (lol_sample / "low" / "2.png").read_bytes()
    assert _refusal(data[: len(data) // 2]).code == "truncated"


def test_truncated_jpeg_is_refused(rng):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    assert _refusal(data[: len(data) // 3]).code == "truncated"


def test_decompression_bomb_is_refused_from_the_header():
    error = _refusal(_bomb_png(30_000, 30_000))
    assert error.code == "decompression_bomb" and "30000x30000" in str(error)


def test_user_limits_are_applied(rng):
    data = _png(Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)))
    assert _refusal(data, ImageLimits(max_pixels=1000)).code == "too_large"
    assert _refusal(data, ImageLimits(max_side=45)).code == "too_large"
    assert _refusal(data, ImageLimits(max_bytes=100)).code == "too_large"


def test_inspect_agrees_with_decode_and_refuses_the_same_inputs(lol_sample):
    from mirnet.imageio import inspect_image

    data = (lol_sample / "low" / "2.png").read_bytes()
    info = inspect_image(data)
    decoded = decode_image(data)
    assert (info.width, info.height, info.format) == (decoded.width, decoded.height, "PNG")
    with pytest.raises(InvalidImageError) as caught:
        inspect_image(data[: len(data) // 2], name="half.png")
    assert caught.value.code == "truncated"
    with pytest.raises(InvalidImageError) as caught:
        inspect_image(_bomb_png(40_000, 40_000))
    assert caught.value.code == "decompression_bomb"


def test_inspect_reports_the_displayed_size_of_rotated_photos():
    from mirnet.imageio import inspect_image

    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (8, 4)).save(buffer, format="JPEG", exif=exif)
    info = inspect_image(buffer.getvalue())
    assert (info.width, info.height) == (4, 8) == (decode_image(buffer.getvalue()).width, 8)
