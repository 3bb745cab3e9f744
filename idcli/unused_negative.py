"""A negative prompt that classifier-free guidance of at most 1 leaves unused: said, never refused.

``guidance: 1.0`` (ComfyUI's ``cfg 1.0``, what turbo and LCM models are run at) turns classifier-free guidance
off: the UNet is run on the prompt alone, so the negative prompt reaches no model and no job key
(idcli/job_keys.py). A negative prompt pasted beside it is kept as written and recorded, which reads as if it
acted. ``validate`` notes each negative prompt so left unused at its line, naming the shots it would reach, and
``plan`` and ``render`` warn once.
"""

from __future__ import annotations

from typing import Any

from .errors import Problem
from .lists_each import lists_each
from .presets import PRESETS
from .yamlsafe import PathKey, path_text

HINT = "raise guidance above 1 for the negative prompt to act, or remove it"
SHOTS_NAMED = 3  # a note names this many shots, then a count


def unused_negative_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per negative prompt text of a shot list (``ShotList``, its ``LoadedYaml``) that every shot it reaches
    renders with guidance of at most 1 (the defaults' one naming those shots, when some other shot uses it)."""
    preset_guidance = PRESETS[doc.model.preset].guidance
    unused: dict[PathKey, list[tuple[str, float]]] = {}
    for i, shot in enumerate(doc.shots):
        own = shot.negative_prompt is not None
        negative = shot.negative_prompt if own else doc.defaults.negative_prompt
        guidance = next(g for g in (shot.guidance, doc.defaults.guidance, preset_guidance) if g is not None)
        if negative and float(guidance) <= 1.0:
            path: PathKey = ("shots", i, "negative_prompt") if own else ("defaults", "negative_prompt")
            unused.setdefault(path, []).append((shot.id, float(guidance)))
    notes = []
    for path, shots in unused.items():
        line, column = loaded.mark(path) or (None, None)
        guidance = ", ".join(sorted({f"{g:g}" for _id, g in shots}))
        if path[0] == "shots":
            message = f"the negative prompt is not used: guidance {guidance} turns classifier-free guidance off"
        else:
            named = ", ".join(repr(shot_id) for shot_id, _g in shots[:SHOTS_NAMED])
            more = f" and {len(shots) - SHOTS_NAMED} more" if len(shots) > SHOTS_NAMED else ""
            message = (f"the negative prompt is not used by shot{'s' if len(shots) > 1 else ''} {named}{more}: "
                       f"guidance {guidance} turns classifier-free guidance off")
        notes.append(Problem(message, path_text(path), line, column, HINT))
    return notes


def unused_negative_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many negative prompts are unused (validate lists each)."""
    if not notes:
        return None
    return lists_each(f"{len(notes)} negative prompt{'s are' if len(notes) > 1 else ' is'} not used", notes[0], source)
