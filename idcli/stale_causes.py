"""Why a take renders again, as the artist reads it: what its committed sidecar recorded against the new job.

A take is stale (store.EDITED_REASON) when its job key changed; the key is a hash, so it cannot say what changed.
The sidecar recorded the job's prompt (and, since 2026-11-30, the shot's own words: ``shot_prompt``, and what each
named character's placeholder stood for: ``descriptions``), seed, framing, expression, settings, model and each
identity's key, so comparing them names the cause: ``prompt changed``, ``mara's description changed``,
``expression changed (joy -> grief)``, ``seed, framing changed``, ``theo's selfies changed``, ``plate faces changed``.
A sidecar that records none of what differs (an older one, or a change of what no sidecar field records) gives
``None``, and the notes keep the general words.

Reads nothing: plan and render call it for stale takes with the sidecar the store read to find their state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import ModelIdentity
from .plan import Job
from .provenance import image_size

if TYPE_CHECKING:
    from .store import JobState

# A value from a sidecar shown in a note: short and printable, else not shown (the folder is not trusted).
_MAX_SHOWN = 40


def edited_cause(job: Job, state: JobState, model: ModelIdentity) -> str | None:
    """The cause of a job stale for an edit (its key changed: store.EDITED_REASON), from its committed sidecar as
    the store read it for ``state``; None for any other state, or when the sidecar cannot say. What plan and render
    both ask of each job."""
    from .store import EDITED_REASON

    if state.status != "stale" or state.reason != EDITED_REASON:
        return None
    return stale_cause(state.sidecar, job, model)


def stale_cause(sidecar: dict[str, Any] | None, job: Job, model: ModelIdentity) -> str | None:
    """What changed between the take ``sidecar`` records and ``job``, in words (``seed, framing changed``), or
    None when the sidecar records nothing that differs."""
    if not isinstance(sidecar, dict):
        return None
    try:
        return _cause(sidecar, job, model)
    except (TypeError, AttributeError, ValueError):  # a sidecar of another shape (edited, planted) says nothing
        return None


def _cause(sidecar: dict[str, Any], job: Job, model: ModelIdentity) -> str | None:
    changed: list[str] = []  # what changed, in the order a shot list is read
    details: list[str] = []  # from -> to, where short enough to say
    r = job.request
    # A character renamed (same place in the prompt, same identity, another name) changes the keys that name their
    # characters (several characters, plate faces): said as the rename, and the rest compared under the new names,
    # so that a rename is not taken for a cast change and hides nothing else that changed with it.
    renames = _renames(sidecar, job)
    if renames:
        sidecar = _renamed(sidecar, renames)
    expression_changed = _differs(sidecar, "expression", job.expression, _expression_key)
    framing_changed = _differs(sidecar, "framing", job.framing)
    characters_changed = _differs(sidecar, "characters", list(job.characters))
    # The prompt is composed from the shot's words, its framing, expression and characters: when one of those
    # changed, the prompt's change is theirs, unless the shot's own words changed too (a sidecar that records
    # them, ``shot_prompt``, says so; an older one cannot, and the prompt is then left to the others).
    described_anew = _description_changes(sidecar, job)
    composed_anew = (expression_changed or framing_changed or characters_changed or bool(described_anew)
                     or _line_expressions_changed(sidecar, job))
    if _differs(sidecar, "prompt", r.prompt) and (not composed_anew or _own_words_changed(sidecar, job)):
        changed.append("prompt")
    if _differs(sidecar, "negative_prompt", r.negative_prompt) and r.guidance > 1.0:
        changed.append("negative prompt")
    changed += described_anew
    for before, after in renames.items():
        changed.append(f"{before}'s name")
        details += _from_to(_shown(before), _shown(after))
    if characters_changed:
        changed.append("characters")
    if expression_changed:
        changed.append("expression")
        details += _from_to(_expression_label(sidecar.get("expression")), _expression_label(job.expression))
    if _differs(sidecar, "seed", r.seed):
        changed.append("seed")
    if framing_changed:
        changed.append("framing")
    changed += _setting_changes(sidecar, job, model, details)
    if not characters_changed:
        changed += _identity_changes(sidecar, job, details, expression_changed)
    if not changed:
        return None
    if spelt := _unicode_forms_only(sidecar, job, changed):
        details.append(f"{' and '.join(spelt)}: the same letters, {_UNICODE_FORMS}")
    return ", ".join(changed) + " changed" + (f" ({'; '.join(details)})" if details else "")


# A text that looks the same and keys otherwise: its accents written as one code point (NFC: what Windows, Linux and
# most editors type) in one render and as a letter and a combining accent (NFD: how macOS spells file names, so a name
# pasted from the Finder) in the other. Keys follow the text as written (keys of earlier renders unchanged), so the
# take renders again; the cause says why, where "prompt changed" named no change anyone could see.
_UNICODE_FORMS = ("only their accents encoded otherwise: composed vs decomposed Unicode, NFC vs NFD, as a name pasted "
                  "from a macOS file name is decomposed")


def _unicode_forms_only(sidecar: dict[str, Any], job: Job, changed: list[str]) -> list[str]:
    """Of the texts ``changed`` names (prompt, negative prompt, descriptions), those whose old and new text differ
    only in Unicode normalization form."""
    import unicodedata

    def same(old: Any, new: Any) -> bool:
        return (isinstance(old, str) and isinstance(new, str) and old != new
                and unicodedata.normalize("NFC", old) == unicodedata.normalize("NFC", new))

    texts: dict[str, tuple[Any, Any]] = {
        "prompt": (sidecar.get("prompt"), job.request.prompt),  # as composed: its own words and what they name
        "negative prompt": (sidecar.get("negative_prompt"), job.request.negative_prompt)}
    old_descriptions = sidecar.get("descriptions")
    if isinstance(old_descriptions, dict):
        texts.update({f"{name}'s description": (old_descriptions.get(name), text)
                      for name, text in (job.descriptions or {}).items()})
    return [what for what in changed if what in texts and same(*texts[what])]


def _renames(sidecar: dict[str, Any], job: Job) -> dict[str, str]:
    """Old name -> new name of each character renamed since the take: at the same place in the prompt's cast, with
    the same identity (``identity_key``, what made it) under another name; {} when any other cast change is there too
    (a character swapped, added or removed, or a new name with other selfies: another person)."""
    old_names, new_names = sidecar.get("characters"), list(job.characters)
    if not isinstance(old_names, list) or len(old_names) != len(new_names) or old_names == new_names:
        return {}
    old_keys, new_keys = _line_identities(sidecar.get("method")), _line_identities(job.key_material.get("method"))
    renames: dict[str, str] = {}
    for before, after in zip(old_names, new_names, strict=True):
        if before == after:
            continue
        if not isinstance(before, str) or before in new_names or after in old_names:
            return {}  # a character moved to another place, or came back: a cast change
        if old_keys.get(before) is None or old_keys.get(before) != new_keys.get(after):
            return {}
        renames[before] = after
    return renames


def _line_expressions_changed(sidecar: dict[str, Any], job: Job) -> bool:
    """Whether a character's own expression (``expressions: {theo: ...}``, several characters or a plate) changed:
    its words are composed into the prompt, so the prompt's change is the expression's."""
    old_lines, new_lines = _lines(sidecar.get("method")), _lines(job.key_material.get("method"))
    return any(name in old_lines and _expression_key(old_lines[name].get("expression"))
               != _expression_key(line.get("expression")) for name, line in new_lines.items())


def _lines(method: Any) -> dict[str, dict[str, Any]]:
    """Name -> identity line of each line a job's ``method`` records (several characters, a plate's faces); {} for a
    record of another shape."""
    lines = method.get("characters") if isinstance(method, dict) else None
    if not isinstance(lines, list):
        return {}
    return {line["name"]: line for line in lines if isinstance(line, dict) and isinstance(line.get("name"), str)}


def _line_identities(method: Any) -> dict[str, Any]:
    """Name -> identity_key of each identity line a job's ``method`` names (several characters, a plate's faces)."""
    return {name: line.get("identity_key") for name, line in _lines(method).items()}


def _renamed(sidecar: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """The sidecar with each renamed character under its new name, where a record names characters."""
    def name(value: Any) -> Any:
        return renames.get(value, value) if isinstance(value, str) else value

    out = {**sidecar, "characters": [name(n) for n in sidecar["characters"]]}
    if isinstance(sidecar.get("descriptions"), dict):
        out["descriptions"] = {name(k): v for k, v in sidecar["descriptions"].items()}
    method = sidecar.get("method")
    if isinstance(method, dict) and isinstance(method.get("characters"), list):
        out["method"] = {**method, "characters": [{**line, "name": name(line.get("name"))} if isinstance(line, dict)
                                                  else line for line in method["characters"]]}
    plate = sidecar.get("plate")
    if isinstance(plate, dict) and isinstance(plate.get("faces"), list):
        out["plate"] = {**plate, "faces": [{**face, "character": name(face.get("character"))}
                                           if isinstance(face, dict) else face for face in plate["faces"]]}
    return out


def _differs(sidecar: dict[str, Any], name: str, new: Any, key: Any = None) -> bool:
    """Whether the sidecar recorded ``name`` and it differs from ``new`` (compared by ``key`` when given)."""
    if name not in sidecar:
        return False
    old = sidecar[name]
    return (key(old) != key(new)) if key is not None else old != new


def _own_words_changed(sidecar: dict[str, Any], job: Job) -> bool:
    """Whether the shot's own prompt words (``shot_prompt``, placeholders aside: a character swapped in the same
    words is a cast change) differ from the job's; False when the sidecar does not record them."""
    from .shot_prompts import own_words

    old = sidecar.get("shot_prompt")
    if not isinstance(old, str) or job.shot_prompt is None:
        return False
    try:
        return own_words(old) != own_words(job.shot_prompt)
    except ValueError:  # braces no shot list can give (an edited sidecar): the words are not the job's
        return True


def _description_changes(sidecar: dict[str, Any], job: Job) -> list[str]:
    """``NAME's description`` for each character of the job whose description differs from the one the sidecar's
    ``descriptions`` records (a sidecar from before it records none: nothing)."""
    old = sidecar.get("descriptions")
    if not isinstance(old, dict) or not job.descriptions:
        return []
    return [f"{name}'s description" for name, description in job.descriptions.items()
            if name in old and old[name] != description]


def _expression_key(record: Any) -> Any:
    """What of an expression record acts on the image: its label and intensity (not how it was written)."""
    if not isinstance(record, dict):
        return record
    return (record.get("label"), record.get("intensity"))


def _expression_label(record: Any) -> str | None:
    if record is None:
        return "none"
    return _shown(record.get("label")) if isinstance(record, dict) else None


def _from_to(old: str | None, new: str | None) -> list[str]:
    return [f"{old} -> {new}"] if old is not None and new is not None and old != new else []


def _shown(value: Any) -> str | None:
    text = str(value) if isinstance(value, (str, int, float)) else None
    return text if text is not None and len(text) <= _MAX_SHOWN and text.isprintable() else None


def _setting_changes(sidecar: dict[str, Any], job: Job, model: ModelIdentity, details: list[str]) -> list[str]:
    """The render's settings: size, sampler, steps, guidance, model, engine, plate (its file, faces, strength)."""
    r = job.request
    changed = []
    size = sidecar.get("size")
    width, height = image_size(job)
    plate = sidecar.get("plate")
    # A plate job's image has the plate's size; the shot's `size` is the working size its faces are re-generated at.
    working = (isinstance(plate, dict) and job.plate is not None and "working_size" in plate
               and plate["working_size"] != job.plate.get("working_size"))
    if (isinstance(size, dict) and (size.get("width"), size.get("height")) != (width, height)) or working:
        changed.append("size")
    sampler = sidecar.get("sampler")
    if isinstance(sampler, dict):
        changed += [name for name, new in (("sampler", r.sampler), ("steps", r.steps), ("guidance", r.guidance))
                    if (sampler.get("name") if name == "sampler" else sampler.get(name)) != new]
    recorded = sidecar.get("model")
    if isinstance(recorded, dict) and _model_key(recorded) != _model_key(_as_record(model)):
        changed.append("model")
    if "engine" in sidecar and sidecar["engine"] != job.key_material.get("engine"):
        changed.append("engine version")
    if (plate is None) != (job.plate is None) or (
            isinstance(plate, dict) and job.plate is not None and plate.get("sha256") != job.plate.get("sha256")):
        changed.append("plate")
    elif isinstance(plate, dict) and job.plate is not None:
        changed += _plate_face_changes(plate, job.plate, details)
    return changed


def _plate_face_changes(old: dict[str, Any], new: dict[str, Any], details: list[str]) -> list[str]:
    """A plate shot's faces (which character takes which box: plate_faces, or the prompt's order) and strength, as
    the sidecar's ``plate`` block records them against the job's; the plate file itself is the same."""
    def faces(record: dict[str, Any]) -> Any:
        listed = record.get("faces")
        if not isinstance(listed, list):
            return None
        return [(f.get("character"), f.get("box")) if isinstance(f, dict) else None for f in listed]

    def strength(record: dict[str, Any]) -> Any:
        listed = record.get("faces")  # every face of a plate shot has the shot's strength
        first = listed[0] if isinstance(listed, list) and listed else None
        return first.get("strength") if isinstance(first, dict) else None

    changed = []
    if faces(old) != faces(new):
        changed.append("plate faces")
    if strength(old) != strength(new):
        changed.append("plate strength")
        details += _from_to(_shown(strength(old)), _shown(strength(new)))
    return changed


def _as_record(model: ModelIdentity) -> dict[str, Any]:
    return {"architecture": model.architecture, "dtype": model.dtype, "source": model.source, "id": model.id,
            "revision": model.revision, "hash": model.content_hash}


def _model_key(record: dict[str, Any]) -> Any:
    """What of a model record enters a job key (ModelIdentity.key_material): a hub model by id and revision,
    another by its content hash; where a local folder is does not count."""
    source = record.get("source")
    named = (record.get("id"), record.get("revision")) if source == "hub" else record.get("hash")
    return (record.get("architecture"), record.get("dtype"), source, named)


def _identity_changes(sidecar: dict[str, Any], job: Job, details: list[str], shot_changed: bool) -> list[str]:
    """Each conditioning character's identity (its selfies or pack), strength and, with several characters,
    expression: recorded in the sidecar's ``method`` (the key's own material) against the job's. The strength is
    balanced for the expression (method.balanced_strength): when ``shot_changed`` (the shot's expression changed),
    the strength's change is the expression's."""
    old, new = sidecar.get("method"), job.key_material.get("method")
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    if old.get("name") != new.get("name"):
        return ["method"]
    changed = []
    sources = {identity.name: identity.source for identity in job.identities}
    if job.subject is not None and isinstance(old.get("identity"), dict) and isinstance(new.get("identity"), dict):
        changed += _line_changes(job.subject, old["identity"], new["identity"], sources, details, several=False,
                                 shot_changed=shot_changed)
    recorded_lines = old.get("characters")
    old_lines = {str(line.get("name")): line for line in recorded_lines if isinstance(line, dict)} if isinstance(
        recorded_lines, list) else {}
    for line in new.get("characters") or []:
        if isinstance(old_lines.get(line["name"]), dict):
            changed += [c for c in _line_changes(line["name"], old_lines[line["name"]], line, sources, details,
                                                 several=True, shot_changed=shot_changed) if c not in changed]
    # The first character named is also the job's subject, checked above through its one-character record, where a
    # strength change is said on its own; with several characters it is its expression's (balanced for it), as for
    # the others: said once, as the expression.
    expressed = {c.removesuffix("'s expression") for c in changed if c.endswith("'s expression")}
    changed = [c for c in changed if not (c.endswith("'s strength") and c.removesuffix("'s strength") in expressed)]
    if old.get("adapter") != new.get("adapter") or old.get("params") != new.get("params"):
        changed.append("method settings")
    return changed


def _line_changes(name: str, old: dict[str, Any], new: dict[str, Any], sources: dict[str, str],
                  details: list[str], *, several: bool, shot_changed: bool) -> list[str]:
    changed = []
    what = "pack" if sources.get(name) == "pack" else "selfies"
    if (old.get("identity_key"), old.get("references_sha256")) != (new.get("identity_key"),
                                                                    new.get("references_sha256")):
        changed.append(f"{name}'s {what}")
    expression_changed = several and _expression_key(old.get("expression")) != _expression_key(new.get("expression"))
    if old.get("strength") != new.get("strength") and not (shot_changed or expression_changed):
        changed.append(f"{name}'s strength")
    if expression_changed:
        changed.append(f"{name}'s expression")
        details += _from_to(_expression_label(old.get("expression")), _expression_label(new.get("expression")))
    return changed
