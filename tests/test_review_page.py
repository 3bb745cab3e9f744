"""The storyboard page: every committed take once, in shot order, links that resolve, damaged sidecars
reported and skipped, thumbnails made once, the contact sheet, and a real headless Chromium rendering it."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image
from text_search import search
from typer.testing import CliRunner

import idcli
from idcli.cli import app

pytest.importorskip("insightface", exc_type=ImportError)
# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")]
SHOT_ORDER = ["sh010", "sh020", "sh030", "sh040"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Page(HTMLParser):
    """What the tests read of the page: take articles in order, every link and image source."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.takes: list[str] = []
        self.shots: list[str] = []
        self.links: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "article" and "take" in (values.get("class") or "").split():
            self.takes.append(str(values["id"]).removeprefix("take-"))
        if tag == "section" and "shot" in (values.get("class") or "").split():
            self.shots.append(str(values["id"]).removeprefix("shot-"))
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(str(values[name]))


@pytest.fixture
def out(review_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(review_run, target)
    return target


def review(out: Path, *args: str):
    return CliRunner().invoke(app, ["review", str(out), *args])


def test_every_take_once_in_shot_order_with_links_that_resolve(out: Path) -> None:
    assert CliRunner().invoke(app, ["select", str(out), "sh020=2"]).exit_code == 0
    result = review(out)
    assert result.exit_code == 0, result.output
    index = out / "review" / "index.html"
    text = index.read_text("utf-8")
    page = Page(text)
    committed = [f"{r['shot_id']}_t{r['take']}" for r in idcli.read_results(out)]
    assert sorted(page.takes) == sorted(committed) and len(page.takes) == len(set(page.takes)) == 6
    assert page.shots == SHOT_ORDER  # the shot list's order; sh040 is listed, not rendered yet
    assert page.takes == ["sh010_t1", "sh010_t2", "sh020_t1", "sh020_t2", "sh030_t1", "sh030_t2"]
    assert "Not rendered yet" in text
    local = [link for link in page.links if not link.startswith("#")]
    assert len(local) > 6 * 4  # thumbnail, full image (twice), sidecar per take, contact sheet
    for link in local:
        assert not link.startswith(("http:", "https:", "//", "/")), link  # nothing online, nothing absolute
        assert (index.parent / unquote(link)).resolve().is_file(), link
    # prompts are text, never markup; the selected take is marked; QA shows as badges
    assert "&lt;b&gt;table&lt;/b&gt; &amp; laugh" in text and "<b>table" not in text
    assert 'class="take selected" id="take-sh020_t2"' in text
    assert 'class="badge ok">QA passed' in text


def test_a_corrupted_sidecar_is_reported_and_skipped(out: Path) -> None:
    (out / "sh010" / "sh010_t9.json").write_text('{"job_key": "idcli-job-v1:x", "shot_id": ', "utf-8")
    (out / "sh020" / "sh020_t7.json").write_text(json.dumps({"job_key": "k", "shot_id": "sh020", "take": 7,
                                                             "image": {"path": "sh020/sh020_t7.png"}}), "utf-8")
    result = review(out)
    assert result.exit_code == 2
    assert "sh010/sh010_t9.json: not valid JSON" in result.stderr
    assert "sh020/sh020_t7.json: its image sh020/sh020_t7.png is missing" in result.stderr
    text = (out / "review" / "index.html").read_text("utf-8")
    assert len(Page(text).takes) == 6  # every good take is still on the page
    assert "sh010_t9.json" in text  # and the page says what it skipped


def test_review_json_reports_the_page_the_sheets_and_the_counts(out: Path) -> None:
    result = review(out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # the one document: no progress line on stdout
    assert list(document)[:3] == ["ok", "exit_code", "error"] and document["ok"] is True
    assert document["out_dir"] == str(out.absolute())
    index = out / "review" / "index.html"
    assert document["page"] == {"path": "review/index.html", "abs_path": str(index.absolute())} and index.is_file()
    assert document["contact_sheets"] == [{"path": "review/contact-sheet.png",
                                           "abs_path": str((out / "review" / "contact-sheet.png").absolute())}]
    flagged = sum(1 for r in idcli.read_results(out) if (r.get("qa") or {}).get("flags"))
    assert document["counts"] == {"shots": 4, "takes": 6, "thumbnails_made": 6, "flagged": flagged, "selected": 0}
    assert CliRunner().invoke(app, ["select", str(out), "sh010=2", "sh020=1"]).exit_code == 0
    again = json.loads(review(out, "--json").stdout)
    assert again["counts"] == {**document["counts"], "thumbnails_made": 0, "selected": 2}


def test_review_json_with_a_damaged_sidecar_exits_2_names_it_and_still_writes_the_page(out: Path) -> None:
    (out / "sh010" / "sh010_t9.json").write_text('{"job_key": "idcli-job-v1:x", "shot_id": ', "utf-8")
    result = review(out, "--json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["exit_code"] == 2 and document["error"]["type"] == "InputError"
    assert [p["file"] for p in document["error"]["problems"]] == ["sh010/sh010_t9.json"]
    assert document["counts"]["takes"] == 6 and Path(document["page"]["abs_path"]).is_file()
    assert "sh010/sh010_t9.json: not valid JSON" in result.stderr


def test_a_take_beyond_the_shots_takes_is_marked_not_pickable(out: Path) -> None:
    """sh010 lowered to `takes: 1` and rendered: its take 2 is kept and shown, but idcli select refuses it, so the
    page marks it (data-orphan: its script makes no pick button there) and leaves take 1 and the shot pickable."""
    manifest_path = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    manifest["takes"] = [t for t in manifest["takes"] if t != ["sh010", 2]]
    manifest["shots"] = [{**s, "takes": 1} if s["id"] == "sh010" else s for s in manifest["shots"]]
    manifest_path.write_text(json.dumps(manifest) + "\n", "utf-8")
    assert review(out).exit_code == 0
    text = (out / "review" / "index.html").read_text("utf-8")
    orphans = re.findall(r'<article [^>]*id="take-([^"]+)"[^>]*data-orphan="1"', text)
    assert orphans == ["sh010_t2"]
    assert "not pickable" in text and not re.search(r'<section [^>]*id="shot-sh010"[^>]*data-orphan', text)


def test_thumbnails_are_made_once_and_the_contact_sheet_shows_each_shot(out: Path) -> None:
    first = review(out)
    assert first.exit_code == 0 and "6 new thumbnails" in first.stdout
    thumbs = sorted((out / "review" / "thumbs").iterdir())
    stamps = [p.stat().st_mtime_ns for p in thumbs]
    second = review(out)
    assert second.exit_code == 0 and "0 new thumbnails" in second.stdout
    assert [p.stat().st_mtime_ns for p in sorted((out / "review" / "thumbs").iterdir())] == stamps
    with Image.open(out / "review" / "contact-sheet.png") as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    # four shots in one row of four cells; the cells of rendered shots hold their (chosen) take
    assert pixels.shape[1] == 4 * (256 + 8) + 8
    assert pixels.std() > 20


def test_a_retouched_image_gets_a_new_thumbnail(out: Path) -> None:
    # An artist paints over a take by hand (idcli never renders over it without --force): the page must
    # show the picture as it is now, not the thumbnail made before the retouch.
    assert review(out).exit_code == 0
    image = out / "sh020" / "sh020_t1.png"
    with Image.open(image) as picture:
        retouched = picture.convert("RGB")
    retouched.paste((255, 255, 255), (0, 0, retouched.width, retouched.height))
    retouched.save(image)
    again = review(out)
    assert again.exit_code == 0 and "1 new thumbnail" in again.stdout
    page = Page((out / "review" / "index.html").read_text("utf-8"))
    (thumb,) = [link for link in page.links if "thumbs/sh020_t1-" in link]
    with Image.open(out / "review" / unquote(thumb)) as shown:
        assert np.asarray(shown.convert("L")).min() > 240  # the white retouch, not the old picture
    assert len(list((out / "review" / "thumbs").glob("sh020_t1-*.jpg"))) == 1  # the stale one removed


def test_a_two_shot_shows_each_characters_expression(out: Path) -> None:
    # `expressions: {mara: worry, theo: hope}` is recorded per character (identity[].expression), the
    # shot-level `expression` is null: the page must still tell the director what was scripted.
    sidecar = out / "sh010" / "sh010_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    assert record["expression"] is None and [c["name"] for c in record["identity"]] == ["mara", "theo"]
    for character, label in zip(record["identity"], ["worry", "hope"], strict=True):
        character["expression"] = {"label": label, "intensity": 0.5}
    sidecar.write_text(json.dumps(record), "utf-8")
    assert review(out).exit_code == 0
    text = (out / "review" / "index.html").read_text("utf-8")
    article = text[text.index('id="take-sh010_t1"'):text.index('id="take-sh010_t2"')]
    assert "<dt>expression</dt><dd>mara: worry, theo: hope</dd>" in article


def test_a_group_shot_shows_the_characters_whose_expression_is_not_the_shots(out: Path) -> None:
    # `expression: joy` with `expressions: {theo: anger}` records joy as the shot's and each character's own: the
    # page said "joy" alone, so the director never saw that theo is scripted angry.
    sidecar = out / "sh010" / "sh010_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    record["expression"] = {"label": "joy", "intensity": 0.7}
    for character, label in zip(record["identity"], ["joy", "anger"], strict=True):
        character["expression"] = {"label": label, "intensity": 0.7}
    sidecar.write_text(json.dumps(record), "utf-8")
    assert review(out).exit_code == 0
    text = (out / "review" / "index.html").read_text("utf-8")
    article = text[text.index('id="take-sh010_t1"'):text.index('id="take-sh010_t2"')]
    assert "<dt>expression</dt><dd>joy (theo: anger)</dd>" in article
    # When every character has the shot's expression, the shot's alone is said.
    record["identity"][1]["expression"] = {"label": "joy", "intensity": 0.7}
    sidecar.write_text(json.dumps(record), "utf-8")
    assert review(out).exit_code == 0
    text = (out / "review" / "index.html").read_text("utf-8")
    article = text[text.index('id="take-sh010_t1"'):text.index('id="take-sh010_t2"')]
    assert "<dt>expression</dt><dd>joy</dd>" in article


def test_open_says_where_the_page_is_when_no_browser_opens(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--open` on a render box over ssh: no browser. Say so, with the page's URL to open elsewhere.
    import webbrowser

    opened: list[str] = []

    def no_browser(url: str, *args: object, **kwargs: object) -> bool:
        opened.append(url)
        return False  # what webbrowser.open answers where no browser opens

    monkeypatch.setattr(webbrowser, "open", no_browser)
    result = review(out, "--open")
    assert result.exit_code == 0 and opened == [(out / "review" / "index.html").resolve().as_uri()]
    assert "no browser could be opened" in result.stderr and opened[0] in result.stderr


def test_a_folder_without_renders_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = review(tmp_path / "empty")
    assert result.exit_code == 2 and "no committed renders found" in result.stderr
    assert review(tmp_path / "nowhere").exit_code == 2


# -- in a real browser ---------------------------------------------------------------------------

# Injected into a copy of the page (the page itself ships no test hooks): records script errors,
# console errors and resources that failed to load into the DOM that --dump-dom prints.
RECORDER = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__errors.push(t.tagName ? 'failed to load ' + (t.src || t.href) : 'error: ' + e.message);
  document.documentElement.setAttribute('data-errors', JSON.stringify(window.__errors));
}, true);
var _error = console.error;
console.error = function () { window.__errors.push('console: ' + Array.from(arguments).join(' '));
  document.documentElement.setAttribute('data-errors', JSON.stringify(window.__errors));
  _error.apply(console, arguments); };
window.addEventListener('load', function () {
  var broken = Array.from(document.images).filter(function (i) { return i.complete && i.naturalWidth === 0; });
  document.documentElement.setAttribute('data-loaded', String(document.images.length - broken.length));
  document.documentElement.setAttribute('data-broken', String(broken.length));
  // the page's keys: j, j, k moves the focus to the second shot
  ['j', 'j', 'k'].forEach(function (key) {
    document.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true}));
  });
  document.documentElement.setAttribute('data-focus', document.activeElement.id);
});
</script>"""


def chromium(args: list[str], page: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "the tests that call this skip without a Chromium"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1280,900", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_page_renders_in_headless_chromium_without_errors(out: Path, tmp_path: Path) -> None:
    assert review(out).exit_code == 0
    index = out / "review" / "index.html"
    probe = index.with_name("probe.html")  # same folder, so every relative link is the page's own
    probe.write_text(index.read_text("utf-8").replace("<head>", "<head>" + RECORDER, 1), "utf-8")
    shot = tmp_path / "screen.png"
    screenshot = chromium([f"--screenshot={shot}"], index, tmp_path)
    assert shot.is_file(), screenshot.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(np.float32)
    assert pixels.shape[:2] == (900, 1280)
    assert pixels.std() > 20  # not blank: text, thumbnails and badges on the dark background
    assert "Uncaught" not in screenshot.stderr
    dom = chromium(["--dump-dom", "--virtual-time-budget=5000"], probe, tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    root = search(r"<html[^>]*>", dom.stdout).group(0)
    assert "data-errors" not in root, root
    assert 'data-broken="0"' in root and 'data-loaded="6"' in root  # the six thumbnails loaded
    assert 'data-focus="shot-sh020"' in root  # keyboard: j, j, k
    assert dom.stdout.count('<article class="take') == 6
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "probe.html" in line]
    assert console_errors == []
    # the recorder does catch what it looks for: a broken image and a script error (the page's
    # Content-Security-Policy taken out, which would block the injected script)
    csp = search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', probe.read_text("utf-8")).group(0)
    broken = index.with_name("broken.html")
    broken.write_text(probe.read_text("utf-8").replace(csp, "", 1).replace(
        "</main>", '</main><img src="nothing-here.png" alt=""><script>undefinedCall();</script>', 1), "utf-8")
    control = chromium(["--dump-dom", "--virtual-time-budget=5000"], broken, tmp_path)
    root = search(r"<html[^>]*>", control.stdout).group(0)
    assert "failed to load" in root and "undefinedCall" in root
    # and with it, markup that got past the escaping (a script, an event handler) runs nothing. (A fresh profile:
    # the page reopens at the shot last viewed in this folder, and j, j, k are to start from the top.)
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
    hostile = index.with_name("hostile.html")
    hostile.write_text(probe.read_text("utf-8").replace(
        "</main>", "</main><script>document.documentElement.dataset.pwned='script'</script>"
        "<img src=\"nothing-here.png\" alt=\"\" onerror=\"document.documentElement.dataset.pwned='onerror'\">", 1),
        "utf-8")
    attacked = chromium(["--dump-dom", "--virtual-time-budget=5000"], hostile, tmp_path)
    root = search(r"<html[^>]*>", attacked.stdout).group(0)
    assert "data-pwned" not in root and 'data-focus="shot-sh020"' in root, root  # the page's own script runs


def test_the_mask_strip_is_shown_when_the_take_has_one(out: Path) -> None:
    # as `render --save-masks` leaves it: a strip PNG beside the image, named in the sidecar's fusion
    sidecar = out / "sh020" / "sh020_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    shutil.copyfile(out / "sh020" / "sh020_t1.png", out / "sh020" / "sh020_t1.mask.png")
    record["fusion"] = {**(record.get("fusion") or {}), "mask_strip": "sh020/sh020_t1.mask.png"}
    sidecar.write_text(json.dumps(record), "utf-8")
    assert review(out).exit_code == 0
    text = (out / "review" / "index.html").read_text("utf-8")
    assert text.count('class="strip" href="../sh020/sh020_t1.mask.png"') == 1
    assert text.count('class="strip"') == 1


def test_a_damaged_selects_file_costs_the_selection_not_the_page(out: Path) -> None:
    (out / "selects.json").write_text("[1, 2", "utf-8")
    result = review(out)
    assert result.exit_code == 2 and "selects.json: damaged" in result.stderr
    assert len(Page((out / "review" / "index.html").read_text("utf-8")).takes) == 6


def test_contact_sheet_labels_stay_inside_their_cells(tmp_path: Path) -> None:
    # Shot ids may be 64 characters (a studio's naming scheme); four flags make a long line too. Each
    # label is cut to its cell, so the gutters between cells stay background and no label runs into
    # its neighbour's.
    from idcli.review.contact_sheet import SHEET_CELL, contact_sheet_png
    from idcli.review.runs import Run, Shot, Take

    def take(shot_id: str) -> Take:
        return Take(shot_id, 1, "k", 1, "p", (), None, None, None, f"{shot_id}/{shot_id}_t1.png",
                    f"{shot_id}/{shot_id}_t1.json", 64, 64, "0" * 64, None,
                    qa={"flags": ["no_face", "missing_character", "low_identity", "leakage"]})

    ids = ["sc0001_sh0010_establishing_lighthouse_exterior_dusk_wide_v002",
           "sc0001_sh0020_interior_keeper_room_lamp_flicker_closeup_v003", "a", "b"]
    shots = [Shot(i, [take(i)], None) for i in ids]
    shots[0].selected = shots[0].takes[0]
    png = contact_sheet_png(Run(tmp_path, shots, None), {})
    with Image.open(io.BytesIO(png)) as sheet:
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    pad = 8
    for column in range(3):  # the gutter right of each of the first three cells
        left = pad + column * (SHEET_CELL + pad) + SHEET_CELL
        gutter = pixels[:, left:left + pad]
        assert (np.abs(gutter - np.array([22, 22, 26])).max(axis=2) == 0).all(), f"a label crosses gutter {column}"


def test_random_weight_takes_are_marked_on_the_page(out: Path) -> None:
    """The tiny presets' images are noise ("not for review", render says): the page a director opens says so on
    every such take and in its header; a take rendered with real weights has no such mark."""
    import json

    sidecar = out / "sh030" / "sh030_t2.json"
    record = json.loads(sidecar.read_text("utf-8"))
    record["model"]["random_weights"] = False  # as if rendered with real weights and real face models
    for identity in record.get("identity") or []:
        identity["random_face_models"] = False
    sidecar.write_text(json.dumps(record), "utf-8")
    result = review(out)
    assert result.exit_code == 0, result.output
    text = (out / "review" / "index.html").read_text("utf-8")
    assert text.count('class="badge warn random">random weights: not for review') == 5
    assert "5 of 6 takes were rendered with random-weight test models" in text
    marked = text.split('id="take-sh030_t2"', 1)[1].split("</article>", 1)[0]
    assert "random weights" not in marked
