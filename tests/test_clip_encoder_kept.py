"""FaceID-Plus v2's CLIP image encoder loaded once per process (idcli/kept_encoder.py): renders in one process that
each bring a new character read its face crops with the encoder the first one loaded, keyed by its folder, and make
the images a fresh load makes; ``kept_engine.release()`` frees it with the engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import idcli
from idcli import kept_encoder, kept_engine

pytest.importorskip("insightface", exc_type=ImportError)

CAST = [("mara", "mara_1.jpg"), ("theo", "theo_1.jpg"), ("ines", "ines_1.jpg"), ("mara_b", "mara_2.jpg")]


def shot_list(write_shotlist, characters: int) -> Path:
    """A FaceID-Plus v2 shot list of the first ``characters`` of CAST, one shot each."""
    cast = CAST[:characters]
    text = ("version: 1\nproject: encoder\nmodel: {preset: tiny-sd, adapter: {variant: faceid-plusv2}}\n"
            "defaults: {size: 64x64, steps: 2, takes: 1}\ncharacters:\n"
            + "".join(f"  {name}: {{selfies: [selfies/{selfie}]}}\n" for name, selfie in cast) + "shots:\n"
            + "".join(f'  - {{id: s{i}, prompt: "{{{name}}} at dusk"}}\n' for i, (name, _) in enumerate(cast)))
    return write_shotlist(text, f"shots{characters}.yaml")


@pytest.fixture
def encoder_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folder of every ``CLIPVisionModelWithProjection.from_pretrained`` call (each load of the encoder)."""
    from transformers import CLIPVisionModelWithProjection

    calls: list[str] = []
    real = CLIPVisionModelWithProjection.from_pretrained.__func__

    def counted(cls: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(source))
        return real(cls, source, *args, **kwargs)

    monkeypatch.setattr(CLIPVisionModelWithProjection, "from_pretrained", classmethod(counted))
    return calls


def growing_renders(write_shotlist, out: Path, release_between: bool) -> dict[str, Any]:
    """Four renders in this process, each adding one character; every image's pixels and CLIP record by take."""
    found: dict[str, Any] = {}
    for size in range(1, len(CAST) + 1):
        report = idcli.render(shot_list(write_shotlist, size), out / str(size), device="cpu", batch_size=1)
        assert report.exit_code == 0 and report.rendered == size, report.as_dict()
        if release_between:
            kept_engine.release()  # what a fresh process would have: nothing kept
        for png in sorted((out / str(size)).glob("*/*.png")):
            record = json.loads(png.with_suffix(".json").read_text("utf-8"))
            clip = [c["clip_features"]["sha256"] for c in record["identity"]]
            found[f"{size}/{png.name}"] = (np.asarray(Image.open(png).convert("RGB")).tobytes(), clip)
    return found


def test_renders_bringing_new_characters_load_the_encoder_once_and_make_a_fresh_loads_images(
        write_shotlist, tmp_path: Path, encoder_loads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each render's plan built its own encoder holder, so every render with a character whose features were not
    cached yet loaded the encoder again: 4 loads for 4 renders adding one character each (a sequence's shot list
    growing, rendered by a pipeline after each change). Loaded once now; the images and the CLIP features' hashes are
    those of renders that load it afresh every time (the encoder released after each render: a fresh IDCLI_HOME, so
    the features are computed again, not read from the first pass's cache)."""
    kept_once = growing_renders(write_shotlist, tmp_path / "kept", release_between=False)
    assert len(encoder_loads) == 1, encoder_loads
    assert kept_encoder.kept_key() is not None
    monkeypatch.setenv("IDCLI_HOME", str(tmp_path / "fresh-home"))
    encoder_loads.clear()
    fresh = growing_renders(write_shotlist, tmp_path / "fresh", release_between=True)
    assert len(encoder_loads) == len(CAST), encoder_loads  # released: loaded again by each render
    assert fresh.keys() == kept_once.keys() and len(fresh) == 10
    assert fresh == kept_once


def test_release_frees_the_encoder_with_the_engine_and_another_folder_is_another_encoder(
        write_shotlist, tmp_path: Path, encoder_loads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``kept_engine.release()`` drops the encoder too; an encoder in another folder (here another IDCLI_HOME's random
    one) is never handed out for the first: it is loaded, and replaces the kept one (one at most)."""
    idcli.render(shot_list(write_shotlist, 1), tmp_path / "a", device="cpu", batch_size=1)
    first = kept_encoder.kept_key()
    assert first is not None and len(encoder_loads) == 1
    assert kept_engine.release() and kept_encoder.kept_key() is None
    monkeypatch.setenv("IDCLI_HOME", str(tmp_path / "other-home"))
    idcli.render(shot_list(write_shotlist, 2), tmp_path / "b", device="cpu", batch_size=1)
    assert len(encoder_loads) == 2 and encoder_loads[0] != encoder_loads[1]
    assert kept_encoder.kept_key() not in (None, first)


def test_two_plans_at_once_load_the_encoder_once(write_shotlist, tmp_path: Path, encoder_loads: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads planning at once, each with characters whose features are not cached, share one load (the second
    waits for the first's; each loaded its own before) and give the features a plan alone gives with a fresh load."""
    import threading

    from cli_helpers import plan_on_cpu

    lists = [shot_list(write_shotlist, 2), write_shotlist(shot_list(write_shotlist, 4).read_text("utf-8").replace(
        "project: encoder", "project: other"), "other.yaml")]
    plans: dict[int, Any] = {}
    threads = [threading.Thread(target=lambda i=i: plans.__setitem__(i, plan_on_cpu(lists[i]))) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(plans) == 2 and len(encoder_loads) == 1, (plans.keys(), encoder_loads)
    monkeypatch.setenv("IDCLI_HOME", str(tmp_path / "fresh-home"))  # nothing cached: computed again
    kept_engine.release()
    alone = plan_on_cpu(lists[1])
    assert len(encoder_loads) == 2
    for i in range(2):
        for job in plans[i].jobs:
            again = next(j for j in alone.jobs if j.shot_id == job.shot_id)
            assert np.array_equal(job.request.identity_clip, again.request.identity_clip)
