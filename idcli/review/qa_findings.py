"""What identity QA flagged in one image, per character, in words a supervisor reads in a terminal.

A group shot's ``qa`` record holds the whole cosine matrix; its ``flags`` say only *that* something failed.
These lines say *who*: the character with no face, the character whose face is not theirs enough, and which
face looks like a character it was not matched to. They are read from the record alone (``idcli qa``, no
model), so they say exactly what the sidecar says.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from .qa import PLATE_QA_VERSION


def findings(qa: Mapping[str, Any]) -> list[str]:
    """One line per failure of a QA record (``review/qa.py: assess``); none when nothing is flagged."""
    flags = qa.get("flags") or []
    if not flags:
        return []
    characters: Mapping[str, Any] = qa.get("characters") or {}
    # A face whose embedding is degenerate (review/qa.py: usable_embedding) was compared with no one: said, as its
    # character may be the one missing. Numbered as the record's faces are, a damaged entry counted.
    unusable = [f"face #{i} could not be embedded (its embedding is zero or not a number): compared with no character"
                for i, face in enumerate(qa.get("faces") or [])
                if isinstance(face, Mapping) and face.get("unusable") and not face.get("plate_face")]
    if "no_face" in flags:
        cast = ", ".join(str(name) for name in qa.get("cast") or characters)
        if unusable:
            return [f"no usable face for {cast}", *unusable]
        # A plate image may hold the plate's own people: no_face there means none in the characters' boxes.
        if qa.get("version") == PLATE_QA_VERSION:
            return [f"no face in the recorded plate boxes of {cast}"]
        return [f"no face found for {cast}"]
    said = [f"{name}: no face" for name, entry in characters.items()
            if isinstance(entry, Mapping) and entry.get("face") is None]
    if "low_identity" in flags:
        low = (qa.get("thresholds") or {}).get("low_identity")
        # Every matched face, a character's second place included (named twice: a mirror). The record's cosines
        # are rounded to 4 places and assess compared them unrounded: half a place of slack.
        said += [f"{face['character']}: cosine {face['cosine']:.2f} below {low}" for face in qa.get("faces") or []
                 if isinstance(face, Mapping) and face.get("character") and isinstance(face.get("cosine"), int | float)
                 and isinstance(low, int | float) and face["cosine"] < low + 0.5e-4]
    pair = qa.get("leakage_pair")
    if "leakage" in flags and isinstance(pair, Mapping):
        faces = qa.get("faces") or []
        index = pair.get("face")
        face = faces[index] if isinstance(index, int) and 0 <= index < len(faces) else {}
        matched = face.get("character") if isinstance(face, Mapping) else None
        whose = f"matched to {matched}" if matched else "matched to nobody"
        # Characters who share one face (identity/twins.py): the face looks as much like each of them.
        twins = [str(name) for name in pair.get("twins") or []]
        who = (f"{', '.join([str(pair.get('character')), *twins[:-1]])} or {twins[-1]}, who share one face" if twins
               else str(pair.get("character")))
        said.append(f"face #{index} ({whose}) looks like {who} ({qa.get('leakage'):.2f})")
    return said + unusable


MAX_LINES = 40  # a terminal's worth; --json lists every flagged image


def flagged_lines(images: list[dict[str, Any]], out: object, limit: int = MAX_LINES) -> list[str]:
    """``idcli qa``'s lines under its summary: each flagged image (``RecheckResult.flagged_images``) and its
    findings, at most ``limit`` of them, then how many more and where to see them."""
    lines = [f"  {image['image']}: {'; '.join(image['findings']) or ', '.join(image['flags'])}"
             for image in images[:limit]]
    if len(images) > limit:
        lines.append(f"  … and {len(images) - limit} more flagged images "
                     f"(idcli qa {shlex.quote(str(out))} --json lists every one)")
    return lines
