"""The shot list's rules that span fields, checked once its types have: unique ids, placeholders that name a
character, a cast that fits the method, expressions and plates that fit their shot, files and folders that
exist; and the notes (not problems) a valid shot list still gets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import Problem
from .file_spellings import windows_drive
from .method import DEFAULT_METHOD, MAX_CHARACTERS_PER_SHOT, check_fusion, explicit_params, shot_fusion
from .not_photos import not_a_photo, read_head
from .paths import local_path
from .shotlist import HUB_ID, PlaceholderError, RenderParams, Shot, ShotList, check_safe_id, placeholders
from .suggest import closest, did_you_mean
from .yamlsafe import LoadedYaml, PathKey
from .yamlsafe import path_text as _path_text


def _good_raw_id(loaded: LoadedYaml, index: int) -> str | None:
    """The id of shot ``index`` as written, when the shot failed its types elsewhere and the id itself is good: a
    duplicate of it is said in the same run as that type error, not one fix later."""
    shots = loaded.data.get("shots") if isinstance(loaded.data, dict) else None
    raw = shots[index] if isinstance(shots, list) and index < len(shots) else None
    value = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return check_safe_id(value, "shot id")
    except ValueError:
        return None  # its own problem, reported as such


def semantic_problems(doc: ShotList, loaded: LoadedYaml, base_dir: Path, check_files: bool = True) -> list[Problem]:
    problems: list[Problem] = []

    def add(message: str, loc: PathKey, hint: str = "", key: bool = False) -> None:
        line, col = loaded.mark(loc, key=key) or (None, None)
        problems.append(Problem(message, _path_text(loc), line, col, hint))

    def add_file(message: str, loc: PathKey, hint: str = "", key: bool = False) -> None:
        if check_files:  # the files a shot list names (selfies, packs, plates, models, keys)
            add(message, loc, hint, key)

    def check_placeholders(text: str | None, loc: PathKey) -> None:
        if text is None:
            return
        try:
            names = placeholders(text)
        except PlaceholderError as exc:
            add(str(exc), loc, exc.hint)
            return
        for name in names:
            if name not in doc.characters:
                defined = sorted(doc.characters)
                hint = did_you_mean(name, defined) or (
                    f"defined characters: {', '.join(defined)}" if defined else "no characters are defined")
                add(f"placeholder '{{{name}}}' names no character", loc, hint)

    check_placeholders(doc.defaults.negative_prompt, ("defaults", "negative_prompt"))
    seen_ids: dict[str, int] = {}
    blamed: set[PathKey] = set()
    for i, shot in enumerate(doc.shots):
        shot_id = shot.id if shot is not None else _good_raw_id(loaded, i)
        if shot_id is not None:
            folded = shot_id.lower()  # case-insensitive file systems would merge these folders
            if folded in seen_ids:
                add(f"duplicate shot id '{shot_id}'", ("shots", i, "id"),
                    f"first used by shots[{seen_ids[folded]}]; ids name output folders and must be unique")
            else:
                seen_ids[folded] = i
        if shot is None:
            continue  # a shot with a type error (partial_shotlist): its type errors are what it gets
        for field in ("prompt", "negative_prompt"):
            check_placeholders(getattr(shot, field), ("shots", i, field))
        if shot.seeds is not None and shot.takes is not None and len(shot.seeds) != shot.takes:
            add(f"{len(shot.seeds)} seeds given for {shot.takes} takes", ("shots", i, "seeds"),
                "give 'seeds' or 'takes', or as many seeds as takes")
        if shot.seeds is not None and len(set(shot.seeds)) != len(shot.seeds):
            add("the same seed is given twice", ("shots", i, "seeds"), "each take needs its own seed")
        _check_expression(shot, ("shots", i), add)
        _check_cast(shot, doc.defaults, ("shots", i), add, set(doc.characters))
        _check_plate_fields(shot, ("shots", i), base_dir, add, add_file)
        broken = check_fusion(shot_fusion(shot, doc.defaults))
        # Blame the shot's own method_params when they set the window, else the defaults (reported once).
        own = explicit_params(shot.method_params) or {}
        sets_window = "fusion_start" in own or "fusion_end" in own
        loc = ("shots", i, "method_params") if sets_window else ("defaults", "method_params")
        if broken and loc not in blamed:
            blamed.add(loc)
            add(broken, loc, "fusion_start and fusion_end are fractions of the steps; see docs/method.md")

    for name, character in doc.characters.items():
        selfies = character.selfies or []
        told = _check_selfie_folders(base_dir, name, selfies, add_file)
        for j, selfie in enumerate(selfies):
            if j not in told:  # a selfie missing from a folder that exists, or the one selfie of a missing folder
                _check_file(base_dir, selfie, ("characters", name, "selfies", j), "selfie", add_file)
        if character.identity is not None:
            _check_file(base_dir, character.identity, ("characters", name, "identity"), "identity pack", add_file)

    spec = doc.model
    if spec.preset.startswith("tiny-") and (spec.id or spec.revision):
        add(f"preset '{spec.preset}' builds its own random weights and takes no id or revision",
            ("model", "id" if spec.id else "revision"), "remove it, or use preset sd15 / sdxl")
    if spec.id is not None and not spec.preset.startswith("tiny-"):
        _check_source(base_dir, spec.id, ("model", "id"), add_file)
    if spec.adapter is not None and spec.adapter.id is not None:
        _check_source(base_dir, spec.adapter.id, ("model", "adapter", "id"), add_file)
    if spec.adapter is not None and spec.adapter.image_encoder is not None:
        _check_source(base_dir, spec.adapter.image_encoder, ("model", "adapter", "image_encoder"), add_file)
    c2pa = doc.provenance.c2pa if doc.provenance else None
    if c2pa is not None:  # that they sign is checked when a render starts (idcli/signing.py)
        _check_file(base_dir, c2pa.cert, ("provenance", "c2pa", "cert"), "C2PA certificate", add_file)
        _check_file(base_dir, c2pa.key, ("provenance", "c2pa", "key"), "C2PA key", add_file)
    return problems


# What a folder-taking field needs when it names a file instead (a relative file path looks like 'org/name').
_FILE_NOT_FOLDER = {
    "id": ("model.id takes a diffusers pipeline folder (model_index.json, unet/, vae/, ...) or a hub id; a "
           "single-file checkpoint (.safetensors/.ckpt, as A1111 and ComfyUI keep them) must be converted once "
           "with diffusers: StableDiffusionPipeline.from_single_file(FILE).save_pretrained(FOLDER) "
           "(StableDiffusionXLPipeline for SDXL), then set model.id: FOLDER"),
    "adapter": "give the folder that holds the file as id and the file's name as weight_name",
    # ComfyUI's clip_vision file is h94's encoder weights renamed; it lacks only the config beside it.
    "image_encoder": ("give the folder that holds the encoder's config.json and model.safetensors; ComfyUI's "
                      "clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors is h94/IP-Adapter's "
                      "models/image_encoder/model.safetensors renamed: put it in a folder as model.safetensors beside "
                      "that folder's config.json (hf download h94/IP-Adapter models/image_encoder/config.json)"),
}


def _check_source(base_dir: Path, value: str, loc: PathKey, add: Any) -> None:
    """A model or adapter id: an existing local folder, else a hub id."""
    local = local_path(value, base_dir)
    if local is None:
        add(f"'{value}': no such user's home folder", loc, "write the folder's full path")
    elif local.exists() and not local.is_dir():
        kinds: dict[PathKey, str] = {("model", "id"): "id", ("model", "adapter", "image_encoder"): "image_encoder"}
        kind = kinds.get(loc, "adapter")
        add(f"'{value}' is a file, not a folder", loc, _FILE_NOT_FOLDER[kind])
    elif not local.exists() and not HUB_ID.fullmatch(value):
        add(f"'{value}' is neither a local folder nor a hub id", loc,
            "a hub id looks like 'org/name'; a local folder must exist")



def _check_expression(shot: Shot, loc: PathKey, add: Any) -> None:
    from .expressions import UnknownExpression, lookup

    spec = shot.expression
    if spec is None:
        if shot.expression_intensity is not None:
            add("expression_intensity is given but the shot has no expression", (*loc, "expression_intensity"),
                "add 'expression: LABEL', or remove expression_intensity")
        return
    label = spec if isinstance(spec, str) else spec.label
    where = (*loc, "expression") if isinstance(spec, str) else (*loc, "expression", "label")
    try:
        lookup(label)
    except UnknownExpression as exc:
        more = "; 'idcli expressions' lists all 135 terms" if exc.suggestions else ""
        add(f"unknown expression '{label}'", where, exc.hint + more)
    if not isinstance(spec, str) and spec.intensity is not None and shot.expression_intensity is not None:
        add("the intensity is given twice (expression.intensity and expression_intensity)",
            (*loc, "expression_intensity"), "keep one of them")


def _check_plate_fields(shot: Shot, loc: PathKey, base_dir: Path, add: Any, add_file: Any) -> None:
    """The plate fields' own rules; the plate's pixels and faces are checked by idcli/plates.py."""
    if shot.plate is None:
        for name in ("plate_faces", "plate_strength"):
            if getattr(shot, name) is not None:
                add(f"{name} is given but the shot has no plate", (*loc, name), "add 'plate: FILE', or remove it")
        return
    _check_file(base_dir, shot.plate, (*loc, "plate"), "plate", add_file)
    try:
        named = list(dict.fromkeys(placeholders(shot.prompt)))
    except ValueError:
        return  # reported by check_placeholders
    if not named:
        add("a plate shot names no character", (*loc, "prompt"),
            "name the characters whose faces go into the plate, e.g. '{mara} at the window'")
    if shot.plate_faces is None:
        return
    if len(shot.plate_faces) != len(named):
        given, count = len(shot.plate_faces), len(named)
        mentions = placeholders(shot.prompt)
        twice = [name for name in named if mentions.count(name) > 1]  # '{mara} looks at {mara}': one face
        again = "".join(f"; '{name}' is named twice and takes one face" if mentions.count(name) == 2 else
                        f"; '{name}' is named {mentions.count(name)} times and takes one face" for name in twice)
        add(f"{given} plate face{'s' if given != 1 else ''} given for {count} character{'s' if count != 1 else ''} "
            f"named in the prompt{again}",
            (*loc, "plate_faces"), "give one face (index or [x, y, w, h]) per character, in the prompt's order")
    indices = [face for face in shot.plate_faces if isinstance(face, int)]
    if len(set(indices)) != len(indices):
        add("the same plate face is given twice", (*loc, "plate_faces"), "each character needs its own face")
    for j, face in enumerate(shot.plate_faces):
        if isinstance(face, list) and (face[2] < 8 or face[3] < 8):
            add(f"box {face}: width and height must be at least 8 pixels", (*loc, "plate_faces", j),
                "a box is [x, y, width, height] in plate pixels")


def _named(shot: Shot) -> list[str]:
    """The characters a shot's prompt names, in order of first appearance ([] when it cannot be parsed)."""
    try:
        return list(dict.fromkeys(placeholders(shot.prompt)))
    except ValueError:
        return []  # reported by the placeholder check


def _shot_method(shot: Shot, defaults: RenderParams) -> str:
    return shot.method or defaults.method or DEFAULT_METHOD


def _check_cast(shot: Shot, defaults: RenderParams, loc: PathKey, add: Any, characters: set[str]) -> None:
    """Per-character expressions name characters of the prompt; a dual-line shot names at most the limit
    (not a plate shot: each of its faces is a crop of its own, whatever its method says)."""
    from .expressions import UnknownExpression, lookup

    named = _named(shot)
    if len(named) > MAX_CHARACTERS_PER_SHOT and _shot_method(shot, defaults) == "dual-line" and shot.plate is None:
        add(f"the prompt names {len(named)} characters; a dual-line shot may name at most "
            f"{MAX_CHARACTERS_PER_SHOT}", (*loc, "prompt"),
            "split the shot, or use 'method: single' (one identity per image; docs/method.md)")
    for name, spec in (shot.expressions or {}).items():
        if name not in named:
            # Only the prompt's real characters: a typo there ('{alce}') is named on the prompt's own line.
            cast = [n for n in named if n in characters]
            names = f"the prompt names: {', '.join(cast)}" if cast else "the prompt names no character"
            if name in characters:
                # A character of the cast is no misspelling of a near name ('anna' beside 'ann'): that name is another
                # person, so the fix is to name this one in the prompt, or to drop the entry.
                near = closest(name, cast, n=1)
                hint = (f"'{name}' is a character of the cast{f', not a misspelt {near[0]!r}' if near else ''}: put "
                        f"{{{name}}} in the prompt, or remove this entry ({names})")
            else:
                hint = did_you_mean(name, cast) or names
            add(f"'{name}' is not named in the prompt", (*loc, "expressions", name), hint, key=True)
            continue
        label = spec if isinstance(spec, str) else spec.label
        where = (*loc, "expressions", name) if isinstance(spec, str) else (*loc, "expressions", name, "label")
        try:
            lookup(label)
        except UnknownExpression as exc:
            more = "; 'idcli expressions' lists all 135 terms" if exc.suggestions else ""
            add(f"unknown expression '{label}' for '{name}'", where, exc.hint + more)


def shotlist_notes(doc: ShotList, loaded: LoadedYaml) -> list[Problem]:
    """Things worth saying about a valid shot list (``idcli validate`` prints them): not errors."""
    notes = []
    for i, shot in enumerate(doc.shots):
        named = _named(shot)
        # A plate shot gives every face its own identity line whatever 'method' says (plate_method_notes).
        if len(named) > 1 and shot.plate is None and _shot_method(shot, doc.defaults) == "single":
            line, col = loaded.mark(("shots", i, "prompt")) or (None, None)
            # Beyond the dual-line limit, suggesting dual-line would lead straight to an error.
            hint = ("use 'method: dual-line' for one identity line per character"
                    if len(named) <= MAX_CHARACTERS_PER_SHOT
                    else f"a dual-line shot may name at most {MAX_CHARACTERS_PER_SHOT} characters: split the shot "
                         "for one identity line per character")
            notes.append(Problem(f"method 'single' conditions one identity per image: only '{named[0]}' of "
                                 f"{', '.join(named)} is recognisable; the others appear through their "
                                 "descriptions", _path_text(("shots", i, "prompt")), line, col, hint))
    from .bare_names import bare_name_notes
    from .expression_notes import faceless_expression_notes
    from .number_notes import octal_notes
    from .prompt_syntax import foreign_syntax_notes
    from .repeated_names import repeated_name_notes
    from .repeated_selfies import repeated_selfie_notes
    from .unused_negative import unused_negative_notes

    return (notes + plate_method_notes(doc, loaded) + same_description_notes(doc, loaded)
            + foreign_syntax_notes(doc, loaded) + unused_negative_notes(doc, loaded)
            + faceless_expression_notes(doc, loaded)
            + repeated_name_notes(doc, loaded) + bare_name_notes(doc, loaded) + repeated_selfie_notes(doc, loaded)
            + octal_notes(loaded))


PLATE_SHOTS_NAMED = 3  # the defaults' note names this many plate shots, then a count


def plate_method_notes(doc: ShotList, loaded: LoadedYaml) -> list[Problem]:
    """A plate shot's own 'method' other than dual-line, or the defaults' one reaching plate shots: not used, since
    each face takes its character's identity line inside its face mask (docs/plates.md). Said by validate and plan
    at the method's line (the defaults' naming the plate shots it reaches); it still renders."""
    notes = []
    reached = [shot.id for shot in doc.shots if shot.plate is not None and shot.method is None]
    if reached and doc.defaults.method not in (None, "dual-line"):
        path: PathKey = ("defaults", "method")
        line, col = loaded.mark(path) or (None, None)
        named = ", ".join(repr(name) for name in reached[:PLATE_SHOTS_NAMED])
        more = f" and {len(reached) - PLATE_SHOTS_NAMED} more" if len(reached) > PLATE_SHOTS_NAMED else ""
        notes.append(Problem(f"the defaults' method '{doc.defaults.method}' does not apply to the plate "
                             f"shot{'s' if len(reached) > 1 else ''} {named}{more}", _path_text(path), line, col,
                             "each face takes its character's identity line inside its face mask; the other shots "
                             "still take it"))
    for i, shot in enumerate(doc.shots):
        if shot.plate is None or shot.method is None or shot.method == "dual-line":
            continue
        path = ("shots", i, "method")
        line, col = loaded.mark(path) or (None, None)
        notes.append(Problem(f"method '{shot.method}' does not apply to a plate shot", _path_text(path), line, col,
                             "each face takes its character's identity line inside its face mask; remove 'method'"))
    return notes


def same_description_notes(doc: ShotList, loaded: LoadedYaml) -> list[Problem]:
    """A dual-line shot naming two characters with one description (case and spacing aside): their attention
    maps coincide and the masks cannot tell them apart (docs/method.md, failure modes). Said by validate and
    plan at the shot's prompt; it still renders."""
    notes = []
    for i, shot in enumerate(doc.shots):
        named = _named(shot)
        if len(named) < 2 or shot.plate is not None or _shot_method(shot, doc.defaults) != "dual-line":
            continue  # single line: one identity anyway; a plate: each face has its own box
        by_text: dict[str, list[str]] = {}
        for name in named:
            description = (doc.characters[name].description or "") if name in doc.characters else ""
            if description.strip():
                by_text.setdefault(" ".join(description.lower().split()), []).append(name)
        for text, names in by_text.items():
            if len(names) < 2:
                continue
            line, col = loaded.mark(("shots", i, "prompt")) or (None, None)
            notes.append(Problem(f"characters {' and '.join(repr(n) for n in names)} have the same description "
                                 f"('{text}'): in a dual-line shot their attention maps coincide and their masks "
                                 "cannot be told apart (docs/method.md)", _path_text(("shots", i, "prompt")),
                                 line, col, "give each character a distinct description"))
    return notes


def _check_selfie_folders(base_dir: Path, name: str, selfies: list[str], add: Any) -> set[int]:
    """A folder that does not exist and was to hold two or more of a character's selfies: one problem, at the
    character's ``selfies`` when it was to hold them all, else at the first of them; the indices said so.

    A renamed or moved selfies folder was one problem per selfie, and none of them said that the folder was missing.
    """
    missing: dict[Path, list[int]] = {}
    for j, value in enumerate(selfies):
        path = local_path(value, base_dir)
        if path is None or path.exists() or path.is_symlink():
            continue  # no such home folder, a file, a broken link: _check_file's words
        if not path.parent.exists() and not path.parent.is_symlink():
            missing.setdefault(path.parent, []).append(j)
    told: set[int] = set()
    for folder, entries in missing.items():
        if len(entries) < 2:
            continue
        told.update(entries)
        first = selfies[entries[0]]
        leaf = local_path(first, base_dir)
        written = first[: -len(leaf.name)].rstrip("/\\") if leaf is not None and first.endswith(leaf.name) else ""
        # each file once: a selfie given twice is no second file looked for
        files = list(dict.fromkeys(p.name for j in entries if (p := local_path(selfies[j], base_dir)) is not None))
        rest = "" if len(files) < 2 else files[1] if len(files) == 2 else ", ".join(files[1:-1]) + " and " + files[-1]
        loc: PathKey = ("characters", name, "selfies")
        if len(entries) == len(selfies):
            whose = f"that holds {name}'s selfies"
        else:
            whose = "of " + ", ".join(f"selfies[{j}]" for j in entries[:-1]) + f" and selfies[{entries[-1]}]"
            loc = ("characters", name, "selfies", entries[0])
        # What was looked for: the first file's whole path (as a selfie missing from a folder that exists says it).
        also = f", and {rest} in the same folder" if rest else ""
        add(f"the folder '{written or folder}' {whose} does not exist (looked for {folder / files[0]}{also})", loc,
            _folder_hint(folder))
    return told


def _folder_hint(folder: Path) -> str:
    """The nearest folder's name to the first missing one on ``folder``'s path, among those beside it."""
    gone = folder
    while not gone.parent.exists() and gone.parent != gone:
        gone = gone.parent
    try:
        beside = [p.name for p in gone.parent.iterdir() if p.is_dir()]
    except OSError:
        beside = []
    hits = closest(gone.name, beside, n=1)
    return (f"did you mean '{hits[0]}'?" if hits else
            "give the folder the selfies are in, or put them back where the shot list says")


def _check_file(base_dir: Path, value: str, loc: PathKey, what: str, add: Any) -> None:
    path = local_path(value, base_dir)
    if path is None:
        add(f"{what} '{value}': no such user's home folder", loc, "write the file's full path")
        return
    if not path.exists() and path.is_symlink():  # the name is there: "did you mean" it would be no help
        add(f"{what} '{value}' is a symbolic link that leads to no file (broken, or a loop)", loc,
            "point the link at the file, or write the file's own path")
    elif not path.exists():
        # A run of them: 'selfies\\mara\\1.jpg' unquoted (a backslash doubled as in a Windows string) reads as two.
        posix = re.sub(r"\\+", "/", value)
        converted = local_path(posix, base_dir) if posix != value else None
        # A folder named 'C:' on a Linux share: its files are this machine's, said as any other (below).
        first = re.split(r"[\\/]", value)[0]
        drive_folder = bool(first) and (base_dir / first).is_dir()
        if (drive := windows_drive(value)) is not None and not drive_folder:
            leaf = re.split(r"[\\/]", value)[-1]
            add(f"{what} '{value}' is a Windows path (on {drive}), which this machine cannot reach", loc,
                "copy the file into the shot list's folder, or a folder in it, and write its path from there, with "
                f"'/' between folders: '{leaf}' or 'selfies/{leaf}'")
            return
        if converted is not None and converted.exists():
            # A shot list written on Windows: here '\\' is a character of the file name, not a separator.
            add(f"{what} '{value}' does not exist", loc, f"write '/' between folders: '{posix}'")
            return
        siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        hits = closest(path.name, siblings, n=1)
        # Suggested as it would be written: in the same folder as the value ('selfies/mara_1.jpg', not 'mara_1.jpg').
        folder = value[: -len(path.name)] if value.endswith(path.name) else ""
        looked = f" (looked for {path})" if str(path) != value else ""  # where a relative path led
        hint = f"did you mean '{folder}{hits[0]}'?" if hits else ""
        if hits and hits[0].lower() == path.name.lower():  # 'Mara.JPG' for 'mara.jpg': one name on Windows and macOS
            hint = (f"the file is '{folder}{hits[0]}': names differ by case here, as they do not on Windows and macOS; "
                    f"write '{folder}{hits[0]}'")
        add(f"{what} '{value}' does not exist{looked}", loc, hint)
    elif not path.is_file():
        add(f"{what} '{value}' is not a regular file", loc)
    elif what in ("selfie", "plate") and (said := not_a_photo(path, read_head(path), value)) is not None:
        add(f"{what} '{value}' {said[0]}", loc, said[1])
