"""One PNG chunk reader (idcli/provenance.py ``png_chunks``), strict, for every path that walks chunks.

``idcli deliver`` read text chunks with CRCs checked, while signing's ``carries_manifest`` and ``without_manifest``
walked chunk headers only: a damaged manifest chunk read as a manifest there, and its bytes were handed back as
the image before signing. A hostile chunk (cut short, a length past the file's end, a bad CRC) now gets the same
answer from both: PngFormatError saying what is wrong, which the signing side reads as "no manifest here".
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from idcli import delivery_record, provenance, signing
from idcli.provenance import PngFormatError, png_chunks


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png() -> bytes:
    """A real 8x8 PNG with a ``parameters`` text chunk, as Pillow writes it."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a street at night")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def _signed(png: bytes) -> bytes:
    """``png`` with a ``caBX`` chunk before IEND, where c2pa-python puts its manifest (changing no other byte)."""
    return png[:-12] + _chunk(b"caBX", b"manifest store") + png[-12:]


def _where(data: bytes, kind: bytes) -> int:
    return data.index(kind) - 4


def _bad_crc(data: bytes) -> bytes:
    at = _where(data, b"caBX") + 8  # the first payload byte of the manifest chunk
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def _huge_length(data: bytes) -> bytes:
    at = _where(data, b"caBX")
    return data[:at] + struct.pack(">I", 0xFFFFFFF0) + data[at + 4:]


def _cut_short(data: bytes) -> bytes:
    return data[:_where(data, b"caBX") + 14]  # inside the manifest chunk


HOSTILE = [(_bad_crc, r"its caBX chunk's CRC does not match"),
           (_huge_length, r"its caBX chunk claims 4,294,967,280 bytes, past the file's end"),
           (_cut_short, r"its caBX chunk claims 14 bytes, past the file's end")]


def test_a_whole_png_reads_the_same_on_both_paths() -> None:
    png = _png()
    signed = _signed(png)
    assert [kind for kind, _ in png_chunks(signed)][-2:] == [b"caBX", b"IEND"]
    assert delivery_record.png_chunks is png_chunks and delivery_record.PngFormatError is PngFormatError
    assert delivery_record.text_chunk(signed, "parameters") == "a street at night"
    assert signing.carries_manifest(signed) and not signing.carries_manifest(png)
    assert signing.without_manifest(signed) == png and signing.without_manifest(png) is None


@pytest.mark.parametrize(("damage", "said"), HOSTILE, ids=["bad-crc", "huge-length", "cut-short"])
def test_a_hostile_chunk_gets_the_same_answer_on_both_paths(damage, said: str) -> None:
    hostile = damage(_signed(_png()))
    with pytest.raises(PngFormatError, match=said):
        png_chunks(hostile)
    with pytest.raises(PngFormatError, match=said):  # deliver's path: its message says this (docs/delivery.md)
        delivery_record.text_chunk(hostile, "parameters")
    # Signing's path: no manifest can be read from it (the C2PA reader is not asked), no bytes are given back as
    # the image before signing.
    assert not signing.carries_manifest(hostile)
    assert signing.without_manifest(hostile) is None


def test_the_other_ways_a_png_is_not_whole() -> None:
    png = _png()
    with pytest.raises(PngFormatError, match="not a PNG"):
        png_chunks(b"GIF89a" + png[6:])
    # Bytes appended to a whole PNG: it has its IEND (said "no IEND chunk at its end" until 2026-12-02).
    with pytest.raises(PngFormatError, match=r"^8 bytes after its IEND chunk, where a PNG ends$"):
        png_chunks(png + b"trailing")
    with pytest.raises(PngFormatError, match="no IEND chunk at its end"):
        png_chunks(png[:-12])  # the IEND chunk cut off whole
    with pytest.raises(PngFormatError, match="cut short"):
        png_chunks(png[:-12] + png[-12:-4])  # IEND without its CRC
    assert provenance.png_chunk(b"tEXt", b"a\0b") == _chunk(b"tEXt", b"a\0b")


@pytest.mark.parametrize("payload", [b"parameters", b"parameters\0\0\0no language tag"], ids=["tEXt", "iTXt"])
def test_a_text_chunk_without_its_separators_is_named(payload: bytes) -> None:
    """Whole chunks (their CRCs right) whose text has no NUL where the format puts one: deliver's reader failed
    with an IndexError (an internal error, exit 70) rather than saying the PNG is damaged."""
    png = _png()
    kind = b"tEXt" if payload.count(b"\0") == 0 else b"iTXt"
    hostile = png[:-12] + _chunk(kind, payload) + png[-12:]
    hostile = hostile.replace(_chunk(b"tEXt", b"parameters\0a street at night"), b"")  # the real one goes
    with pytest.raises(PngFormatError, match=f"its {kind.decode()} chunk 'parameters' is malformed"):
        delivery_record.text_chunk(hostile, "parameters")
