"""Plates and selfies a user keeps inside an output folder: inputs the takes record, not stray images
(``idcli verify OUT``).

A project may keep its plates and selfies inside the output folder (``OUT/plates/two_people.png``,
``OUT/selfies/mara_1.jpg``); verify failed each as an image added outside idcli (stray_images.py), so a folder
whose every take passed said "2 failed". Each take's sidecar records its inputs by the sha256 of their files: a plate
job's ``plate.sha256``, each selfie's ``identity[].selfie_files[].sha256``. A file whose bytes hash to one recorded by
a take that passed verify is that input: named so in one line, it passes. A file matching nothing is still a stray,
and fails; so does one only a failed take's sidecar records (a sidecar edited to name it proves nothing). So does one
at a take's place (``SHOT/SHOT_tN.png``, ``SHOT_tN.jpg``, ``SHOT_tN.uncommitted.png``: a take number the render never
made, or a take whose sidecar is gone): a file named as a take is a take's image, whatever its bytes, and a plate
copied there is a take replaced, not an input kept; its failure says which input its bytes are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .shell_words import quote_word, shell_path

# What to do with an input found at a take's name: the same file under any other name is the input a take records.
KEEP_INPUTS_ELSEWHERE = ("Move it out of the take's name (to plates/ or selfies/, say), where it is named as that "
                         "input and passes, or delete it.")


def recorded_inputs(root: Path, sidecars: list[Path]) -> dict[str, str]:
    """The inputs the sidecars at ``sidecars`` record (the takes that passed), sha256 -> what the file is, in words:
    ``the plate for street take 1, as its sidecar (street/street_t1.json) records it by its sha256 (3 takes record
    it)``."""
    from .verify import UnreadableSidecar, load_sidecar

    found: dict[str, list[tuple[str, str, str]]] = {}  # sha256 -> (what, whose take, its sidecar) per take
    for path in sidecars:
        try:
            sidecar, _ = load_sidecar(path)
        except UnreadableSidecar:
            continue
        if not isinstance(sidecar, dict):
            continue
        whose, where = _take(sidecar, path), path.relative_to(root).as_posix()
        for sha256, what in _inputs(sidecar):
            found.setdefault(sha256, []).append((what, whose, where))
    said = {}
    for sha256, takes in found.items():
        what, whose, where = takes[0]
        more = f" ({len(takes)} takes record it)" if len(takes) > 1 else ""
        said[sha256] = f"{what} for {whose}, as its sidecar ({where}) records it by its sha256{more}"
    return said


def kept_inputs(root: Path, wanted: set[str], trust_pem: str | None) -> dict[str, str]:
    """The inputs among ``wanted`` (sha256s) that a take a newer render moved aside records (``.idcli/superseded``,
    which ``idcli restore`` puts back), sha256 -> what the file is, in words: a plate edited to v2 and rendered again
    leaves v1's file beside the takes, the input of a take the folder still keeps. A kept sidecar is signed by nothing
    and verify checks no kept take otherwise, so one vouches only when its take would pass verify as a take does: its
    image is the bytes its sidecar records, the sidecar says what the image's own record says, and its signature (if
    any, ``Trusted`` under ``trust_pem``) is good. Only the kept versions recording a wanted sha256 are checked."""
    from .kept_versions import each_alone, list_superseded
    from .verify import ImageCheck, UnreadableSidecar, check_against_sidecar, file_entry, load_sidecar

    said: dict[str, str] = {}
    for version in reversed(list_superseded(root, order_among=each_alone)):  # the newest first
        if version.image is None or version.sidecar is None:
            continue  # only a sidecar kept: restore has no image to put back
        try:
            sidecar, fault = load_sidecar(root / version.sidecar)
        except UnreadableSidecar:
            continue
        if fault is not None or not isinstance(sidecar, dict) or not isinstance(sidecar.get("image"), dict):
            continue
        recorded = [(sha256, what) for sha256, what in _inputs(sidecar) if sha256 in wanted and sha256 not in said]
        if not recorded:
            continue
        check = ImageCheck(file_entry(root, root / version.sidecar), file_entry(root, root / version.image), ok=True)
        if not check_against_sidecar(check, sidecar, root / version.image, trust_pem).ok:
            continue
        # The name's key part with its .N where a copy of the same job is kept too: restore's --key takes either.
        key = version.name.split(".", 1)[1]
        # Every word quoted as every suggested command's are (a received folder's kept names are anyone's: `x
        # $(cmd)_t1`; a name that is not UTF-8 in bash's $'\xNN' form), and the folder as shell_path writes it (a
        # relative one starting with a dash spelt ./-x, which restore would read as an option): a line to paste.
        restore = f"idcli restore {shell_path(root)} {quote_word(version.stem)} --key {quote_word(key)}"
        for sha256, what in recorded:
            said[sha256] = (f"{what} of a superseded take of {version.shot_id} (take {version.take}, restorable with "
                            f"{restore}), as its kept sidecar ({version.sidecar}) records it by its sha256")
    return said


def input_words(path: Path, sha256: str | None, inputs: dict[str, str], root: Path) -> str | None:
    """The line verify says of ``path`` (a file of the output folder ``root``, its bytes' ``sha256``) when those bytes
    are an input a take records and its name is not a take's, else None."""
    if not inputs or at_take_place(path, root):
        return None
    what = inputs.get(sha256 or "")
    return f"an input of this render, not a take: {what}" if what else None


def input_at_take_place(path: Path, sha256: str | None, inputs: dict[str, str], root: Path) -> str | None:
    """What ``path`` (its bytes' ``sha256``) is, when it sits at a take's place and its bytes are an input a take
    records: it still fails as a take (a plate copied there is a take replaced), and this says which input the
    reviewer finds in it, else None."""
    if not inputs or not at_take_place(path, root):
        return None
    what = inputs.get(sha256 or "")
    return (f"Its bytes are {what}: an input copied to a take's name? {KEEP_INPUTS_ELSEWHERE}" if what else None)


def at_take_place(path: Path, root: Path) -> bool:
    """Whether ``path`` is named as a take of the output folder ``root``: ``SHOT/SHOT_tN`` and any suffix (``.png``,
    ``.PNG``, ``.jpg``, ``.uncommitted.png``)."""
    shot = path.parent
    return shot.parent == root and re.fullmatch(rf"{re.escape(shot.name)}_t\d+\..+", path.name) is not None


def _inputs(sidecar: dict[str, Any]) -> list[tuple[str, str]]:
    """(sha256, what it is) of each input file a take's sidecar records: its plate, its characters' selfies."""
    from .shotlist import SAFE_ID

    found = []
    plate = sidecar.get("plate")
    if isinstance(plate, dict) and isinstance(plate.get("sha256"), str):
        found.append((plate["sha256"], "the plate"))
    identities = sidecar.get("identity")
    for identity in identities if isinstance(identities, list) else []:
        if not isinstance(identity, dict) or not isinstance(identity.get("selfie_files"), list):
            continue
        name = identity.get("name")
        who = f"{name}'s" if isinstance(name, str) and SAFE_ID.fullmatch(name) else "a character's"
        found += [(selfie["sha256"], f"{who} selfie") for selfie in identity["selfie_files"]
                  if isinstance(selfie, dict) and isinstance(selfie.get("sha256"), str)]
    return found


def _take(sidecar: dict[str, Any], path: Path) -> str:
    from .stray_images import take_of_record, take_words

    take = take_of_record(sidecar)
    return take_words(*take) if take else f"the take of {path.name}"
