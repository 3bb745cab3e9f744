"""The storyboard page on a phone-sized screen (390 × 844, as Chromium's mobile emulation lays it out): the longest
names a shot list can give (64 characters, no space to break at) stay inside the screen instead of widening the
page, which a phone then shows zoomed out or cut off at the right."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_pipe import CHROMIUM, Browser
from test_film_scale import flat_engine_factory

import idcli
from idcli.review.page import write_review
from idcli.review.runs import load_run

# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = pytest.mark.browser

PROJECT = "nightshift_episode_104_act_two_previs_for_the_directors_cut_v123"  # 64: the longest id allowed
LONG_SHOT = "sc01_sh020_alternate_angle_over_the_shoulder_reverse_wide_v2_x"


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_longest_names_stay_inside_a_phones_screen(tmp_path: Path) -> None:
    assert len(PROJECT) == 64 and len(LONG_SHOT) == 62
    shots = tmp_path / "shots.yaml"
    shots.write_text("\n".join([
        "version: 1", f"project: {PROJECT}", "model: {preset: tiny-sd}",
        "defaults: {size: 64x64, steps: 1, guidance: 1.0, takes: 2}", "shots:",
        *(f'  - {{id: {shot}, prompt: "a lighthouse at dusk"}}' for shot in ("sc01_sh010", LONG_SHOT))]) + "\n",
        "utf-8")
    out = tmp_path / "out"
    assert idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False).rendered == 4
    page = write_review(load_run(out)).index
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=390, height=844, deviceScaleFactor=1,
                     mobile=True)
        browser.open(page.as_uri())
        layout = browser.js("""(function(){var wide=[];
          document.querySelectorAll('body *').forEach(function(e){var r=e.getBoundingClientRect();
            if(r.width&&r.right>390.5){wide.push(e.tagName.toLowerCase()+' '+(e.textContent||'').slice(0,24));}});
          return {width:document.documentElement.scrollWidth,viewport:window.innerWidth,wide:wide};})()""")
        # every name on the page, the header's project, the index's and the headings' shot ids
        assert layout == {"width": 390, "viewport": 390, "wide": []}
        assert browser.problems() == []
