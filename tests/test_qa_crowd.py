"""Identity QA in a crowd (docs/review.md, "Identity QA"): the record keeps at most 32 faces, but a character's
own face is kept however many larger strangers stand around it — in a crowd plate (more than 6 characters
are allowed there) and in a text-to-image crowd."""

from __future__ import annotations

import numpy as np

from idcli.review.qa import MAX_FACES, CastMember, assess


class _Face:
    def __init__(self, box: list[float], vector: np.ndarray) -> None:
        self.bbox, self.det_score = np.array(box, np.float32), 0.9
        self.embedding = (vector / np.linalg.norm(vector)).astype(np.float32)


def _crowd() -> tuple[list[_Face], np.ndarray]:
    """40 strangers' faces, largest first, and mara's face, the smallest, last."""
    rng = np.random.default_rng(0)
    faces = [_Face([i * 20.0, 0, i * 20.0 + 100 - i, 100 - i], rng.normal(size=512)) for i in range(40)]
    mara = np.eye(512)[0]
    faces.append(_Face([900, 300, 940, 340], mara + 0.01 * rng.normal(size=512)))
    return faces, mara


def test_a_characters_small_face_in_a_crowd_plate_is_kept_and_matched() -> None:
    faces, mara = _crowd()
    record = assess(faces, [CastMember("mara", mara)], 1000, 400, regions={"mara": [[900, 300, 40, 40]]})
    assert len(record["faces"]) == MAX_FACES
    assert record["flags"] == [] and record["characters"]["mara"]["cosine"] > 0.8
    kept = record["faces"][record["characters"]["mara"]["face"]]
    assert kept["box"] == [900.0, 300.0, 940.0, 340.0] and kept["plate_face"] is False
    areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in record["faces"]]
    assert areas == sorted(areas, reverse=True)  # still largest first


def test_a_characters_small_face_in_a_crowd_is_kept_and_matched() -> None:
    faces, mara = _crowd()
    record = assess(faces, [CastMember("mara", mara)], 1000, 400)
    assert len(record["faces"]) == MAX_FACES
    assert record["flags"] == [] and record["characters"]["mara"]["cosine"] > 0.8
    assert record["faces"][record["characters"]["mara"]["face"]]["box"] == [900.0, 300.0, 940.0, 340.0]
