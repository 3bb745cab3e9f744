"""The one rule of a take's random-weight mark (idcli/random_mark.py), from records as sidecars write them."""

from __future__ import annotations

from idcli.random_mark import made_by_random_weights, random_face_model_names, random_weights_mark


def _record(model_random: bool, faces: list[tuple[str, bool, bool]]) -> dict:
    return {"model": {"preset": "sd15", "random_weights": model_random},
            "identity": [{"name": n, "conditions_image": c, "random_face_models": r} for n, c, r in faces]}


def test_the_model_or_a_conditioning_identitys_face_models_make_a_take_random() -> None:
    real = _record(False, [("mara", True, False)])
    assert not made_by_random_weights(real) and random_weights_mark(real) is None
    faces = _record(False, [("mara", True, True), ("Ünï", True, True), ("extra", False, True)])
    assert made_by_random_weights(faces) and random_face_model_names(faces) == ["mara", "Ünï"]
    mark = random_weights_mark(faces)
    assert mark is not None and "face models" in mark and "model's weights are real" in mark
    mark.encode("latin-1")  # a tEXt chunk whatever the characters' names
    # A character named but not conditioning the image (its face models did not make the picture): not random.
    assert not made_by_random_weights(_record(False, [("extra", False, True)]))


def test_a_random_models_mark_keeps_its_wording_with_synthetic_faces_too() -> None:
    # The tiny presets' images keep their bytes: the whole image is random, the identities with it.
    for faces in ([], [("mara", True, True)]):
        assert random_weights_mark(_record(True, faces)) == "true: rendered by a random-weight test model"
