"""A selfie that shows several people: which face was used, said where the artist looks (plan, validate).

The encoder uses a photo's largest face (docs/identity.md). For a group photo that may be someone else, and
the character then renders with that person's identity, silently. The shot list cannot pick a face, so the
warning says how: crop the photo, or encode it with ``idcli encode-identity --face N`` and name the pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def group_selfie_warnings(loaded: Any, identities: Mapping[str, Any]) -> list[str]:
    """One warning per selfie (of a character encoded from selfies) in which more than one face was found."""
    warnings = []
    for name in sorted(identities):
        identity = identities[name]
        if identity.source != "selfies":
            continue  # a pack was encoded by encode-identity, which listed the faces and took --face
        entries = loaded.shotlist.characters[name].selfies or []
        for index, (value, (found, used)) in enumerate(zip(entries, identity.selfie_faces, strict=False)):
            if found < 2:
                continue
            line, column = loaded.position(("characters", name, "selfies", index))
            where = ":".join(str(x) for x in (loaded.source, line, column) if x is not None)
            warnings.append(
                f"{where}: characters.{name}.selfies[{index}]: selfie '{value}' shows {found} faces; face {used} "
                f"(the largest) is the identity of '{name}'. If that is someone else, crop the photo to {name}, "
                f"or run `idcli encode-identity {value} --name {name} -o {name}.idpack` (it lists the faces, "
                f"largest first), pick with --face N, and write `identity: {name}.idpack` instead of `selfies` "
                "(a shot list cannot pick a face)")
    return warnings
