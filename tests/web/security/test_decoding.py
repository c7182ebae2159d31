"""Finding 3: decode amplification. A one-colour 7000x7000 PNG (143 KB, under every limit) must be refused
before its 147 MB of pixels are decoded, and decodes are bounded in number per process."""

from __future__ import annotations

import struct
import zlib

from tests.web.conftest import Images, upload
from tests.web.security.conftest import Site


def one_colour_png(width: int, height: int) -> bytes:
    """An RGB PNG of one colour, compressed row by row (the 147 MB of pixels never exist in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer, row = zlib.compressobj(9), b"\x00" + b"\x10\x10\x18" * width
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_a_giant_one_colour_png_under_the_limits_is_refused_undecoded(make_laptop) -> None:  # noqa: ANN001
    site: Site = make_laptop(max_pixels=50_000_000, max_upload_bytes=50 * 2**20)
    data = one_colour_png(7000, 7000)
    assert len(data) < 200_000
    response = upload(site.client, data, filename="flat.png")
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "decompression_bomb" and error["field"] == "image"
    assert site.enqueued == []


def test_an_ordinary_photo_still_passes(make_laptop, images: Images) -> None:  # noqa: ANN001
    site: Site = make_laptop(max_pixels=50_000_000, max_upload_bytes=50 * 2**20)
    assert upload(site.client, images.low).status_code == 202


def test_decodes_are_bounded_in_number(make_laptop, images: Images) -> None:  # noqa: ANN001
    from web.core.uploads import decode_slot  # here, so the other probes run on code without it

    site: Site = make_laptop(max_concurrent_decodes=1, decode_wait_s=0.2)
    settings = site.app.extensions["lowlight"].settings
    with decode_slot(settings):  # another request is decoding
        busy = upload(site.client, images.low)
    assert busy.status_code == 503 and busy.get_json()["error"]["code"] == "busy"
    assert busy.headers["Retry-After"]
    assert upload(site.client, images.low).status_code == 202
