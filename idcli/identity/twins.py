"""Characters who share one face: two characters whose selfies are the same files, the same bytes, or whose
identities embed to the same face (a shot list copied from another character's block, a selfie copied under a new
name). They render as the same person, and identity QA cannot tell them apart. That may be meant (a previs team
standing one actor in for two parts), so it is a warning, never a problem: ``validate`` and ``plan`` say it once per
group of characters, naming each with its shot-list line, and QA (review/qa.py) does not flag one of them taken for
the other (``same_face_pairs``).

Plain ``validate`` reads no selfie: it tells the same file (the same path, or a link to it) from its file system
entry alone. ``validate --selfies``, ``plan`` and ``render`` have read and encoded the selfies: they compare bytes
(each selfie's sha256, a pack's) and embeddings (``SAME_FACE_COSINE``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Cosine at or above which two identity embeddings are one face: the same photo (re-saved, re-encoded) scores about
# 1.0, two photos of one person 0.4-0.8 on buffalo_l (docs/identity.md), so 0.99 takes only the first.
SAME_FACE_COSINE = 0.99


def _file_key(path: Any) -> tuple[int, int] | str:
    """The file system entry a path names (device, inode): one file however it is spelled or linked to."""
    try:
        found = os.stat(path)
    except OSError:
        return os.fspath(path)  # reported as a problem elsewhere; compared by name meanwhile
    return (found.st_dev, found.st_ino)


def same_face_pairs(embeddings: Sequence[np.ndarray]) -> set[tuple[int, int]]:
    """(i, j) with i < j for each two of ``embeddings`` (unit length) that are one face (``SAME_FACE_COSINE``)."""
    if len(embeddings) < 2:
        return set()
    stacked = np.stack([np.asarray(e, dtype=np.float64) for e in embeddings])
    cosines = stacked @ stacked.T
    return {(i, j) for i in range(len(embeddings)) for j in range(i + 1, len(embeddings))
            if cosines[i, j] >= SAME_FACE_COSINE}


def _groups(names: Sequence[str], pairs: set[tuple[int, int]]) -> list[list[str]]:
    """The names joined by ``pairs`` (transitively), each group in ``names``' order, groups by first name."""
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in sorted(pairs):
        parent[root(j)] = root(i)
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        groups.setdefault(root(i), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def twin_warnings(loaded: Any, identities: Mapping[str, Any] | None = None) -> list[str]:
    """One warning per group of characters the shots name that share one face (module docstring).

    ``identities`` (name -> identity.resolve.CharacterIdentity): the encoded identities, compared by bytes and
    embedding; None (plain ``validate``): the characters' files compared by file system entry only."""
    from ..shot_prompts import shot_characters

    doc = loaded.shotlist
    used = {name for shot in doc.shots for name in shot_characters(shot)}
    named = [name for name in doc.characters if name in used]  # in the shot list's order
    if identities is not None:
        named = [name for name in named if name in identities]  # an unusable one fails its shots instead
    pairs: set[tuple[int, int]] = set()
    why: dict[tuple[int, int], str] = {}
    keys: dict[str, Any] = {}
    for name in named:
        character = doc.characters[name]
        if identities is None:
            files = character.selfies if character.identity is None else [character.identity]
            keys[name] = frozenset(_file_key(loaded.resolve_path(f)) for f in files or [])
        else:
            identity = identities[name]
            keys[name] = (identity.pack_sha256 if identity.source == "pack"
                          else frozenset(sha for _path, sha in identity.selfie_files) or identity.selfie_sha256s)
    for i, a in enumerate(named):
        for j in range(i + 1, len(named)):
            if keys[a] == keys[named[j]]:
                pairs.add((i, j))
                why[(i, j)] = "the same selfie files" if identities is None else "the same selfie bytes"
    if identities is not None:
        for i, j in same_face_pairs([identities[name].embedding for name in named]) - pairs:
            pairs.add((i, j))
            why[(i, j)] = f"identity embeddings that agree to a cosine of {SAME_FACE_COSINE} or more"
    warnings = []
    for group in _groups(named, pairs):
        indices = [named.index(name) for name in group]
        reasons = sorted({why[(i, j)] for i in indices for j in indices if (i, j) in why})
        lines = []
        for name in group:
            mark = loaded.yaml.mark(("characters", name), key=True) if loaded.yaml is not None else None
            lines.append(f"'{name}'" + (f" (line {mark[0]})" if mark else ""))
        listed = ", ".join(lines[:-1]) + " and " + lines[-1]
        warnings.append(f"{loaded.source}: characters {listed} have {' and '.join(reasons)}: they render as the same "
                        "person, and identity QA cannot tell them apart (it does not flag one taken for the "
                        "other); give each their own selfies unless one face is meant")
    return warnings
