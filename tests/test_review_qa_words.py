"""What identity QA found, said on the storyboard page in a director's words: a close-up of mara that shows theo's
face, one that shows no face, and a two-shot whose second face is mara's again. Rendered through the real commit
path (QA on the synthetic face pack's detections of the recipe selfies), the page read in a real Chromium on a
laptop's screen."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from browser_pipe import CHROMIUM, Browser
from review_helpers import face_canvas

import idcli
from idcli.review.page import write_review
from idcli.review.runs import load_run

pytest.importorskip("insightface", exc_type=ImportError)
# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")]

SHOTS = """\
version: 1
project: words
model: {preset: tiny-sd}
defaults: {size: 256x256, steps: 2, guidance: 2.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
shots:
  - id: sh010
    prompt: "{mara} and {theo} talk at a table"
    size: 512x256
    seeds: [4]
  - id: sh020
    prompt: "close-up of {mara}, rain"
    seeds: [2, 3]
"""
# What each seed's picture holds: mara twice (theo's place has her face), theo's face in mara's close-up, nobody.
FACES = {4: ["mara_1", "mara_1"], 2: ["theo_1"], 3: []}


class SwappedFaces:
    """An engine that draws the recipe selfies FACES gives for each request's seed."""

    adapter_record = None

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        return [RenderResult(face_canvas(FACES[r.seed], r.width, r.height).astype(np.float32) / 255.0)
                for r in requests]

    def suggest_batch_size(self, request) -> int:
        return 4


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_page_says_in_words_whose_face_is_wrong_or_missing(write_shotlist, tmp_path: Path) -> None:
    """The page badged these takes "low identity", "leakage", "no face" and showed a table of cosines: a director
    who does not know what a cosine is could not tell that mara's close-up shows someone else, nor that the two-shot
    has mara twice and no theo. Each flagged take now says so in words, with "likeness" for the figure, and the
    header says once what it measures."""
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu",
                          engine_factory=lambda *args, **kwargs: SwappedFaces())
    assert report.failed == 0
    flags = {take.stem: take.flags for take in load_run(out).takes}
    assert flags == {"sh010_t1": ["low_identity", "leakage"], "sh020_t1": ["low_identity"],
                     "sh020_t2": ["no_face", "missing_character"]}
    page = write_review(load_run(out)).index
    said = ("(function(){var t=document.getElementById('take-%s');t.scrollIntoView({behavior:'instant'});"
            "return Array.from(t.querySelectorAll('.qa-said li')).map(function(li){return li.innerText;});})()")
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=1366, height=768, deviceScaleFactor=1,
                     mobile=False)
        browser.open(page.as_uri())
        swapped = browser.js(said % "sh020_t1")
        assert len(swapped) == 1 and re.fullmatch(
            r"the face taken for mara does not look like mara \(likeness -?0\.\d\d; 0\.35 or more passes\)",
            swapped[0]), swapped
        assert browser.js(said % "sh020_t2") == ["no face found: mara should be in it"]
        twice = browser.js(said % "sh010_t1")
        assert twice[0].startswith("the face taken for theo does not look like theo (likeness ")
        assert re.fullmatch(r"the face taken for theo \(#\d\) looks like mara \(likeness 1\.00\)", twice[1]), twice
        header = browser.js("document.querySelector('#take-sh020_t1 table.faces thead').innerText")
        assert header.split() == ["#", "character", "likeness", "area", "box"]
        key = browser.js("document.querySelector('header details.qa-key').textContent")
        assert "Likeness runs from −1 to 1" in key and "under 0.35 (low identity)" in key, key
        assert "0.35 or more (leakage)" in key
        assert browser.problems() == []
