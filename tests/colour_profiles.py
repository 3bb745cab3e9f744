"""ICC colour profiles for tests, written out so no profile file is needed: Display P3 and Adobe RGB (1998) as the
minimal ICC v2 matrix/TRC RGB display profiles they are (a phone photo's, an Adobe RGB still's); and the one plate
shot the colour tests render (tests/test_plate_formats.py, tests/test_review_colour.py)."""

from __future__ import annotations

import struct


def icc_rgb_profile(description: str, red: tuple[float, float, float], green: tuple[float, float, float],
                     blue: tuple[float, float, float], gamma: float) -> bytes:
    """A minimal ICC v2 matrix/TRC RGB display profile (what Display P3 and Adobe RGB are), written out here so the
    test needs no profile file: header, description, white point, the three colorants and one gamma curve."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    text = description.encode() + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0none\0"), (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", xyz(*red)), (b"gXYZ", xyz(*green)), (b"bXYZ", xyz(*blue)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    start = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        data += b"\0" * (-(start + len(data)) % 4)
        table += signature + struct.pack(">II", start + len(data), len(body))
        data += body
    header = (struct.pack(">I", start + len(data)) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntr" + b"RGB XYZ "
              + b"\0" * 12 + b"acspAPPL" + b"\0" * 24 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"lcms" + b"\0" * 44)
    return header + struct.pack(">I", len(tags)) + table + data


def with_float_pipeline(profile: bytes, elements: int) -> bytes:
    """``profile`` with ``elements`` identity matrices chained as its floating-point device-to-PCS pipeline (D2B0 and
    D2B1, one ``mpet`` tag; ICC v4): what LittleCMS reads in place of the matrix and curves, Chromium (skcms) never.
    The chain's entries all point at one matrix, so 65,535 of them take 524 KB."""
    matrix = b"matf\0\0\0\0" + struct.pack(">HH12f", 3, 3, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
    pipeline = (b"mpet\0\0\0\0" + struct.pack(">HHI", 3, 3, elements)
                + struct.pack(">II", 16 + 8 * elements, len(matrix)) * elements + matrix)
    count = struct.unpack(">I", profile[128:132])[0]
    table = b""
    for at in range(132, 132 + 12 * count, 12):  # each tag's offset moved past the two entries added to the table
        offset, size = struct.unpack(">II", profile[at + 4:at + 12])
        table += profile[at:at + 4] + struct.pack(">II", offset + 24, size)
    data = profile[132 + 12 * count:]
    data += b"\0" * (-(132 + 12 * (count + 2) + len(data)) % 4)
    start = 132 + 12 * (count + 2) + len(data)
    table += b"".join(name + struct.pack(">II", start, len(pipeline)) for name in (b"D2B0", b"D2B1"))
    header = struct.pack(">I", start + len(pipeline)) + profile[4:128]
    return header + struct.pack(">I", count + 2) + table + data + pipeline


DISPLAY_P3 = icc_rgb_profile("Display P3", (0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419),
                             (0.1571, 0.0666, 0.7841), 2.2)
ADOBE_RGB = icc_rgb_profile("Adobe RGB (1998)", (0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609),
                            (0.1492, 0.0632, 0.7446), 2.19921875)


# Two characters put into the plate file PLATE (replaced by the test), at the tiny preset's smallest settings.
ONE_PLATE_SHOT = """\
version: 1
project: plate-formats
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 4, guidance: 4.0, sampler: ddim}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: shot
    prompt: "{mara} and {theo} before a window"
    plate: PLATE
"""
