"""A selfie that shows several people: which face was used, said where the artist looks (plan, validate).

The encoder uses a photo's largest face (docs/identity.md). For a group photo that may be someone else, and
the character then renders with that person's identity, silently. The shot list cannot pick a face, so the
warning says how: crop the photo, or encode it with ``idcli encode-identity --face N`` and name the pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..shell_words import shell_path


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
            # The shot list's paths are relative to its folder; the command is run from the current one, and
            # the pack must land beside the shot list for 'identity: NAME.idpack' to find it.
            selfie, pack = shell_path(loaded.resolve_path(value)), shell_path(loaded.base_dir / f"{name}.idpack")
            warnings.append(
                f"{where}: characters.{name}.selfies[{index}]: selfie '{value}' shows {found} faces; face {used} "
                f"(the largest) is the identity of '{name}'. If that is someone else, crop the photo to {name}, "
                f"or run `idcli encode-identity {selfie} --name {name} -o {pack}` (it lists the faces, "
                f"largest first), pick with --face N, and write `identity: {name}.idpack` instead of `selfies` "
                "(a shot list cannot pick a face)")
    return warnings
