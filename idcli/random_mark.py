"""Whether a take was made by random-weight test models, from its record: the one rule every place that writes or
shows it uses (the PNG's ``idcli-random-weights`` chunk, ``idcli deliver``, the C2PA manifest, the review page,
contact sheet, animatic and export).

Two parts of a render can be random-weight test models: the diffusion model (the tiny/bench presets,
``model.random_weights``) and the face models that encoded an identity conditioning the image (the synthetic
insightface pack, ``random_face_models`` in that identity's entry). Either makes the take noise for review: a real
model given synthetic faces draws real-looking people whose identities carry no likeness."""

from __future__ import annotations

from typing import Any


def random_face_model_names(record: dict[str, Any]) -> list[str]:
    """The characters whose identity conditions the image and was encoded by random-weight test face models."""
    return [str(c.get("name")) for c in record.get("identity") or []
            if isinstance(c, dict) and c.get("conditions_image") and c.get("random_face_models") is True]


def random_model(record: dict[str, Any]) -> bool:
    """The diffusion model itself has random weights (a tiny/bench preset)."""
    model = record.get("model")
    return isinstance(model, dict) and model.get("random_weights") is True


def made_by_random_weights(record: dict[str, Any]) -> bool:
    """The rule: the model's weights OR any conditioning identity's face models are random-weight test models."""
    return random_model(record) or bool(random_face_model_names(record))


def random_weights_mark(record: dict[str, Any]) -> str | None:
    """The ``idcli-random-weights`` chunk's text, saying which part was random; None for a take of real models.

    A random model makes the whole image noise, its identities included: its wording is the one it always had, so
    the tiny presets' images (whose faces are the synthetic pack's too) keep their bytes. No character is named, so
    the text stays Latin-1 and the chunk a ``tEXt`` whatever the names' letters (the manifest and sidecar name them)."""
    if random_model(record):
        return "true: rendered by a random-weight test model"
    if random_face_model_names(record):
        return "true: identities encoded by random-weight test face models (no likeness); the model's weights are real"
    return None


def random_weights_mark_before_2026_12_03(record: dict[str, Any]) -> str | None:
    """The chunk's text as idcli wrote it until 2026-12-03: for a random model only (a real model's take with synthetic
    face models had none). ``idcli reproduce`` encodes a take so when the record's sha256 is that encoding's, so such
    a take rendered before is still ``identical``, not ``pixels-identical``."""
    return random_weights_mark(record) if random_model(record) else None
