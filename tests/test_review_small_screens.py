"""The storyboard page on small screens. On a phone-sized screen (390 × 844, as Chromium's mobile emulation lays it
out) the longest names a shot list can give (64 characters, no space to break at) stay inside the screen instead of
widening the page, which a phone then shows zoomed out or cut off at the right. On a short one (a 13-inch laptop's
1366 × 768 at 150 % zoom: 910 × 512 CSS px) the header leaves most of the first screen to the boards, and still shows
what a director needs there (docs/review.md, "On a short screen")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from browser_pipe import CHROMIUM, Browser
from test_film_scale import flat_engine_factory

import idcli
from idcli.review.page import write_review
from idcli.review.runs import load_run

# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = pytest.mark.browser

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
PROJECT = "nightshift_episode_104_act_two_previs_for_the_directors_cut_v123"  # 64: the longest id allowed
LONG_SHOT = "sc01_sh020_alternate_angle_over_the_shoulder_reverse_wide_v2_x"


@needs_chromium
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


# What the header holds on the first screen, each from the top of the page: (its bottom, the screen's height), and for
# what a director needs there, whether it is shown whole within the first screen. The QA explanation is there only on
# a page with QA; the picks bar, once the script has run.
FIRST_SCREEN = """(function(){
  function shown(e){if(!e||!e.checkVisibility()){return false;}var r=e.getBoundingClientRect();
    return r.height>0&&r.top>=0&&r.bottom<=window.innerHeight;}
  var needs={summary:'.summary',qa:'.qa-key summary',count:'.pick-count',export:'button.export-picks',
    where:'.pick-where',index:'nav a'},seen={};
  Object.keys(needs).forEach(function(k){var e=document.querySelector(needs[k]);if(e){seen[k]=shown(e);}});
  return {header:document.querySelector('header').getBoundingClientRect().bottom,screen:window.innerHeight,
    seen:seen,scrolled:window.scrollY};})()"""


def film(folder: Path, ids: list[str]) -> Path:
    """A rendered film of one-take shots with these ids (the flat engine, no QA): its output folder."""
    shots = folder / "film.yaml"
    shots.write_text("\n".join(["version: 1", "project: film", "model: {preset: tiny-sd}",
                                "defaults: {size: 64x64, steps: 1, guidance: 1.0}", "shots:",
                                *(f'  - {{id: {i}, prompt: "a lighthouse at dusk"}}' for i in ids)]) + "\n", "utf-8")
    out = folder / "out"
    assert idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False).rendered == len(ids)
    return out


@needs_chromium
@pytest.mark.parametrize("kind", ["qa", "every shot listed", "scenes"])
def test_a_short_laptop_screen_shows_boards_below_the_header(kind: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """1366 × 768 at 150 % zoom, a 13-inch laptop's usual setting: a viewport of 910 × 512 CSS px. The header took
    293 px of the 512 on a page with QA, 398 with the index of 40 shots (every shot listed), 376 with an index of 40
    scenes: a screen of boards shrank to a strip. It now takes at most 40 % of it, and the QA summary, the picks
    count, the export button and where picks are kept (or the warning that they are not) stay on the first screen.
    The index keeps to two rows that scroll."""
    if kind == "qa":  # the QA explanation, the random-weights warning in the summary
        out = tmp_path / "out"
        shutil.copytree(request.getfixturevalue("review_run"), out)
    elif kind == "every shot listed":  # the longest index that lists shots: NAV_FLAT_SHOTS of them
        out = film(tmp_path, [f"sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}" for i in range(40)])
    else:  # scenes of two shots each: the most scene lines 80 shots can give
        out = film(tmp_path, [f"sc{i // 2 + 1:03d}_sh{i % 2 * 10 + 10:04d}" for i in range(80)])
    page = write_review(load_run(out)).index
    blocked = tmp_path / "blocked"  # a browser that lets no page save data: the longer warning in its place
    (blocked / "Default").mkdir(parents=True)
    (blocked / "Default" / "Preferences").write_text(json.dumps(
        {"profile": {"default_content_setting_values": {"cookies": 2}}}), "utf-8")  # 2: block
    for profile in (tmp_path / "profile", blocked):
        with Browser(profile, tmp_path / "downloads") as browser:
            browser.send("Emulation.setDeviceMetricsOverride", page=True, width=910, height=512,
                         deviceScaleFactor=1.5, mobile=False)
            browser.open(page.as_uri())
            first = browser.js(FIRST_SCREEN)
            assert first["screen"] == 512 and first["scrolled"] == 0
            assert first["header"] <= 0.40 * 512, (kind, profile.name, first)  # 60 % of the screen or more: boards
            needs = {"summary", "count", "export", "where", "index"} | ({"qa"} if kind == "qa" else set())
            assert first["seen"] == dict.fromkeys(needs, True), (kind, profile.name, first)
            assert browser.problems() == []


@needs_chromium
def test_on_a_short_screen_the_index_walked_by_keyboard_shows_whole_and_the_keys_scroll_the_page(tmp_path: Path
                                                                                                 ) -> None:
    """The short screen's index keeps to two rows that scroll; walked by Tab, Page Down and Space scrolled those two
    rows, not the page, until the index's end. Reached by keyboard it shows whole, and the page scrolls."""
    out = film(tmp_path, [f"sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}" for i in range(40)])
    page = write_review(load_run(out)).index
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=910, height=512, deviceScaleFactor=1.5,
                     mobile=False)
        browser.open(page.as_uri())
        rows = "document.querySelector('header nav ol')"
        assert browser.js(f"{rows}.scrollHeight>{rows}.clientHeight")  # two rows of the 40 links, the rest scrolled
        for _ in range(30):  # Tab, to sc001_sh0160: the index's third row
            browser.key("Tab")
            if browser.js("document.activeElement.getAttribute('href')") == "#shot-sc001_sh0160":
                break
        link = browser.js("(function(){var r=document.activeElement.getBoundingClientRect();"
                          "return [r.top,r.bottom];})()")
        assert link[0] >= 0 and link[1] <= 512, link  # in view
        assert browser.js(f"{rows}.scrollHeight<={rows}.clientHeight")  # whole: no scroller to take the keys
        browser.key("PageDown")
        browser.wait_until("window.scrollY>0", True, "Page Down scrolling the page from the index")
        assert browser.js(f"{rows}.scrollTop") == 0
        browser.press("j")  # to a shot, out of the index: it keeps to its two rows again
        assert browser.js("document.activeElement.closest('header nav')") is None
        assert browser.js(f"{rows}.scrollHeight>{rows}.clientHeight")
        assert browser.problems() == []


# Each of what a director needs in the header, brought into view as Tab or the wheel brings it (the header scrolls on
# its own on a very short screen): whether it then shows whole, inside the header and inside the first screen.
REACHED = """(function(){var header=document.querySelector('header'),h=header.getBoundingClientRect(),seen={};
  var needs={summary:'.summary',qa:'.qa-key summary',count:'.pick-count',export:'button.export-picks',
    where:'.pick-where',index:'nav a',sheet:'.keys a'};
  Object.keys(needs).forEach(function(k){var e=document.querySelector(needs[k]);if(!e){return;}
    e.scrollIntoView({block:'nearest',behavior:'instant'});var r=e.getBoundingClientRect();
    seen[k]=e.checkVisibility()&&r.height>0&&r.top>=h.top-0.5&&r.bottom<=h.bottom+0.5&&r.bottom<=window.innerHeight;});
  return {seen:seen,scrolled:window.scrollY};})()"""


@needs_chromium
@pytest.mark.parametrize("kind", ["qa", "scenes"])
def test_at_200_percent_zoom_the_header_takes_a_small_share_and_keeps_everything(kind: str, tmp_path: Path,
                                                                                 request: pytest.FixtureRequest
                                                                                 ) -> None:
    """1366 × 768 at 200 % zoom (a director who needs larger type): a viewport of 683 × 384 CSS px. The header took
    239–241 px of the 384 (62–63 %; 68 % in the director's browser): one row of takes below it. On a screen 480 px tall
    or less it now takes at most 36 % and scrolls on its own, so nothing in it is left out: each of the summary, the QA
    explanation, the picks count and export button, where picks are kept, the index and the contact sheet is reached
    (as Tab reaches it) and shown whole in it, and the page itself stays where it was."""
    if kind == "qa":
        out = tmp_path / "out"
        shutil.copytree(request.getfixturevalue("review_run"), out)
    else:
        out = film(tmp_path, [f"sc{i // 2 + 1:03d}_sh{i % 2 * 10 + 10:04d}" for i in range(80)])
    page = write_review(load_run(out)).index
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=683, height=384, deviceScaleFactor=2,
                     mobile=False)
        browser.open(page.as_uri())
        first = browser.js(FIRST_SCREEN)
        assert first["screen"] == 384 and first["scrolled"] == 0
        assert first["header"] <= 0.36 * 384, (kind, first)
        reached = browser.js(REACHED)
        needs = {"summary", "count", "export", "where", "index", "sheet"} | ({"qa"} if kind == "qa" else set())
        assert reached == {"seen": dict.fromkeys(needs, True), "scrolled": 0}, (kind, reached)
        # walked by Tab from the top, each of the header's stops is shown whole in it, the page still at its top
        browser.open(page.as_uri())
        stops = []
        for _ in range(60):
            browser.key("Tab")
            stop = browser.js(TAB_STOP)
            if stop["main"]:
                break
            stops.append(stop)
        assert len(stops) > 4 and all(s["whole"] and s["scrolled"] == 0 for s in stops if s["header"]), (kind, stops)
        assert browser.problems() == []


TAB_STOP = """(function(){var e=document.activeElement,r=e.getBoundingClientRect(),
  h=document.querySelector('header').getBoundingClientRect();
  return {name:e.tagName.toLowerCase()+' '+(e.textContent||'').slice(0,16),header:!!e.closest('header'),
    main:!!e.closest('main'),whole:r.top>=h.top-0.5&&r.bottom<=h.bottom+0.5,scrolled:window.scrollY};})()"""


# After export, what the box says (downloaded, or nothing to send) and the text to copy, against what the header
# shows of itself: the header scrolls on its own on a very short screen, and the box opens at its end.
EXPORT_BOX = """(function(){var h=document.querySelector('header').getBoundingClientRect();
  function at(e){var r=e.getBoundingClientRect();
    return {top:r.top-h.top,bottom:r.bottom-h.top,visible:e.checkVisibility()};}
  var box=document.querySelector('.picks .export'),
    said=box.querySelector('.exported:not([hidden]),.nothing:not([hidden])');
  return {header:h.bottom-h.top,said:at(said),text:at(box.querySelector('textarea')),scrolled:window.scrollY};})()"""


@needs_chromium
@pytest.mark.parametrize(("width", "height", "touch"), [(683, 384, False), (844, 390, True)])
def test_on_a_very_short_screen_the_export_box_opens_in_view(width: int, height: int, touch: bool,
                                                            tmp_path: Path) -> None:
    """1366 × 768 at 200 % zoom, and a phone held sideways: the header keeps to 35 % of the screen and scrolls on its
    own, and the export box opens at its end, below what it shows. Export picks downloaded the file, and what it
    said (downloaded, or nothing to send) and the text to copy into a message stayed out of sight in the header, as if
    nothing had happened (until 2026-12-02). The header now scrolls to the box: what it says shown whole, the text to
    copy beginning below it, the page still at its top."""
    page = write_review(load_run(film(tmp_path, [f"sc{i // 2 + 1:03d}_sh{i % 2 * 10 + 10:04d}"
                                                 for i in range(6)]))).index
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=width, height=height, deviceScaleFactor=2,
                     mobile=touch)
        if touch:
            browser.send("Emulation.setTouchEmulationEnabled", page=True, enabled=True, maxTouchPoints=5)
        browser.open(page.as_uri())
        browser.click("button.export-picks")  # nothing picked here yet: the box says there is nothing to send
        seen = browser.js(EXPORT_BOX)
        assert seen["said"]["visible"] and seen["said"]["top"] >= 0 and seen["said"]["bottom"] <= seen["header"], seen
        browser.click("#shot-sc001_sh0010 button.pick")  # a pick made here: exported, downloaded
        browser.click("button.export-picks")
        browser.downloaded()
        seen = browser.js(EXPORT_BOX)
        assert seen["header"] <= 0.36 * height and seen["scrolled"] == 0, seen
        assert seen["said"]["visible"] and seen["said"]["top"] >= 0 and seen["said"]["bottom"] <= seen["header"], seen
        assert seen["text"]["visible"] and seen["text"]["top"] < seen["header"], seen
        assert browser.problems() == []
