"""Printed storyboards: the review page printed to PDF by headless Chromium, as a director prints it from the
browser, and the PDF read back (pages, their size, the images on each, the text in order). One small film of
14 shots prints once per module; each test reads a different fact of it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_film_scale import flat_engine_factory

import idcli
import idcli.review.selects
from idcli.review.page import write_review
from idcli.review.print_boards import css_string
from idcli.review.runs import load_run

# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = pytest.mark.browser

pypdf = pytest.importorskip("pypdf", reason="pypdf reads the printed PDF (the test extra installs it)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SHOTS = 14
TWO_TAKES = {2, 5, 11}  # shots (0-based) rendered with two takes; shot 5's first take is picked
FLAGGED_FIRST = 2  # its take 1 carries a QA flag: its board shows take 2, the first take QA passed
LONG = 4  # this shot's prompt runs over several lines: wrapped on its board, never cut
LONG_TAIL = "and the gulls over the breakwater keep circling until the very last light"
FLAGGED = 8  # its sidecar carries a QA verdict with a flag


def shot_id(i: int) -> str:
    return f"sc{i // 6 + 1:02d}_sh{i * 10 + 10:03d}"


def film_text() -> str:
    lines = ["version: 1", "project: boards", "model: {preset: tiny-sd}",
             "defaults: {size: 96x64, steps: 1, guidance: 1.0}", "shots:"]
    for i in range(SHOTS):
        prompt = f"a lighthouse at dusk, shot {i}"
        if i == LONG:
            prompt += ", the sea rising against the rocks, rain in the lamp's beam, " + LONG_TAIL
        extra = ", takes: 2" if i in TWO_TAKES else ""
        extra += ", framing: close-up" if i == 0 else ""
        lines.append(f'  - {{id: {shot_id(i)}, prompt: "{prompt}", duration: {i % 4 + 2}{extra}}}')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> tuple[Path, Path, float]:
    """(the page, its PDF, seconds Chromium took to print it)."""
    import time

    folder = tmp_path_factory.mktemp("boards")
    (folder / "boards.yaml").write_text(film_text(), "utf-8")
    out = folder / "out"
    report = idcli.render(folder / "boards.yaml", out, device="cpu", engine_factory=flat_engine_factory, qa=False)
    assert report.rendered == SHOTS + len(TWO_TAKES)
    idcli.review.selects.select(out, [f"{shot_id(5)}=1"])
    # a QA verdict as `idcli qa` writes it into the sidecar (the flat engine's images hold no faces to check)
    for flagged in (FLAGGED, FLAGGED_FIRST):
        sidecar = out / shot_id(flagged) / f"{shot_id(flagged)}_t1.json"
        record = json.loads(sidecar.read_text("utf-8"))
        record["qa"] = {"version": 1, "cast": ["mara"], "faces": [], "characters": {"mara": {"face": None}},
                        "leakage": None, "flags": ["no_face"]}
        sidecar.write_text(json.dumps(record), "utf-8")
    page = write_review(load_run(out)).index
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    pdf = folder / "boards.pdf"
    started = time.monotonic()
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={folder / 'profile'}",
         # Chromium's own header and footer (title, file URL) left on, as in the print dialog: the page's @page
         # boxes replace them. Lazy loading on, as in a desktop browser (headless turns it off): boards still print.
         "--blink-settings=lazyLoadEnabled=true", f"--print-to-pdf={pdf}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    seconds = time.monotonic() - started
    assert done.returncode == 0 and pdf.is_file(), done.stderr[-2000:]
    return page, pdf, seconds


def _pages(pdf: Path) -> list:
    return list(pypdf.PdfReader(pdf).pages)


def test_six_boards_to_a_landscape_page_each_with_its_picture(printed) -> None:
    pages = _pages(printed[1])
    assert len(pages) == 3  # 14 boards: 6 + 6 + 2
    for page in pages:
        assert float(page.mediabox.width) > float(page.mediabox.height)  # landscape, on the printer's paper
    # one picture per board (the board's take only; no mask strip, no other take), lazy loading or not
    assert [len(page.images) for page in pages] == [6, 6, 2]


def test_every_shot_once_in_shot_order_with_project_and_page_numbers(printed) -> None:
    pages = _pages(printed[1])
    text = "\n".join(page.extract_text() for page in pages)
    ids = re.findall(r"sc\d\d_sh\d{3}", text)
    assert ids == [shot_id(i) for i in range(SHOTS)]
    for number, page in enumerate(pages, 1):
        words = page.extract_text()
        assert "boards" in words and f"page {number} of {len(pages)}" in words  # the @page margin boxes
        assert "file:" not in words and "idcli review" not in words  # not Chromium's own (URL, page title)


def test_a_board_holds_its_take_and_facts_and_the_prompt_is_wrapped_not_cut(printed) -> None:
    text = "\n".join(page.extract_text() for page in _pages(printed[1]))
    boards = re.split(r"\d+\. (?=sc\d\d_sh\d{3})", text)[1:]
    assert len(boards) == SHOTS
    for i, board in enumerate(boards):
        assert board.startswith(f"{shot_id(i)} {i % 4 + 2} s")  # shot id, then its duration
        for label in ("prompt", "characters", "expression", "framing"):
            assert label in board, (i, board)
        # the picked take, else the first take QA did not flag: shot 5's picked take 1, shot 2's take 2 (its
        # take 1 flagged), shot 11's take 1 (neither flagged)
        expected = "Take 2" if i == FLAGGED_FIRST else "Take 1 selected" if i == 5 else "Take 1"
        assert re.search(rf"^{expected}\b", board, re.M), (i, board)
        assert board.count("Take ") == 1  # the other take of a two-take shot stays off paper
    assert "close-up" in boards[0]
    assert " ".join(boards[LONG].split()).count(LONG_TAIL) == 1  # wrapped over lines, every word there
    assert "no face" in boards[FLAGGED] and "no face" not in boards[FLAGGED - 1]  # the QA flag's mark


def test_random_weight_renders_stay_marked_on_paper(printed) -> None:
    pages = _pages(printed[1])
    text = "\n".join(page.extract_text() for page in pages)
    # every board (tiny-sd renders noise) and every page's footer
    assert text.count("random weights: not for review") == SHOTS
    for page in pages:
        assert "random-weight test models" in " ".join(page.extract_text().split())


def test_no_screen_chrome_on_paper(printed) -> None:
    text = "\n".join(page.extract_text() for page in _pages(printed[1]))
    for chrome in ("Skip to the shots", "Keys", "contact sheet", "full image", "sidecar", "Faces found", "Leakage",
                   "No identity QA", "No face found", "seed", "method", "flagged by identity QA"):
        assert chrome not in text, chrome


def test_printing_changes_nothing_on_screen(printed) -> None:
    page = printed[0].read_text("utf-8")
    # The print rules live in @page and @media print only: the screen's stylesheet is the one before them.
    style = page[page.index("<style>") + len("<style>"):page.index("</style>")]
    screen, _, printing = style.partition("\n@page{")
    assert printing and "@media print{" in printing
    # the screen's own media rules (reduced motion; a short screen's header, docs/review.md) never apply on paper
    media = re.findall(r"@media[^{]*", screen)
    assert media and all(m == "@media (prefers-reduced-motion:no-preference)" or m.startswith("@media screen and ")
                         for m in media), media
    # one board per shot, and it is the take that stands for the shot (Shot.chosen)
    run = load_run(printed[0].parents[1])
    marked = re.findall(r'<article class="take[^"]*" id="take-([^"]+)" data-take="\d+" data-board="1"', page)
    assert marked == [shot.chosen and shot.chosen.stem for shot in run.shots]


def test_css_strings_cannot_end_the_string_or_the_style_element() -> None:
    written = css_string('sc12 "final" </style><script>alert(1)</script> \\ é')
    assert written.startswith('"') and written.endswith('"')
    inner = written[1:-1]
    assert '"' not in inner and "<" not in inner and "\n" not in inner
    assert re.fullmatch(r'(?:[A-Za-z0-9 ]|\\[0-9a-f]{6})*', inner)
    assert css_string("Lighthouse 2") == '"Lighthouse 2"'


def test_only_the_boards_pictures_load_with_the_page(printed) -> None:
    # The board's picture loads with the page so that it prints (Chromium 150 printed no lazy picture not yet scrolled
    # to); every other take's waits until scrolled to, as on a 2,000-shot page from a synced folder.
    page = printed[0].read_text("utf-8")
    takes = re.findall(r'<article class="take[^"]*" id="take-[^"]+" data-take="\d+"( data-board="1")?.*?<img ([^>]*)>',
                       page, re.S)
    assert len(takes) == SHOTS + len(TWO_TAKES)
    assert {(bool(board), 'loading="lazy"' in img) for board, img in takes} == {(True, False), (False, True)}


def test_a_pick_kept_from_an_earlier_visit_prints_its_picture(printed, tmp_path: Path) -> None:
    # The director picked shot 12's take 2 yesterday; today the page opens at its first shot (a link to it) and is
    # printed at once. The picked take's picture, never scrolled to today, loaded lazily: its board printed empty.
    import base64
    import io

    from browser_pipe import Browser

    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    picked = shot_id(11)
    button = f"document.querySelector(\"#shot-{picked} article[data-take='2'] button.pick\")"
    with Browser(tmp_path / "profile", tmp_path / "downloads", flags=("--blink-settings=lazyLoadEnabled=true",)) as b:
        b.open(printed[0].as_uri())
        b.js(button + ".click()")
        b.wait_until(button + ".getAttribute('aria-pressed')", "true", "the take picked")
        # A new visit: a query makes it another URL, so the page loads again (the same URL with only a #fragment
        # scrolls, loading nothing; through about:blank, that page's late load event ended the wait for this one)
        b.open(f"{printed[0].as_uri()}?next-day#shot-{shot_id(0)}")
        b.wait_until(f"document.body.classList.contains('picking') && document.querySelector('#shot-{picked} "
                     "article[data-board]').dataset.take", "2", "the page's script run, yesterday's pick its board")
        pdf = b.send("Page.printToPDF", page=True, paperWidth=11.69, paperHeight=8.27)["data"]
    pages = list(pypdf.PdfReader(io.BytesIO(base64.b64decode(pdf))).pages)
    assert [len(page.images) for page in pages] == [6, 6, 2]
    assert "picked here, not recorded yet" in pages[1].extract_text()
