"""`e` takes the keyboard up to **export picks** in the page's header; on a deep page that scrolls to the top, and the
next `j` went on from the first shot, not the one the director was on. Escape now goes back to that shot, and `j`
goes on from it (docs/review.md, "Keyboard")."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_pipe import CHROMIUM, Browser
from test_review_small_screens import film

from idcli.review.page import write_review
from idcli.review.runs import load_run

# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = pytest.mark.browser

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
IDS = [f"sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}" for i in range(40)]
FOCUS = "document.activeElement.id"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_review(load_run(film(tmp_path_factory.mktemp("film"), IDS))).index


def _to_shot_30(browser: Browser, page: Path) -> None:
    browser.send("Emulation.setDeviceMetricsOverride", page=True, width=1280, height=720, deviceScaleFactor=1,
                 mobile=False)
    browser.open(page.as_uri())
    for _ in range(29):  # from the first shot, in view as the page opens
        browser.press("j")
    assert browser.js(FOCUS) == f"shot-{IDS[29]}"
    browser.press("e")
    assert browser.js("document.activeElement.className") == "export-picks"
    assert browser.js("window.scrollY") < browser.js(f"document.getElementById('shot-{IDS[1]}').offsetTop")


@needs_chromium
def test_escape_after_e_goes_back_to_the_shot_and_j_goes_on_from_it(page: Path, tmp_path: Path) -> None:
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        _to_shot_30(browser, page)
        browser.key("Escape")
        assert browser.js(FOCUS) == f"shot-{IDS[29]}"
        assert browser.js(f"(function(){{var r=document.getElementById('shot-{IDS[29]}').getBoundingClientRect();"
                          "return r.bottom>0&&r.top<innerHeight;})()")  # in view again
        browser.press("j")
        assert browser.js(FOCUS) == f"shot-{IDS[30]}"
        assert browser.problems() == []


@needs_chromium
def test_j_from_export_picks_goes_on_from_the_shot_e_left(page: Path, tmp_path: Path) -> None:
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        _to_shot_30(browser, page)
        browser.press("j")
        assert browser.js(FOCUS) == f"shot-{IDS[30]}"
        browser.press("k")  # and on from there, as ever
        assert browser.js(FOCUS) == f"shot-{IDS[29]}"
        assert browser.problems() == []


@needs_chromium
def test_escape_from_the_exported_picks_text_goes_back_to_the_shot(page: Path, tmp_path: Path) -> None:
    """After `e` and Enter the director goes into the box that shows picks.json to copy it (its text selected); the
    page's keys are off in a text box, so Escape there did nothing and the shot was two Shift+Tabs and an Escape
    away. The box is read-only: Escape types nothing in it, and goes back to the shot as from the button."""
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=1280, height=720, deviceScaleFactor=1,
                     mobile=False)
        browser.open(page.as_uri())
        for _ in range(29):
            browser.press("j")
        browser.press("1")  # a pick, so the export has picks.json to show
        browser.press("e")
        browser.key("Enter")
        assert browser.js("(function(){var t=document.querySelector('.picks textarea');t.focus();t.select();"
                          "return !t.hidden&&t.value.indexOf('idcli-picks')>=0;})()")
        browser.key("Escape")
        assert browser.js(FOCUS) == f"shot-{IDS[29]}"
        browser.press("j")
        assert browser.js(FOCUS) == f"shot-{IDS[30]}"
        assert browser.problems() == []
