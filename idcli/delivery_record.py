"""What a delivered frame says about itself: the render's record without the studio's disk layout.

A committed PNG carries the reproducible record in its ``idcli`` chunk, local paths included (selfies,
packs, face models, model folders, plates): right inside the studio, wrong in a frame sent to a client.
``idcli deliver`` (idcli/delivery.py) writes a copy whose ``idcli`` chunk and sidecar are the
*delivery record* made here:

- every folder and absolute path dropped (``abs_path``, ``folder``, ``pack_path``, caches, masks), the
  selfies' names too (they name people; their sha256s stay), a plate and a local model, adapter or image
  encoder reduced to the file or folder name;
- every hash kept (job key, selfies', pack's, embedding's, face models', adapter's, model's, plate's),
  so the studio can match the frame to its take and reproduce it from its own folder;
- ``delivery``: that it is a delivery copy, of which take (its job key, its file name and sha256), and
  whether its C2PA signature was carried.

The PNG's pixel data is copied chunk for chunk (the same pixels, not re-encoded). This module does no
file I/O.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

# The one strict chunk reader lives with the rest of the PNG format (idcli/provenance.py); these names stay
# importable from here.
from .provenance import PNG_SIGNATURE, png_chunk, png_chunks
from .provenance import PngFormatError as PngFormatError

DELIVERY_SCHEMA = 1
DELIVERY_KIND = "idcli-delivery-copy"

# Keys whose values are folders, absolute paths or files of the studio a recipient has no use for.
_DROPPED_KEYS = frozenset({"abs_path", "folder", "cache", "pack", "pack_path", "pack_file", "mask", "mask_strip",
                           "sidecar", "sidecar_path"})
# Run facts of a sidecar (which host, when, which batch, review QA, what fusion did): not the frame's record.
_RUN_FIELDS = ("batch", "timing", "executor", "recovered", "reused", "qa", "fusion", "c2pa", "orphan", "compile")
# Text written by people (prompts, descriptions): never reduced, only checked for the studio's own folders.
# ``descriptions`` holds such texts by character name.
TEXT_KEYS = frozenset({"prompt", "negative_prompt", "semantic_prompt", "shot_prompt", "description", "descriptions",
                       "phrase", "given"})
# PNG chunks a delivered copy keeps byte for byte: the image itself and how to show it. Every other
# ancillary chunk (unknown text, EXIF, a C2PA manifest that no longer matches) is left out.
_KEPT_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD",
                          b"pHYs", b"IDAT", b"IEND"})
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def file_name(path: str) -> str:
    """The last component of a path as either system writes it (``C:\\a\\b.png`` and ``a/b.png``: ``b.png``)."""
    return PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name


def looks_absolute(text: str) -> bool:
    """Whether a value reads as an absolute or home-relative path on some system."""
    return text.startswith(("/", "~", "\\\\")) or bool(_WINDOWS_DRIVE.match(text))


def delivery_record(sidecar: dict[str, Any], *, delivered_name: str, source_name: str, source_sha256: str,
                    signature: str, source_unsigned_sha256: str | None = None) -> dict[str, Any]:
    """The path-free record of a delivered copy of the take ``sidecar`` describes.

    ``delivered_name``: the copy's file name; ``source_name``/``source_sha256``: the take's file name and
    the sha256 of its file as committed (signed or not); ``signature``: ``carried`` (the copy is signed with
    the take as its parent ingredient), ``not-carried`` (the take was signed, the copy is not: ``--unsigned``)
    or ``none`` (the take was not signed)."""
    record = {k: v for k, v in json.loads(json.dumps(sidecar)).items() if k not in _RUN_FIELDS}
    image = found if isinstance(found := record.get("image"), dict) else {}
    record = _path_free(record)
    record["image"] = {"path": delivered_name, "width": image.get("width"), "height": image.get("height")}
    record["delivery"] = {
        "schema": DELIVERY_SCHEMA, "kind": DELIVERY_KIND,
        "source": {"job_key": sidecar.get("job_key"), "shot_id": sidecar.get("shot_id"), "take": sidecar.get("take"),
                   "image": source_name, "sha256": source_sha256,
                   **({"unsigned_sha256": source_unsigned_sha256} if source_unsigned_sha256 else {})},
        "signature": signature,
    }
    return record


def _path_free(value: Any, key: str | None = None) -> Any:
    """``value`` with the studio's paths dropped or reduced to names (see the module docstring)."""
    if key in TEXT_KEYS:
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        local = value.get("source") == "local"  # a model, adapter or image encoder read from a local path
        for name, item in value.items():
            if name in _DROPPED_KEYS or name.endswith("_path"):
                continue
            if name == "selfie_files" and isinstance(item, list):  # selfie names name people: hashes only
                out[name] = [{"sha256": f.get("sha256")} for f in item if isinstance(f, dict)]
            elif isinstance(item, str) and (name in ("path", "file") or (name == "id" and local)):
                out[name] = file_name(item)
            else:
                out[name] = _path_free(item, name)
        return out
    if isinstance(value, list):
        return [_path_free(item, key) for item in value]
    if isinstance(value, str) and key not in TEXT_KEYS and looks_absolute(value):
        return file_name(value)  # a path under a key this module does not know yet: its name only
    return value


def local_strings(sidecar: dict[str, Any], out_dir: str) -> set[str]:
    """Texts that must not appear in anything delivered: the output folder, and every path the take's
    sidecar records (absolute ones with their folders; relative ones, which name folders, whole)."""
    found = {out_dir.rstrip("/")}

    def walk(value: Any, key: str | None, local: bool) -> None:
        if key in TEXT_KEYS:
            return
        if isinstance(value, dict):
            is_local = value.get("source") == "local"
            for name, item in value.items():
                walk(item, name, is_local)
        elif isinstance(value, list):
            for item in value:
                walk(item, key, local)
        elif isinstance(value, str):
            pathish = (key in _DROPPED_KEYS or (key or "").endswith("_path") or key in ("path", "file")
                       or (key == "id" and local) or looks_absolute(value))
            if not pathish or value in ("", file_name(value)):
                return
            found.add(value)
            if looks_absolute(value):
                parent = str(PureWindowsPath(value).parent if "\\" in value else PurePosixPath(value).parent)
                if len(parent) > 1 and parent not in ("~", "\\\\"):
                    found.add(parent)

    walk(sidecar, None, False)
    found.discard("")
    return found


def leaks(data: bytes, forbidden: set[str]) -> list[str]:
    """The ``forbidden`` texts found in ``data`` (as UTF-8, and as JSON escapes them)."""
    hits = []
    for text in sorted(forbidden):
        forms = {text.encode("utf-8"), json.dumps(text)[1:-1].encode("utf-8")}
        if any(form in data for form in forms):
            hits.append(text)
    return hits


# -- the A1111 parameters chunk -------------------------------------------------------------------------


def parameters_without_paths(text: str, record: dict[str, Any]) -> str:
    """The ``parameters`` text with its path-valued settings reduced to names: ``idcli plate`` (the plate as the
    shot list wrote it, folders included) and, for a local model folder, ``Model``. The prompt lines stay."""
    from .provenance import a1111_value

    head, _, line = text.rpartition("\n")
    if not line.startswith("Steps: "):
        return text
    plate = found if isinstance(found := record.get("plate"), dict) else {}
    model = found if isinstance(found := record.get("model"), dict) else {}
    names = {"idcli plate": plate.get("path")}
    if model.get("source") == "local":
        names["Model"] = model.get("id")
    settings = []
    for item in line.split(", "):
        key, sep, value = item.partition(": ")
        if sep and key in names and isinstance(named := names[key], str):
            value = a1111_value(file_name(named))
        settings.append(f"{key}{sep}{value}")
    return f"{head}\n{', '.join(settings)}" if head else ", ".join(settings)


# -- PNG chunks -----------------------------------------------------------------------------------------


def _text_key(kind: bytes, payload: bytes) -> str | None:
    if kind in (b"tEXt", b"iTXt", b"zTXt"):
        return payload.split(b"\0", 1)[0].decode("latin-1")
    return None


def text_chunk(data: bytes, key: str) -> str | None:
    """The text of an uncompressed text chunk named ``key``, or None. Pillow writes a text as ``tEXt`` when it
    is Latin-1 (a ``parameters`` chunk's usual form), else as ``iTXt`` (UTF-8)."""
    for kind, payload in png_chunks(data):
        if _text_key(kind, payload) != key:
            continue
        # A whole chunk (its CRC right) may still lack the NULs its format puts between its fields.
        malformed = PngFormatError(f"its {kind.decode()} chunk {key!r} is malformed (a field's NUL is missing)")
        _key, separated, rest = payload.partition(b"\0")
        if not separated:
            raise malformed
        if kind == b"tEXt":
            return rest.decode("latin-1")
        if kind == b"iTXt" and rest[:1] == b"\0":  # not compressed: flag, method, language\0, translated\0, text
            fields = rest[2:].split(b"\0", 2)
            if len(fields) < 3:
                raise malformed
            return fields[2].decode("utf-8", "replace")
    return None


def _text(key: str, text: str) -> bytes:
    """A text chunk as Pillow's ``add_text`` writes it: ``tEXt`` for Latin-1 text, else uncompressed ``iTXt``."""
    try:
        return png_chunk(b"tEXt", key.encode("latin-1") + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        # iTXt: keyword, NUL, compression flag 0 and method 0, empty language tag and translated keyword.
        return png_chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def text_payloads(data: bytes) -> bytes:
    """The text chunks' payloads of a PNG, where a path could be written (the pixel data is compressed bytes, in
    which a short path's letters can occur by chance; a C2PA manifest is searched as its Reader's JSON)."""
    return b"\n".join(p for k, p in png_chunks(data) if k in (b"tEXt", b"iTXt", b"zTXt"))


def pixel_data(data: bytes) -> bytes:
    """The image header and pixel chunks of a PNG (IHDR, PLTE, tRNS, IDAT): equal ones decode to equal pixels."""
    return b"".join(png_chunk(k, p) for k, p in png_chunks(data) if k in (b"IHDR", b"PLTE", b"tRNS", b"IDAT"))


def delivered_png(original: bytes, record: dict[str, Any], parameters: str | None) -> bytes:
    """The original PNG with its pixel chunks unchanged, ``parameters`` as given (None: left out), the
    ``idcli`` chunk replaced by ``record``, the random-weights mark (as the record calls for it, else the
    original's kept), and nothing else (no C2PA manifest, no other text). Text chunks come before the pixel data,
    as idcli's commit writes them."""
    from .provenance import PNG_CHUNK, RANDOM_WEIGHTS_CHUNK
    from .random_mark import random_weights_mark

    chunks = png_chunks(original)
    # From the record by the one rule: a take rendered before its face models counted (a real model, synthetic
    # faces) is marked when delivered too; a mark the original carries is never dropped.
    marked = random_weights_mark(record)
    kept = next((png_chunk(k, p) for k, p in chunks if _text_key(k, p) == RANDOM_WEIGHTS_CHUNK and k == b"tEXt"), None)
    random_mark = _text(RANDOM_WEIGHTS_CHUNK, marked) if marked is not None else kept
    texts = []
    if parameters is not None:
        texts.append(_text("parameters", parameters))
    # iTXt, uncompressed, no language tag: as Pillow's add_itxt writes the render's own record.
    texts.append(png_chunk(b"iTXt", PNG_CHUNK.encode("latin-1") + b"\0\0\0\0\0"
                        + json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")))
    if random_mark is not None:
        texts.append(random_mark)
    out, placed = [PNG_SIGNATURE], False
    for kind, payload in chunks:
        if kind not in _KEPT_CHUNKS:
            continue
        if kind == b"IDAT" and not placed:
            out.extend(texts)
            placed = True
        out.append(png_chunk(kind, payload))
    return b"".join(out)
