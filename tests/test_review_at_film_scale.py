"""The storyboard page of a whole film, as a director opens it on a laptop: each shot's board picture loaded with
the page (so the boards print), the other takes' thumbnails loaded as they are scrolled to and keeping their place,
an index that lists scenes rather than filling the first screen with every shot, and a jump to a scene. DOM facts,
in the HTML and in headless Chromium; never wall-clock time (docs/performance.md, "At film scale", has the measured
figures)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from test_film_scale import SHOTS, render_film
from text_search import search

import idcli
import idcli.review.selects
from idcli.review.page import write_review
from idcli.review.page_nav import NAV_BLOCK, NAV_FLAT_SHOTS, scene_groups
from idcli.review.runs import Shot, load_run

# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SCENES = (SHOTS + 19) // 20  # film_text puts 20 shots in a scene: sc001 … sc008
TAKES = 2  # a film's shots have takes to choose from (2,000 shots had 4,729)


@pytest.fixture(scope="module")
def film_page(tmp_path_factory) -> Path:
    """The review page of a rendered film of SHOTS shots of TAKES takes in SCENES scenes."""
    _shots, out = render_film(tmp_path_factory.mktemp("film-page"), takes=TAKES)
    idcli.review.selects.select(out, ["sc002_sh0010=1", "sc002_sh0030=1"])  # two picks in scene 2
    return write_review(load_run(out)).index


class Tags(HTMLParser):
    """Every start tag of the page with its attributes, in order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_only_the_boards_thumbnails_load_with_the_page_each_with_the_size_of_its_file(film_page: Path) -> None:
    # Without a size, an image not loaded yet is a line of alt text: the page jumps as thumbnails arrive. Each shot's
    # board picture loads with the page (a browser prints only what it has loaded), the other takes' lazily.
    tags = Tags(film_page.read_text("utf-8")).tags
    images, board = [], False
    for tag, attrs in tags:
        if tag == "article":
            board = attrs.get("data-board") == "1"
        elif tag == "img" and str(attrs.get("src", "")).startswith("thumbs/"):
            images.append((board, attrs))
    assert len(images) == SHOTS * TAKES and sum(board for board, _ in images) == SHOTS
    for board, attrs in images:
        assert attrs.get("loading") == (None if board else "lazy"), attrs
        with Image.open(film_page.parent / str(attrs["src"])) as thumbnail:
            assert (attrs.get("width"), attrs.get("height")) == (str(thumbnail.width), str(thumbnail.height))


def test_a_films_index_lists_its_scenes_each_opening_onto_its_shots(film_page: Path) -> None:
    text = film_page.read_text("utf-8")
    nav = search(r"<nav[^>]*>.*?</nav>", text, re.S).group(0)
    # one closed disclosure per scene, in order, each holding exactly its shots' links
    groups = re.findall(r'<details><summary><a href="#(scene-[^"]+)">([^<]+)</a>(.*?)</details>', nav, re.S)
    assert [label for _, label, _ in groups] == [f"sc{n:03d}" for n in range(1, SCENES + 1)]
    assert "<details open" not in nav
    listed = []
    for anchor, label, body in groups:
        shots = re.findall(r'<li><a href="#shot-([^"]+)">', body)
        assert shots and all(s.startswith(label + "_") for s in shots)
        listed += shots
        # the scene's link lands just before its first shot in the page
        target = text.index(f'id="{anchor}"')
        assert text.index("<section", target) == text.index(f'<section class="shot" id="shot-{shots[0]}"')
    # a scene's picks are counted on its line: which scenes still wait for a pick
    picked = [re.search(r'class="picked"[^>]*>✓(\d+)<', body) for _, _, body in groups]
    assert [m and int(m.group(1)) for m in picked] == [None, 2] + [None] * (SCENES - 2)
    sections = re.findall(r'<section class="shot" id="shot-([^"]+)"', text)
    assert listed == sections and len(sections) == SHOTS  # every shot once, in shot order


def _shots(*ids: str) -> list[Shot]:
    return [Shot(shot_id, [], entry=object()) for shot_id in ids]  # type: ignore[arg-type]


def test_index_groups_follow_the_shot_ids_or_fall_back_to_numbered_blocks() -> None:
    few = _shots(*[f"sc1_sh{i}" for i in range(NAV_FLAT_SHOTS)])
    assert scene_groups(few) == []  # a short run lists every shot, as before
    scenes = _shots(*[f"sc{i // 30}_sh{i}" for i in range(90)])
    assert scene_groups(scenes) == [("sc0", 0, 30), ("sc1", 30, 30), ("sc2", 60, 30)]
    # ids that name no scene (no prefix, or one prefix per shot) are cut into numbered blocks
    for ids in ([f"shot{i}" for i in range(60)], [f"a{i}_b" for i in range(60)]):
        groups = scene_groups(_shots(*ids))
        assert [(start, count) for _, start, count in groups] == [(0, NAV_BLOCK), (NAV_BLOCK, NAV_BLOCK),
                                                                  (2 * NAV_BLOCK, 60 - 2 * NAV_BLOCK)]
        assert groups[0][0] == f"1–{NAV_BLOCK}"
    # shots no longer in the shot list come last as a group of their own
    orphans = [*scenes, Shot("sc0_sh999", [], entry=None)]
    assert scene_groups(orphans)[-1] == ("not in the shot list", 90, 1)


# Injected into a copy of the page before its Content-Security-Policy (the page ships no test hooks).
RECORDER = """<script>
window.addEventListener('load', function () { setTimeout(function () {  // after the scroll to a #fragment
  var nav = document.querySelector('nav').getBoundingClientRect();
  var first = document.querySelector('section.shot').getBoundingClientRect();
  var scene = document.getElementById('scene-sc005');
  var loaded = Array.prototype.filter.call(document.images, function (i) { return i.naturalWidth > 0; });
  var waiting = Array.prototype.filter.call(document.images, function (i) { return i.naturalWidth === 0; });
  var boards = loaded.filter(function (i) { return i.closest('article.take[data-board]'); });
  var before = waiting.length ? waiting[waiting.length - 1].getBoundingClientRect().height : null;
  var sceneTop = location.hash ? scene.getBoundingClientRect().top : null;
  var scenes = document.querySelectorAll('nav details');
  scenes[1].open = true;  // a scene opened onto its shots: they wrap, never widening the page
  var wide = document.documentElement.scrollWidth - window.innerWidth;
  var listed = scenes[1].querySelectorAll('a').length;
  scenes[1].open = false;
  ['j', 'j', 'k'].forEach(function (key) {
    document.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true})); });
  document.documentElement.setAttribute('data-facts', JSON.stringify({
    nav_height: nav.height, first_shot_top: first.top, images: document.images.length,
    loaded: loaded.length, boards_loaded: boards.length, waiting_image_height: before,
    scene_top: sceneTop,
    focus: document.activeElement.id, open_scene_overflow: wide, open_scene_links: listed}));
}, 1500); });
</script>"""


def _open(page: Path, profile: Path, fragment: str = "") -> dict:
    assert CHROMIUM, "the tests that call this skip without a Chromium"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--virtual-time-budget=10000", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1280,900",
         # headless Chromium turns lazy loading off; a desktop browser has it on. Reduced motion: a smooth
         # scroll to a #fragment never advances in headless virtual time (the page scrolls smoothly otherwise)
         "--blink-settings=lazyLoadEnabled=true", "--force-prefers-reduced-motion",
         "--dump-dom", page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'data-facts="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_a_film_opens_on_its_first_shots_fetching_only_the_thumbnails_in_reach(film_page: Path,
                                                                               tmp_path: Path) -> None:
    probe = film_page.with_name("probe-film.html")  # same folder: every relative link is the page's own
    probe.write_text(film_page.read_text("utf-8").replace("<head>", "<head>" + RECORDER, 1), "utf-8")
    facts = _open(probe, tmp_path / "profile")
    assert facts["images"] == SHOTS * TAKES
    assert facts["nav_height"] < 300, facts  # the index is a few lines, not the first screen
    assert facts["first_shot_top"] < 900, facts  # the first shot shows without scrolling
    assert facts["waiting_image_height"] > 0, facts  # a thumbnail not loaded yet already holds its place
    # every board's picture, and of the other takes those in reach: the rest wait until scrolled to
    assert facts["boards_loaded"] == SHOTS, facts
    assert facts["loaded"] - SHOTS < SHOTS * (TAKES - 1) // 3, facts
    assert facts["focus"] == "shot-sc001_sh0020", facts  # j, j, k still move between shots
    assert facts["open_scene_links"] == 1 + 20 and facts["open_scene_overflow"] <= 0, facts
    # a scene's link (index.html#scene-sc005, from the index or from a note) opens at that scene
    jumped = _open(probe, tmp_path / "profile", "#scene-sc005")
    assert jumped["scene_top"] is not None and abs(jumped["scene_top"]) < 50, jumped


def _listed(*ids: str) -> list[Shot]:
    """Shots of a shot list, not rendered yet."""
    from idcli.review.order import ShotEntry

    return [Shot(shot_id, [], entry=ShotEntry(shot_id, 1, 2.0)) for shot_id in ids]


def _page(shots: list[Shot]) -> str:
    """The page of ``shots`` (no takes: the index and the shot sections only)."""
    from idcli.review.page import page_html
    from idcli.review.runs import Run

    return page_html(Run(Path("out"), shots, None), {}, [])


def test_a_scene_the_shot_list_comes_back_to_gets_a_link_of_its_own() -> None:
    # Cross-cutting: sc1, sc2, then sc1 again. Each run of the scene is a group of the index; one id per
    # group, or the second group's link would land on the first (and the page's ids would not be unique).
    ids = [f"sc1_a{i}" for i in range(20)] + [f"sc2_b{i}" for i in range(10)] + [f"sc1_c{i}" for i in range(20)]
    shots = _listed(*ids)
    assert [label for label, _, _ in scene_groups(shots)] == ["sc1", "sc2", "sc1"]
    text = _page(shots)
    page = [str(attrs["id"]) for _, attrs in Tags(text).tags if "id" in attrs]
    assert len(page) == len(set(page)), sorted({i for i in page if page.count(i) > 1})
    nav = search(r"<nav[^>]*>.*?</nav>", text, re.S).group(0)
    for anchor in re.findall(r'<summary><a href="#([^"]+)"', nav):
        target = text.index(f'id="{anchor}"')
        first = search(r'<li><a href="#shot-([^"]+)"', nav[nav.index(f'href="#{anchor}"'):]).group(1)
        assert text.index("<section", target) == text.index(f'<section class="shot" id="shot-{first}"'), anchor


def test_a_folder_without_its_shot_list_is_indexed_by_scene_not_as_one_group_of_orphans() -> None:
    # No run manifest and no --shots (an older folder, one copied without .idcli/): every shot has no entry,
    # ordered by id. There is no shot list for them to be missing from; one group of 2,000 links would be the
    # index a film cannot use.
    shots = [Shot(f"sc{i // 30}_sh{i:03d}", [], entry=None) for i in range(90)]
    assert scene_groups(shots) == [("sc0", 0, 30), ("sc1", 30, 30), ("sc2", 60, 30)]
    numbered = scene_groups([Shot(f"shot{i:02d}", [], entry=None) for i in range(41)])
    assert [(start, count) for _, start, count in numbered] == [(0, NAV_BLOCK), (NAV_BLOCK, 41 - NAV_BLOCK)]


def test_the_index_counts_what_it_lists_scenes_or_numbered_groups() -> None:
    nav = search(r'<p class="count">([^<]*)</p>', _page(_listed(*[f"shot{i:02d}" for i in range(60)]))).group(1)
    assert nav.startswith("3 groups of shots ·"), nav  # 1–25, 26–50, 51–60: no scene among them
    nav = search(r'<p class="count">([^<]*)</p>', _page(_listed(*[f"sc1_sh{i:02d}" for i in range(41)]))).group(1)
    assert nav.startswith("1 scene ·"), nav


def test_the_index_legend_says_the_marks_only_a_tooltip_explained_and_only_those_it_holds() -> None:
    """A finger reaches no tooltip: the header's line (shown on touch screens) says what the index's titled marks mean,
    those the index holds and no others (docs/review.md, "On a touch screen alone")."""
    from types import SimpleNamespace

    from idcli.review.page_nav import index_legend

    def shot(shot_id: str, flags: list[str], listed: bool = True, picked: int | None = None) -> Shot:
        return Shot(shot_id, [SimpleNamespace(flags=flags)], entry=object() if listed else None,  # type: ignore[list-item, arg-type]
                    selected=SimpleNamespace(take=picked) if picked else None)  # type: ignore[arg-type]

    plain, flagged = shot("sc01_sh010", []), shot("sc01_sh020", ["no_face"])
    out = shot("sc01_sh030", [], listed=False, picked=2)  # picked, then taken out of the shot list
    assert index_legend([plain], scenes=False, listed=True) == ""
    assert index_legend([plain, flagged], scenes=False, listed=True) == (
        '<span class="legend">In the index: ● every take of the shot flagged · </span>')
    assert index_legend([plain, out], scenes=False, listed=True) == (
        '<span class="legend">In the index: out: picked, but not in the shot list (left out of the animatic) · </span>')
    assert index_legend([plain, out], scenes=False, listed=False) == ""  # no shot list known: no shot is out of it
    assert index_legend([plain, flagged], scenes=True, listed=True) == (
        '<span class="legend">In the index: ●3 shots with every take flagged · ✓2 shots picked · ● every take of the '
        'shot flagged · </span>')
    assert index_legend([plain], scenes=True, listed=True) == (
        '<span class="legend">In the index: ✓2 shots picked · </span>')
