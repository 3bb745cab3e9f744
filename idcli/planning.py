"""A shot list's plan for the device it would run on: the plan's inputs gathered from files (identities from selfies,
the identity adapter, plates, the tokenizer) and the warnings the plan carries.

plan.py stays pure (no files read, no torch); this is the step before it that reads, encodes and caches. Split
from run.py: ``idcli plan``, ``render`` and the bench all plan through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from .models import resolve_model
from .plan import Plan, make_plan
from .runtime import Runtime, resolve_runtime
from .shotlist import LoadedShotList
from .tokenizer_files import (
    HubUnavailable,
    fetch_tokenizer_files,
    unknown_keys_error,
    unknown_keys_warning,
    unmeasured_shots,
)


def plan_shotlist(loaded: LoadedShotList | str | Path, *, preset: str | None = None, device: str = "auto",
                  dtype: str | None = None, face_models: str | os.PathLike[str] | None = None,
                  on_encode: Callable[[str], None] | None = None,
                  takes: dict[str, int] | None = None, runtime: Runtime | None = None) -> tuple[Plan, Runtime]:
    """The plan of a shot list for the device it would run on (dtype is part of every key).

    Characters named in shots are resolved to identities first (selfies encoded once and cached),
    because their embeddings are part of the job keys. ``loaded`` may be a path to a shot list.
    Arguments of the wrong type or range raise ``InputError``. ``takes`` raises some shots' take counts
    (``--retake-flagged``: the added takes get the seeds the shot list's ``takes`` would give them).
    ``runtime``, when given, is the device
    and dtype the jobs will run with (a Ray cluster's workers), instead of this machine's.
    """
    from . import arguments as args
    from .adapters import resolve_adapter
    from .identity.resolve import resolve_identities
    from .shot_prompts import shot_characters

    loaded = args.as_loaded_shotlist(loaded)
    preset = args.check_optional_str("preset", preset)
    device = args.check_str("device", device)
    dtype = args.check_dtype(dtype)
    face_models = args.check_path_or_none("face_models", face_models)
    on_encode = args.check_callable("on_encode", on_encode)
    takes = args.check_takes(takes)
    runtime = runtime or resolve_runtime(device, dtype or loaded.shotlist.model.dtype)
    model = resolve_model(loaded.shotlist.model, loaded.base_dir, runtime.dtype, preset)
    from .model_weight_keys import check_base_model_weights

    # A weight file lacking some of a component's weights, a damaged shard index: refused before any selfie is
    # encoded (from headers and configs), not by the render once the model loads.
    check_base_model_weights(model)
    # Plates (issue 12): checked fully (file, faces, boxes) before anything is planned; see idcli/plates.py.
    from .plates import plate_shots

    plates = plate_shots(loaded, face_models, model.preset)
    names = {name for shot in loaded.shotlist.shots for name in shot_characters(shot)}
    # A character whose selfies cannot be used fails only the shots naming it (plan.blocked).
    unusable: dict[str, Any] = {}
    if names:
        # The adapter's checks (its file's kind and base model, from a header: adapter_fit.py) before any selfie is
        # encoded, which costs seconds a selfie; nothing hashed here, the adapter is resolved for its key below.
        resolve_adapter(loaded.shotlist.model, model, loaded.base_dir, hash_contents=False)
    identities = resolve_identities(loaded, names, model.preset, face_models, on_encode, unusable) if names else {}
    adapter = resolve_adapter(loaded.shotlist.model, model, loaded.base_dir) if identities else None
    if adapter is not None and adapter.is_plus:
        # FaceID-Plus v2 (issue 17): each identity's CLIP face features, computed once and cached.
        from .identity.clip_features import attach_clip_features

        # A pack without features for this encoder, where the encoder is not here, fails its shots only.
        identities = attach_clip_features(identities, adapter, loaded=loaded, failures=unusable,
                                          preset=model.preset)
    from .prompt_tokens import load_prompt_measure

    measure = load_prompt_measure(model)
    plan = make_plan(loaded, model, identities, adapter, unusable, measure, takes=takes, plates=plates)
    unmeasured = unmeasured_shots(plan) if measure is None else []
    rendering = _for_render.get()
    # Only the shots the render renders: one that --only leaves out is neither rendered nor keyed (plan warns).
    to_key = unmeasured if rendering is True else [shot for shot in unmeasured if rendering and shot in rendering]
    if to_key:
        # A prompt that may need more than one CLIP window, and no tokenizer here: a render downloads the model
        # anyway, so its tokenizer's files come first (the key names the window count: idcli/tokenizer_files.py).
        try:
            measure = load_prompt_measure(model) if fetch_tokenizer_files(model) else None
        except HubUnavailable as unavailable:  # asked once: unreachable, gated, no such repository
            raise unknown_keys_error(model, to_key, unavailable.problem) from None
        if measure is not None:
            plan = make_plan(loaded, model, identities, adapter, unusable, measure, takes=takes, plates=plates)
            unmeasured = []
        else:
            raise unknown_keys_error(model, to_key)
    if adapter is not None:
        from .adapters import adapter_lora_note, adapter_name_note

        # A FaceID file without its LoRA, a FaceID-Plus v1 file rendered as v2: both render, said once here.
        plan.warnings.extend(note for note in (adapter_lora_note(adapter), adapter_name_note(adapter)) if note)
    from .identity.group_selfies import group_selfie_warnings

    plan.warnings.extend(group_selfie_warnings(loaded, identities))  # a group photo's largest face is used
    from .identity.twins import twin_warnings

    plan.warnings.extend(twin_warnings(loaded, identities))  # two characters, one face
    synthetic = sorted(name for name, identity in identities.items() if identity.random_face_models)
    if synthetic and not model.random_weights:
        from .option_words import Option, words

        # The quickstart's `--face-models synthetic` kept with a real preset: real-looking images whose identities
        # come from random weights (the tiny presets already say RANDOM for the whole image).
        plan.warnings.append(
            f"the identities of {', '.join(repr(n) for n in synthetic)} come from idcli's SYNTHETIC random-weight "
            "face models (a test pack, not a face recogniser): these images carry no likeness. Point "
            + words((Option("face_models"),)) + " (or $IDCLI_FACE_MODELS) at an insightface pack such as buffalo_l "
            "for real identities")
    from .repeated_selfies import repeated_selfie_notes
    from .shotlist_checks import plate_method_notes, same_description_notes

    if loaded.yaml is not None:
        # 'method: single' on a plate shot, two characters of a dual-line shot with one description, and a selfie
        # listed twice for one character (validate notes each too, at the same line).
        plan.warnings.extend(note.format(str(loaded.source))
                             for note in [*plate_method_notes(loaded.shotlist, loaded.yaml),
                                          *same_description_notes(loaded.shotlist, loaded.yaml),
                                          *repeated_selfie_notes(loaded.shotlist, loaded.yaml)])
        # AUTOMATIC1111 weights, LoRA tags, BREAK: read as plain words (idcli/prompt_syntax.py); said once here.
        from .prompt_syntax import foreign_syntax_notes, foreign_syntax_warning

        syntax = foreign_syntax_warning(foreign_syntax_notes(loaded.shotlist, loaded.yaml), str(loaded.source))
        if syntax is not None:
            plan.warnings.append(syntax)
        # A negative prompt beside guidance of 1 or less: never used; said once here.
        from .unused_negative import unused_negative_notes, unused_negative_warning

        unused = unused_negative_warning(unused_negative_notes(loaded.shotlist, loaded.yaml), str(loaded.source))
        if unused is not None:
            plan.warnings.append(unused)
        # An expression on a shot that names no character: a face asked of an empty scene; said once here.
        from .expression_notes import faceless_expression_notes, faceless_expression_warning

        faceless = faceless_expression_warning(faceless_expression_notes(loaded.shotlist, loaded.yaml),
                                               str(loaded.source))
        if faceless is not None:
            plan.warnings.append(faceless)
        # A character named twice in a prompt: two places of her, for the render and for QA; said once here.
        from .repeated_names import repeated_name_notes, repeated_name_warning

        repeated = repeated_name_warning(repeated_name_notes(loaded.shotlist, loaded.yaml), str(loaded.source))
        if repeated is not None:
            plan.warnings.append(repeated)
        # A character of the cast written without braces: a plain word, no identity; said once here.
        from .bare_names import bare_name_notes, bare_name_warning

        bare = bare_name_warning(bare_name_notes(loaded.shotlist, loaded.yaml), str(loaded.source))
        if bare is not None:
            plan.warnings.append(bare)
        # A number with a leading zero, octal to YAML 1.1 (seeds: [010] is the seed 8): validate's note, said once here
        # for the artist who never runs validate.
        from .number_notes import octal_notes, octal_warning

        octal = octal_warning(octal_notes(loaded.yaml), str(loaded.source))
        if octal is not None:
            plan.warnings.append(octal)
    if unmeasured:
        plan.warnings.append(unknown_keys_warning(model, unmeasured))
    elif measure is None:
        plan.warnings.append(f"cannot read the tokenizer of {model.label} here: prompt token counts are unknown "
                             "(every prompt is at most 75 bytes, so each fits one CLIP window and its key is known)")
    return plan, runtime


def plan_to_render(loaded: LoadedShotList, only: list[str] | None = None, **kwargs: Any) -> tuple[Plan, Runtime]:
    """``plan_shotlist`` as a render (dry runs too, and a Ray driver) plans: where a prompt may need more than one
    CLIP window and the model's tokenizer is not here, its files are downloaded first (the render downloads the model
    anyway), and where they cannot be, ``ModelUnavailableError`` (exit 4) names the shots before anything renders.
    ``idcli plan`` never downloads: it warns that those shots' keys are unknown. ``only``: the shots the render
    renders (an ``--only`` selection; None: all), the only ones whose prompts are fetched for or refused."""
    from .plan import selected_shots

    # a pattern (--only 'sc01_*') stands for the shot ids it matches
    token = _for_render.set(True if only is None else tuple(
        selected_shots(only, [shot.id for shot in loaded.shotlist.shots])))
    try:
        return plan_shotlist(loaded, **kwargs)
    finally:
        _for_render.reset(token)


# Set while a render plans (True, or the shot ids it renders); a context variable so that plan_shotlist's public
# signature stays as it is.
_for_render: ContextVar[bool | tuple[str, ...]] = ContextVar("idcli_plan_for_render", default=False)
