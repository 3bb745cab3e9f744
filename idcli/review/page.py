"""The storyboard page: ``OUT/review/index.html``, its thumbnails, and ``OUT/review/contact-sheet.png`` (with
``contact-sheet-2.png``, ``-3`` … past SHEET_SHOTS shots).

Static files only: no server, no CDN, no web fonts; every link is relative, so the folder works from
a file:// URL offline and can be zipped and mailed. Shots in shot-list order, takes side by side, the
selected take marked. Keyboard: Tab walks the links; ``j``/``k`` (or ``n``/``p``) move between shots,
``f`` to the next shot whose every take is flagged. Everything taken from sidecars is HTML-escaped. At film
scale the index lists scenes (each opening onto its shots), thumbnails load lazily at their size and shots
off screen are not laid out until scrolled near (docs/review.md).

The director picks takes on the page (a button per take, ``1``–``9``/``0``/``s``), kept in the browser's
localStorage under ``run_key`` with the shot last viewed, and exports them as ``picks.json`` for ``idcli select
--from`` (picks_file.py). The page carries what the script needs as attributes (``data-run``, each take's
``data-key``, a shot's recorded ``data-selected``); the script writes text only, never markup.

Thumbnails are made once: named after the sha256 of the image's bytes (not the sidecar's: a retouched image
gets a new one), reused while the image is unchanged; thumbnails of images no longer present are removed.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import InputError
from .export import shown_take, standing_takes
from .pick_standing import DAMAGED_SHORT
from .picks_file import is_seen_key, seen_key
from .print_boards import print_css
from .runs import Run, Shot, Take

REVIEW_DIR = "review"
THUMBS_DIR = "thumbs"
THUMB_WIDTH = 384
SHEET_CELL = 256
SHEET_COLUMNS = 4
# Shots per contact sheet: a film's 2,000 shots on one sheet made a PNG 152,008 pixels tall (161 megapixels,
# a decompression bomb to Pillow, a sliver in a browser). 100 shots keep a sheet under 15,000 pixels tall.
SHEET_SHOTS = 100
_SHEET_NAME = re.compile(r"contact-sheet(?:-([1-9]\d*))?\.png")
_THUMB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*_t\d+-[0-9a-f]{12}\.jpg")
FLAG_TEXT = {"no_face": "no face", "missing_character": "missing character", "low_identity": "low identity",
             "leakage": "leakage"}


@dataclass
class PageResult:
    index: Path
    contact_sheet: Path  # the first sheet
    takes: int
    shots: int
    thumbnails_made: int
    problems: list[str]
    contact_sheets: list[Path] = field(default_factory=list)  # every sheet, in shot order


def write_review(run: Run) -> PageResult:
    """Write the page, the thumbnails it needs and the contact sheet into ``OUT/review/``."""
    if any(shot.id == REVIEW_DIR for shot in run.shots):
        raise InputError(f"a shot is named '{REVIEW_DIR}', the folder the review page is written to; rename it")
    problems = list(run.problems)
    _remove_dead_temporaries(run.root)
    thumbs: dict[str, str] = {}  # image path -> thumbnail path relative to review/
    sizes: dict[str, tuple[int, int]] = {}  # image path -> the thumbnail's width and height in pixels
    made = 0
    for take in run.takes:
        try:
            name, new, sizes[take.image] = _thumbnail(run.root, take)
        except InputError as exc:  # the image cannot be read: the take still shows, without a picture
            problems.append(f"{take.image}: {exc}")
            continue
        thumbs[take.image] = f"{THUMBS_DIR}/{name}"
        made += new
    _remove_unused_thumbnails(run.root, {Path(t).name for t in thumbs.values()})
    sheets = [_write_file(run.root, f"{REVIEW_DIR}/{sheet_name(i)}", png)
              for i, png in enumerate(contact_sheet_pngs(run, thumbs))]
    _remove_unused_sheets(run.root, {p.name for p in sheets})  # an earlier, longer cut's last sheets
    index = _write_file(run.root, f"{REVIEW_DIR}/index.html",
                        page_html(run, thumbs, problems, len(sheets), sizes).encode("utf-8"))
    return PageResult(index, sheets[0], len(run.takes), len(run.shots), made, problems, sheets)


# -- files -------------------------------------------------------------------------------------------


def _write_file(root: Path, relpath: str, data: bytes) -> Path:
    """Atomically, inside the output folder, never through a link (the store's own path rules)."""
    from ..store import OutputStore, atomic_write

    target = OutputStore(root).path(relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)
    return target


def _remove_dead_temporaries(root: Path) -> None:
    """Remove what a review killed part-way left in review/ and review/thumbs (a render's start clears only
    folders directly inside the output folder, so thumbnails' temporaries were never removed)."""
    from ..safeio import remove_dead_temporaries

    for folder in (root / REVIEW_DIR, root / REVIEW_DIR / THUMBS_DIR):
        if folder.is_dir() and not folder.is_symlink():  # never a linked folder: the files could be anyone's
            remove_dead_temporaries(folder)


def _thumbnail(root: Path, take: Take) -> tuple[str, bool, tuple[int, int]]:
    """The take's thumbnail file name in review/thumbs (made if missing), whether it was made now, and its
    width and height (the page gives every thumbnail its size, so a lazily loaded one keeps its place)."""
    from PIL import Image

    from ..hashing import sha256_bytes
    from ..identity.images import ImageError, load_take_rgb, read_image_file

    # Named by the bytes on disk, not the sidecar's sha256: an image retouched by hand after its render
    # gets a new thumbnail (the page shows the picture the link opens).
    try:
        data = read_image_file(root / take.image)
    except ImageError as exc:
        raise InputError(str(exc).split(": ", 1)[-1]) from None
    name = f"{take.stem}-{sha256_bytes(data)[:12]}.jpg"
    target = root / REVIEW_DIR / THUMBS_DIR / name
    size = _our_thumbnail_size(target) if target.is_file() and not target.is_symlink() else None
    if size is not None:
        return name, False, size
    try:
        rgb = load_take_rgb(root / take.image, data)
    except ImageError as exc:
        raise InputError(str(exc).split(": ", 1)[-1]) from None
    image = Image.fromarray(rgb)
    image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    _write_file(root, f"{REVIEW_DIR}/{THUMBS_DIR}/{name}", buffer.getvalue())
    return name, True, image.size


def _our_thumbnail_size(path: Path) -> tuple[int, int] | None:
    """The size of ``path`` if it is a thumbnail as ``_thumbnail`` makes them (a JPEG at most THUMB_WIDTH
    wide that decodes), else None. Its name (the image's sha256) can be computed by anyone holding the
    folder, so a file planted under it (a decompression bomb, a truncated or full-size picture) is made
    again, never decoded whole."""
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only; a bomb's size is refused before decoding
            if image.format != "JPEG" or image.width > THUMB_WIDTH or image.height > THUMB_WIDTH * 4:
                return None
            image.load()
            return image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _remove_unused_thumbnails(root: Path, keep: set[str]) -> None:
    folder = root / REVIEW_DIR / THUMBS_DIR
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in folder.iterdir():
        if _THUMB_NAME.fullmatch(entry.name) and entry.name not in keep and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)


def _remove_unused_sheets(root: Path, keep: set[str]) -> None:
    folder = root / REVIEW_DIR
    for entry in folder.iterdir():
        if _SHEET_NAME.fullmatch(entry.name) and entry.name not in keep and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)


# -- the contact sheet ---------------------------------------------------------------------------------


def sheet_name(index: int) -> str:
    """The file name of contact sheet ``index`` (0-based): contact-sheet.png, contact-sheet-2.png, …"""
    return "contact-sheet.png" if index == 0 else f"contact-sheet-{index + 1}.png"


def contact_sheet_pngs(run: Run, thumbs: dict[str, str]) -> list[bytes]:
    """The contact sheets of a run: SHEET_SHOTS shots each, in shot order (one sheet for a run without shots)."""
    return [contact_sheet_png(run, thumbs, run.shots[start:start + SHEET_SHOTS])
            for start in range(0, max(1, len(run.shots)), SHEET_SHOTS)]


def contact_sheet_png(run: Run, thumbs: dict[str, str], shots: list[Shot] | None = None) -> bytes:
    """One PNG: each of ``shots``' (default: the run's) selected (else first) take, labelled with its shot id
    and take. Cells have one size across a run's sheets."""
    from PIL import Image, ImageDraw, ImageFont

    shots = run.shots if shots is None else shots
    columns = min(SHEET_COLUMNS, max(1, len(shots)))
    rows = (len(shots) + columns - 1) // columns
    label, pad = 40, 8
    cell_h = SHEET_CELL * 3 // 4 if not run.takes else _cell_height(run)
    sheet = Image.new("RGB", (columns * (SHEET_CELL + pad) + pad, rows * (cell_h + label + pad) + pad), (22, 22, 26))
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    live = standing_takes(run)  # a select beyond its shot's takes now is not the shot's cell (as the animatic)
    for i, shot in enumerate(shots):
        x = pad + (i % columns) * (SHEET_CELL + pad)
        y = pad + (i // columns) * (cell_h + label + pad)
        take = shown_take(shot, live)
        thumb = thumbs.get(take.image) if take else None
        if thumb:
            with Image.open(run.root / REVIEW_DIR / thumb) as picture:
                rgb = picture.convert("RGB")
                rgb.thumbnail((SHEET_CELL, cell_h))
                sheet.paste(rgb, (x + (SHEET_CELL - rgb.width) // 2, y + (cell_h - rgb.height) // 2))
        else:
            draw.rectangle((x, y, x + SHEET_CELL - 1, y + cell_h - 1), fill=(60, 60, 66))
            draw.text((x + 10, y + cell_h // 2 - 8), "not rendered", fill=(200, 200, 200), font=font)
        after = "" if take is None else f"  t{take.take}" + ("  selected" if take is shot.selected else "")
        text = _fit(draw, font, shot.id, SHEET_CELL - draw.textlength(after, font=font), middle=True) + after
        draw.text((x, y + cell_h + 4), text, fill=(240, 240, 240), font=font)
        if take is not None and take.flags:
            flags = ", ".join(FLAG_TEXT.get(f, f) for f in take.flags)
            draw.text((x, y + cell_h + 21), _fit(draw, font, flags, SHEET_CELL), fill=(255, 120, 90), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def _fit(draw: Any, font: Any, text: str, width: float, middle: bool = False) -> str:
    """``text`` cut with an ellipsis to at most ``width`` pixels, so a label never runs into the next cell.
    Shot ids are cut in the middle: their start (scene) and end (shot, version) tell them apart."""
    if draw.textlength(text, font=font) <= width:
        return text
    for keep in range(len(text) - 1, 0, -1):
        head = (keep + 1) // 2 if middle else keep
        cut = text[:head] + "…" + (text[len(text) - (keep - head):] if middle and keep > head else "")
        if draw.textlength(cut, font=font) <= width:
            return cut
    return "…"


def _cell_height(run: Run) -> int:
    """Cells keep the aspect of the widest-framed image (most shots share one size)."""
    ratios = [t.height / t.width for t in run.takes if t.width and t.height]
    ratio = min(ratios) if ratios else 0.75
    return max(64, min(SHEET_CELL * 2, round(SHEET_CELL * ratio)))


# -- the page --------------------------------------------------------------------------------------


def _href(relpath: str) -> str:
    """A link from review/index.html to a file of the output folder."""
    return "../" + "/".join(quote(part) for part in relpath.split("/"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figure(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else _e(value)


def qa_html(take: Take) -> str:
    """The take's identity-QA table (or why there is none) as the page shows it."""
    qa = take.qa
    if qa is None:
        return '<p class="qa-none">No identity QA (no cast, rendered with --no-qa, or before QA; run idcli qa)</p>'
    if take.qa_error:
        return f'<p class="qa-none">QA failed: {_e(take.qa_error)}</p>'
    rows = []
    for i, face in enumerate(qa.get("faces") or []):
        if not isinstance(face, dict):
            continue
        box = ", ".join(str(round(v)) for v in face.get("box") or [] if isinstance(v, int | float))
        # A plate image's untouched people (QA records them as plate faces) are not a missing match.
        who = face.get("character") or ("plate's own" if face.get("plate_face") else "—")
        rows.append(f"<tr><td>{i}</td><td>{_e(who)}</td>"
                    f"<td>{_figure(face.get('cosine'))}</td><td>{_figure(face.get('area_share'))}</td>"
                    f"<td class=\"box\">{_e(box)}</td></tr>")
    table = ("<table class=\"faces\"><caption>Faces found</caption><thead><tr><th scope=\"col\">#</th>"
             "<th scope=\"col\">character</th><th scope=\"col\">cosine</th><th scope=\"col\">area</th>"
             f"<th scope=\"col\">box</th></tr></thead><tbody>{''.join(rows)}</tbody></table>") if rows else \
        "<p>No face found.</p>"
    leak = qa.get("leakage")
    return f"{table}<p class=\"leak\">Leakage {_figure(leak)}</p>"


def _take_html(shot: Shot, take: Take, thumbs: dict[str, str], sizes: dict[str, tuple[int, int]],
               board: bool = False, shot_prompt: str | None = None, orphan: bool = False) -> str:
    selected = shot.selected is take
    badges = []
    if orphan:  # beyond the shot's takes in the shot list: idcli select refuses it, so the page offers no pick
        badges.append('<span class="badge warn">beyond the shot\'s takes: not pickable</span>')
    if selected:
        badges.append('<span class="badge sel">selected</span>')
        if shot.selection_damaged:  # in the notes' words (pick_notes.py), not taken for a re-render
            badges.append(f'<span class="badge warn">{_e(DAMAGED_SHORT)}</span>')
        elif shot.selection_stale:
            badges.append('<span class="badge warn">re-rendered since picked</span>')
    badges += [f'<span class="badge flag flag-{_e(f)}">{_e(FLAG_TEXT.get(f, f))}</span>' for f in take.flags]
    if take.qa is not None and not take.flags and not take.qa_error:
        badges.append('<span class="badge ok">QA passed</span>')
    if take.random_weights:  # a tiny/bench preset's noise, or identities from the synthetic face models
        badges.append('<span class="badge warn random">random weights: not for review</span>')
    thumb = thumbs.get(take.image)
    alt = f"{take.shot_id} take {take.take}"
    # Its size in the markup: without one, an image not loaded yet is a line of alt text, so the page jumps
    # as thumbnails arrive (the take being read moves down) and a jump to a shot lands short of it.
    size = sizes.get(take.image)
    dimensions = f' width="{size[0]}" height="{size[1]}"' if size else ""
    picture = (f'<img src="{_e(thumb)}" alt="{_e(alt)}"{dimensions} loading="lazy" decoding="async">' if thumb
               else f'<span class="noimg">{_e(alt)}: image unreadable</span>')
    # The prompt the shot's takes share is shown once, with the shot (shot_prompt); a take's own otherwise.
    facts: list[tuple[str, Any]] = ([] if take.prompt == shot_prompt else [("prompt", take.prompt)]) + [
        ("characters", ", ".join(take.characters) or "—"), ("expression", take.expression or "—"),
        ("framing", take.framing or "—")]
    # seed and method last: the printed board leaves off the last two facts (print_boards.py)
    facts += [("seed", take.seed if take.seed is not None else "—"), ("method", take.method or "—")]
    facts_html = "".join(f'<dt{" class=prompt" if k == "prompt" else ""}>{_e(k)}</dt><dd>{_e(v)}</dd>'
                         for k, v in facts)
    strip = (f'<a class="strip" href="{_href(take.mask_strip)}"><img src="{_href(take.mask_strip)}" '
             f'alt="{_e(alt)} fusion mask over the steps" loading="lazy"></a>') if take.mask_strip else ""
    classes = "take" + (" selected" if selected else "") + (" flagged" if take.flags else "")
    board_attr = ' data-board="1"' if board else ""  # the take the shot's printed board shows (print_boards.py)
    orphan_attr = ' data-orphan="1"' if orphan else ""  # the page's script makes no pick button on it
    # data-key: the take's job key as an exported pick carries it (picks_file.py: seen_key)
    return (f'<article class="{classes}" id="take-{_e(take.stem)}" data-take="{take.take}"{board_attr}{orphan_attr} '
            f'data-key="{_e(seen_key(take.job_key))}" aria-label="{_e(alt)}">'
            f'<a class="thumb" href="{_href(take.image)}">{picture}</a>'
            f'<h3>Take {take.take}</h3><p class="badges">{"".join(badges)}</p>'
            f"<dl>{facts_html}</dl>{qa_html(take)}{strip}"
            f'<p class="links"><a href="{_href(take.image)}">full image</a> · '
            f'<a href="{_href(take.sidecar)}">sidecar</a></p></article>')


def _shot_html(number: int, shot: Shot, thumbs: dict[str, str], sizes: dict[str, tuple[int, int]],
               listed: bool = False, live: set[tuple[str, int]] | None = None) -> str:
    meta = []
    if shot.entry is not None:
        meta.append(f"{shot.entry.duration:g} s")
    else:
        meta.append("not in the shot list")
    meta.append(f"{len(shot.takes)} take{'s' if len(shot.takes) != 1 else ''}")
    flagged = ' <span class="badge flag">every take flagged</span>' if shot.all_flagged else ""
    # the take its printed board shows: the one that stands for the shot everywhere, among the shot list's takes
    board = shown_take(shot, live if listed else None)
    prompt = shared_prompt(shot)
    # ``live``: the takes the shot list the folder was last rendered from has (as idcli select checks them)
    orphan_takes = {t.take for t in shot.takes if listed and shot.entry is not None and live is not None
                    and (shot.id, t.take) not in live}
    body = ("".join(_take_html(shot, t, thumbs, sizes, t is board, prompt, t.take in orphan_takes)
                    for t in shot.takes)
            or '<p class="empty">Not rendered yet.</p>')
    attrs = ' data-flagged="1"' if shot.all_flagged else ""
    if shot.selected is not None:  # the select idcli select recorded: the page's picks start from it
        attrs += f' data-selected="{shot.selected.take}"'
        recorded = shot.picked_key if isinstance(shot.picked_key, str) else ""  # a damaged record: no key to show
        picked_as = seen_key(recorded) if shot.selection_stale and recorded else ""
        if is_seen_key(picked_as):  # picked as another render of the take: exported as picked, not as rendered now
            attrs += f' data-selected-key="{picked_as}"'
        if shot.selection_damaged:  # no key to say which render was picked: the script asks to look again
            attrs += f' data-selected-damaged="{_e(DAMAGED_SHORT)}"'
    if listed and shot.entry is None:  # taken out of the shot list: idcli select refuses its takes, so no picks
        attrs += ' data-orphan="1"'
    facts = ""
    if prompt is not None:
        sharing = [t.take for t in shot.takes if t.prompt == prompt]
        label = "prompt" if len(sharing) == len(shot.takes) else f"prompt of takes {', '.join(map(str, sharing))}"
        # printed after the board's take unless that take has a prompt of its own (print_boards.py)
        facts = f'<dl class="shot-prompt"><dt>{_e(label)}</dt><dd>{_e(prompt)}</dd></dl>'
    return (f'<section class="shot" id="shot-{_e(shot.id)}" tabindex="-1" aria-labelledby="h-{_e(shot.id)}"{attrs}>'
            f'<h2 id="h-{_e(shot.id)}"><span class="num">{number}.</span> {_e(shot.id)} '
            f'<span class="meta">{_e(" · ".join(meta))}</span>{flagged}</h2>'
            f'{facts}<div class="takes">{body}</div></section>')


def shared_prompt(shot: Shot) -> str | None:
    """The prompt the page shows once for the shot: the one most of its takes share, when two or more share it
    (a film's takes mostly do: 4,729 prompts, one per take, were 0.89 MB of a 2,000-shot page); None when no two
    do."""
    from collections import Counter

    counts = Counter(t.prompt for t in shot.takes).most_common(1)
    return counts[0][0] if counts and counts[0][1] >= 2 else None


def _sheet_links(sheets: int) -> str:
    """The header's link to the contact sheet, or one link per sheet (numbered) when there are several."""
    if sheets <= 1:
        return '<a href="contact-sheet.png">contact sheet</a>'
    return "contact sheets " + " ".join(f'<a href="{sheet_name(i)}">{i + 1}</a>' for i in range(sheets))


def page_html(run: Run, thumbs: dict[str, str], problems: list[str], sheets: int = 1,
              sizes: dict[str, tuple[int, int]] | None = None) -> str:
    from ..provenance import now

    takes = run.takes
    flagged = sum(1 for t in takes if t.flags)
    groups = scene_groups(run.shots)
    nav = _nav_html(run.shots, groups)
    problems_html = ("<section class=\"problems\" role=\"alert\"><h2>Skipped</h2><ul>"
                     + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul></section>") if problems else ""
    sizes = sizes or {}
    starts = {start: (anchor, label, count) for (label, start, count), anchor in zip(groups, _group_ids(groups),
                                                                                      strict=True)}
    # the takes that stand (as the notes and the animatic have them): the run manifest's, which idcli select refuses
    # picks outside of, or those of the shot list given with --shots, whose order the page follows
    live = standing_takes(run)
    shots = "".join((_scene_mark(*starts[i]) if i in starts else "")
                    + _shot_html(i + 1, s, thumbs, sizes, listed=run.order is not None, live=live)
                    for i, s in enumerate(run.shots))
    written = now().strftime('%Y-%m-%d %H:%M UTC')
    summary = (f"{len(run.shots)} shots · {len(takes)} takes · {flagged} flagged by identity QA · "
               f"written {written}")
    random = sum(1 for t in takes if t.random_weights)
    if random:
        summary += (f" · {random} of {len(takes)} takes were rendered with random-weight test models "
                    "(tiny presets or synthetic face models): not for review")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_csp()}">
<title>{_e(run.project)} — idcli review</title>
<style>{_CSS}{print_css(run.project, written, random)}</style>
</head>
<body data-run="{_e(run_key(run))}" data-project="{_e(run.project)}">
<a class="skip" href="#shots">Skip to the shots</a>
<header>
<h1>{_e(run.project)}</h1>
<p class="summary">{_e(summary)}</p>
<p class="keys">Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous shot · <kbd>f</kbd> next shot with every take flagged ·
<kbd>1</kbd>–<kbd>9</kbd> pick that take of the shot (again: unpick), <kbd>0</kbd> no pick, <kbd>s</kbd> pick the take
with the focus · {_sheet_links(sheets)}</p>
{_PICKS_BAR}
{nav}
</header>
{problems_html}
<main id="shots">{shots}</main>
<script>{_JS}</script>
</body>
</html>
"""


# -- picks: the director's, kept in the browser, exported as picks.json ---------------------------------

# Filled by the script: the count of picks, the export (a download, and the same text to copy). Without the
# script (printed, or a browser that blocks it) the page shows the selects alone.
_PICKS_BAR = """<section class="picks" aria-label="Picks" hidden>
<p><span class="pick-count" aria-live="polite"></span>
<button type="button" class="export-picks">export picks</button>
<button type="button" class="forget-picks">forget changes made here</button></p>
<div class="export" hidden><p class="exported">Downloaded as <code>picks.json</code>; the artist records the picks
with <code>idcli select OUT --from picks.json</code>. The same, to copy into a message:</p>
<p class="nothing" hidden>No picks changed here: nothing to send (the picks shown are the ones recorded).</p>
<textarea readonly rows="6" cols="80" aria-label="picks.json"></textarea></div>
</section>"""


def run_key(run: Run) -> str:
    """What the browser keeps this page's picks and place under (localStorage is one store for every page opened
    from file://): the project and the output folder's real path (``..`` and links resolved: the page is rewritten
    from wherever ``idcli review`` runs), hashed, so that two output folders, of one project or two, never share
    picks, while a rewritten page of the same folder (or a zipped copy of it) finds them again. The path itself
    stays on the render box."""
    import hashlib
    import json

    text = json.dumps([run.project, str(run.root.resolve())], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


# -- the index: grouped by scene at film scale --------------------------------------------------------

# Up to this many shots the index lists every shot; past it (a film's 2,000 links filled the first screen) it
# lists scenes, each opening onto its shots.
NAV_FLAT_SHOTS = 40
# Shots per index group when the shot ids name no scenes (no "sc12_" prefix to group by).
NAV_BLOCK = 25


def scene_of(shot_id: str) -> str:
    """The scene a shot id names, by the usual convention ``<scene>_<shot>`` (``sc12_sh010`` -> ``sc12``);
    '' when the id has no such prefix."""
    head, sep, _ = shot_id.partition("_")
    return head if sep and head else ""


def scene_groups(shots: list[Shot]) -> list[tuple[str, int, int]]:
    """The index's groups as (label, index of the first shot, number of shots), in shot order: runs of
    consecutive shots of one scene, else blocks of NAV_BLOCK shots labelled by their numbers. [] when the
    index lists every shot (NAV_FLAT_SHOTS or fewer)."""
    if len(shots) <= NAV_FLAT_SHOTS:
        return []
    groups: list[tuple[str, int, int]] = []
    # Without a shot list (no run manifest, no --shots) no shot has an entry: none is an orphan, all are by id.
    listed = any(shot.entry is not None for shot in shots)
    for i, shot in enumerate(shots):
        scene = scene_of(shot.id) if shot.entry is not None or not listed else "not in the shot list"
        if groups and groups[-1][0] == scene and scene:
            label, start, count = groups[-1]
            groups[-1] = (label, start, count + 1)
        else:
            groups.append((scene, i, 1))
    if any(not label for label, _, _ in groups) or len(groups) * 2 > len(shots):  # ids name no scenes
        groups = [(_block_label(start, len(shots)), start, min(NAV_BLOCK, len(shots) - start))
                  for start in range(0, len(shots), NAV_BLOCK)]
    return groups


def _block_label(start: int, total: int) -> str:
    """A numbered group's label: its shots' numbers, ``26–50``."""
    return f"{start + 1}–{min(start + NAV_BLOCK, total)}"


def _shot_link(shot: Shot) -> str:
    picked = f" <span class=navpick>✓t{shot.selected.take}</span>" if shot.selected is not None else ""
    return (f'<li><a href="#shot-{_e(shot.id)}">{_e(shot.id)}</a>'
            f'{" <span class=dot title=flagged>●</span>" if shot.all_flagged else ""}{picked}</li>')


def _group_ids(groups: list[tuple[str, int, int]]) -> list[str]:
    """Each group's anchor, ``scene-<label>``, one per group: a scene the shot list comes back to (cross-cutting)
    is a group again, and its second anchor (``scene-sc05~2``) must not send its link to the first."""
    ids: list[str] = []
    for label, _, _ in groups:
        base = anchor = "scene-" + re.sub(r"[^A-Za-z0-9_.-]", "-", label)
        n = 1
        while anchor in ids:
            n += 1
            anchor = f"{base}~{n}"
        ids.append(anchor)
    return ids


def _nav_html(shots: list[Shot], groups: list[tuple[str, int, int]]) -> str:
    """Every shot's link; at film scale one line per scene (its shots behind a disclosure), so the index
    takes a few lines and scene 14 is one click away."""
    if not groups:
        return f'<nav aria-label="Shots"><ol>{"".join(_shot_link(s) for s in shots)}</ol></nav>'
    items = []
    for (label, start, count), anchor in zip(groups, _group_ids(groups), strict=True):
        members = shots[start:start + count]
        flagged = sum(1 for s in members if s.all_flagged)
        mark = f' <span class="dot" title="{flagged} with every take flagged">●{flagged}</span>' if flagged else ""
        # picking takes over days: which scenes still wait for a pick
        picked = sum(1 for s in members if s.selected is not None)
        mark += f' <span class="picked" title="{picked} of {count} picked">{f"✓{picked}" if picked else ""}</span>'
        items.append(f'<li><details><summary><a href="#{anchor}">{_e(label)}</a> '
                     f'<span class="count">{count}</span>{mark}</summary>'
                     f'<ol>{"".join(_shot_link(s) for s in members)}</ol></details></li>')
    # "scenes" only when they are: ids that name none are cut into numbered groups
    plural = "" if len(groups) == 1 else "s"
    what = f"group{plural} of shots" if groups[0][0] == _block_label(0, len(shots)) else f"scene{plural}"
    return (f'<nav aria-label="Shots" class="scenes"><p class="count">{len(groups)} {what} · open one for its shots'
            f'</p><ol>{"".join(items)}</ol></nav>')


def _scene_mark(anchor: str, label: str, count: int) -> str:
    """The target of a scene's index link, before its first shot."""
    return (f'<p class="scene" id="{anchor}">{_e(label)} '
            f'<span class="meta">{count} shot{"s" if count != 1 else ""}</span></p>')


def _csp() -> str:
    """The page's Content-Security-Policy: its own images, its inline style, and only its own script (by
    hash). Every text on the page is escaped already; this is the second wall, so that a prompt or a
    sidecar from outside the studio that ever got past the escaping could still run nothing, load nothing
    from the network and send nothing anywhere."""
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


_CSS = """
:root{color-scheme:dark;--bg:#16161a;--panel:#222228;--text:#ececf0;--muted:#a8a8b3;--accent:#7cc4ff;
--flag:#ff7a59;--ok:#5fd39b;--sel:#ffd25f}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);
color:var(--text)}
a{color:var(--accent)}
a:focus-visible,section:focus-visible,[tabindex]:focus-visible{outline:3px solid var(--sel);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--panel);padding:6px;z-index:2}
header{padding:16px 24px;border-bottom:1px solid #33333b}
h1{margin:0 0 4px;font-size:1.5rem}
/* a project or shot id is up to 64 characters with no space to break at: wider than a phone's screen */
h1,.shot h2,nav a{overflow-wrap:anywhere}
.summary,.keys{margin:2px 0;color:var(--muted)}
kbd{border:1px solid #555;border-radius:3px;padding:0 4px;font-size:.85em}
nav ol{display:flex;flex-wrap:wrap;gap:4px 14px;padding:0;margin:8px 0 0;list-style:none}
nav.scenes>ol{gap:2px 6px}nav.scenes>ol>li{flex:0 1 auto;max-width:100%}
nav.scenes>ol>li:has(details[open]){flex-basis:100%}
nav.scenes details ol{margin:2px 0 8px 16px}
summary{cursor:pointer}.count{color:var(--muted);font-size:.85em}.picked{color:var(--sel)}
.scene{margin:28px 0 0;font-size:1.3rem;font-weight:600;border-bottom:2px solid #44444f}
.dot{color:var(--flag)}
.problems{margin:12px 24px;padding:8px 16px;border:1px solid var(--flag);border-radius:6px}
.problems h2{font-size:1rem;margin:4px 0}
main{padding:8px 24px 48px}
.shot{margin:18px 0;padding-top:4px;border-top:1px solid #2c2c33}
/* A film's shots off screen are neither laid out nor painted until scrolled near (their size estimated,
then remembered): the page opens as fast as its first screen, not its 2,000th shot. */
.shot{content-visibility:auto;contain-intrinsic-size:auto 360px}
.shot h2{font-size:1.15rem;margin:6px 0 10px}
.num{color:var(--muted)}
.meta{color:var(--muted);font-weight:normal;font-size:.9rem;margin-left:6px}
.takes{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px}
.take{background:var(--panel);border:2px solid transparent;border-radius:8px;padding:10px}
.take.selected{border-color:var(--sel)}
/* with the script running, the border follows the director's pick (the select idcli recorded, or a change) */
.picking .take.selected{border-color:transparent}.picking .take.picked{border-color:var(--sel)}
.pick{display:block;margin:4px 0}
button{font:inherit;color:var(--text);background:#34343e;border:1px solid #55555f;border-radius:6px;padding:2px 12px;
cursor:pointer}
button:focus-visible{outline:3px solid var(--sel);outline-offset:2px}
button.pick[aria-pressed="true"]{background:var(--sel);color:#1f1800;border-color:var(--sel);font-weight:600}
.pick-note{color:var(--sel);font-weight:normal;font-size:.9rem;margin-left:8px}.pick-note.stale{color:#b58cff}
.navpick{color:var(--sel);font-size:.85em}
.picks{margin:6px 0}.picks p{margin:4px 0}.pick-count{color:var(--sel);margin-right:8px}
.picks textarea{width:100%;max-width:60rem;background:var(--panel);color:var(--text);border:1px solid #44444f}
.shot-prompt{margin:0 0 8px}
.take.flagged{box-shadow:inset 0 0 0 1px rgba(255,122,89,.45)}
.thumb{display:block}
.thumb img{display:block;width:100%;height:auto;border-radius:4px;background:#000}
.take h3{margin:8px 0 2px;font-size:1rem}
.badges{margin:2px 0 6px;min-height:1.2em}
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin:0 4px 2px 0;font-size:.8rem;font-weight:600;
background:#3a3a44}
.badge.flag{background:var(--flag);color:#1a0d08}.badge.ok{background:var(--ok);color:#06170e}
.badge.sel{background:var(--sel);color:#1f1800}.badge.warn{background:#b58cff;color:#140a24}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:6px 0;font-size:.88rem}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
table.faces{border-collapse:collapse;font-size:.85rem;width:100%;margin-top:4px}
table.faces caption{text-align:left;color:var(--muted)}
table.faces th,table.faces td{text-align:left;padding:1px 6px 1px 0;border-bottom:1px solid #33333b}
td.box{color:var(--muted);font-size:.78rem}
.leak,.qa-none{margin:4px 0;font-size:.85rem;color:var(--muted)}
.strip img{display:block;width:100%;height:auto;margin-top:6px;image-rendering:pixelated}
.links{margin:6px 0 0;font-size:.88rem}
.noimg,.empty{color:var(--muted)}
@media (prefers-reduced-motion:no-preference){html{scroll-behavior:smooth}}
"""

_JS = """
(function(){
  var shots=Array.prototype.slice.call(document.querySelectorAll('section.shot'));
  var byId=Object.create(null),navMark=Object.create(null);
  function idOf(s){return s.id.slice(5);}  // section id="shot-<id>"
  shots.forEach(function(s){byId[idOf(s)]=s;});
  Array.prototype.forEach.call(document.querySelectorAll('nav a[href^="#shot-"]'),function(a){
    navMark[a.getAttribute('href').slice(6)]=a.parentNode;
  });
  // What the director changed here, by shot: {take: n or null (no pick), key: the job key of the take seen}.
  // One key per output folder (data-run): every page opened from file:// shares one localStorage.
  var storeKey='idcli-review:'+document.body.getAttribute('data-run');
  var saved=read();
  function read(){
    try{var v=JSON.parse(localStorage.getItem(storeKey)||'{}');}catch(e){v={};}
    if(!v||typeof v!=='object'){v={};}
    var picks=Object.create(null),p=v.picks&&typeof v.picks==='object'?v.picks:{};
    // Only picks as this script writes them: a take number (or null) and a key of 16 hex digits (or null). The
    // store is shared by every page from file:// and outlives page versions; anything else is dropped.
    Object.keys(p).forEach(function(id){var q=p[id];
      if(byId[id]&&q&&typeof q==='object'&&(q.take===null||Number.isInteger(q.take))&&
        (q.key===null||(typeof q.key==='string'&&/^[0-9a-f]{16}$/.test(q.key)))){picks[id]={take:q.take,key:q.key};}});
    return {picks:picks,last:typeof v.last==='string'?v.last:''};
  }
  function write(){try{localStorage.setItem(storeKey,JSON.stringify(saved));}catch(e){}}
  function takeOf(s,n){return n===null?null:s.querySelector('article.take[data-take="'+n+'"]');}
  function recorded(s){  // the select idcli select recorded, as the page was written
    var n=s.getAttribute('data-selected');n=n===null?null:Number(n);
    var t=takeOf(s,n),k=s.getAttribute('data-selected-key');  // the render picked, when the take was re-rendered
    if(damaged(s)){return {take:n,key:null};}  // no render known as picked: picking the take records it as it is
    return {take:n,key:k!==null?k:t?t.getAttribute('data-key'):null};
  }
  function damaged(s){return s.hasAttribute('data-selected-damaged');}  // its record in selects.json is damaged
  function pickable(s){return !s.hasAttribute('data-orphan');}  // not a shot taken out of the shot list
  function orphanTake(t){return !!t&&t.hasAttribute('data-orphan');}  // a take beyond the shot's takes
  function pickOf(s){return saved.picks[idOf(s)]||recorded(s);}
  function standing(s){  // a pick that stands: its take is on the page and within the shot's takes
    var p=pickOf(s),t=takeOf(s,p.take);return !!t&&!orphanTake(t);}
  function exportable(s){  // a change made here that export picks carries (never a pick of a take beyond the takes)
    return pickable(s)&&changed(s)&&!orphanTake(takeOf(s,pickOf(s).take));}
  function changed(s){var p=saved.picks[idOf(s)],r=recorded(s);
    return !!p&&(p.take!==r.take||(p.take!==null&&p.key!==r.key));}
  function child(parent,cls){  // the span of class cls in parent, made on first use (the markup stays small)
    var e=parent.querySelector(':scope>.'+cls);
    if(!e){e=document.createElement('span');e.className=cls;parent.appendChild(e);}
    return e;
  }
  function show(s){
    if(!pickable(s)){return;}
    var p=pickOf(s),seen=takeOf(s,p.take),stale=!!seen&&p.key!==seen.getAttribute('data-key'),
      gone=p.take!==null&&!seen,  // picked here, then the take was removed (the page rewritten)
      beyond=orphanTake(seen),  // picked here, then the shot's takes were lowered below it: not exported
      broken=!saved.picks[idOf(s)]&&damaged(s)&&!!seen;  // the recorded select, its record damaged (as the notes say)
    Array.prototype.forEach.call(s.querySelectorAll('article.take'),function(t){
      var on=p.take!==null&&Number(t.getAttribute('data-take'))===p.take,b=t.querySelector('button.pick');
      if(!b&&!orphanTake(t)){  // made here, not in the markup: 4,729 takes' buttons were 0.16 MB of a film's page
        b=document.createElement('button');b.type='button';b.className='pick';t.insertBefore(b,t.querySelector('dl'));}
      t.classList.toggle('picked',on);
      if(b){b.setAttribute('aria-pressed',on?'true':'false');b.textContent=on?'picked':'pick';
        b.title='pick take '+t.getAttribute('data-take')+' for the shot (its number key; s with the focus on it)';}
    });
    var text=gone?' picked take '+p.take+': no longer rendered; pick another':
      beyond?' picked take '+p.take+': beyond the takes of the shot now; pick another':
      broken?' picked take '+p.take+': '+s.getAttribute('data-selected-damaged')+'; look again':
      stale?' picked take '+p.take+': re-rendered since you picked it; look again':
      changed(s)?(p.take===null?' no pick (not recorded yet)':' picked take '+p.take+' (not recorded yet)'):'';
    var h=s.querySelector('h2');
    if(h&&(text||h.querySelector('.pick-note'))){var note=child(h,'pick-note');note.textContent=text;
      note.classList.toggle('stale',stale||gone||beyond);}
    var li=navMark[idOf(s)],mark=p.take===null?'':' \u2713t'+p.take+(changed(s)?'*':'');
    if(li&&(mark||li.querySelector('.navpick'))){child(li,'navpick').textContent=mark;}
  }
  function count(){
    var picked=0,open=0,live=shots.filter(pickable);
    live.forEach(function(s){if(standing(s)){picked++;}if(exportable(s)){open++;}});
    var c=document.querySelector('.pick-count');
    if(c){c.textContent=picked+' of '+live.length+' shots picked'+(open?' \u00b7 '+open+' changed here, not recorded'+
      ' yet: export them for the artist':'');}
    Array.prototype.forEach.call(document.querySelectorAll('nav.scenes details'),function(d){
      var n=0,mark=d.querySelector('summary .picked');
      Array.prototype.forEach.call(d.querySelectorAll('ol a[href^="#shot-"]'),function(a){
        var s=byId[a.getAttribute('href').slice(6)];if(s&&pickable(s)&&standing(s)){n++;}});
      if(mark){mark.textContent=n?'\u2713'+n:'';}
    });
  }
  function pick(s,n){  // n: a take number, or null for no pick; the same take again unpicks
    if(!s||!pickable(s)){return;}
    var now=pickOf(s),t=takeOf(s,n);
    if(n!==null&&(!t||orphanTake(t))){return;}
    // the same take again unpicks it, unless it was re-rendered since: then it is picked as rendered now
    if(n!==null&&now.take===n&&now.key===t.getAttribute('data-key')){n=null;t=null;}
    var want={take:n,key:t?t.getAttribute('data-key'):null},r=recorded(s),id=idOf(s);
    if(want.take===r.take&&want.key===r.key){delete saved.picks[id];}else{saved.picks[id]=want;}
    write();show(s);count();remember(s);
  }
  function exportPicks(){
    // What the director changed here, and only that: a select left as the page shows it is the artist's, and an
    // idcli select made after the page was written must stand when the file is recorded.
    var out={},any=false;
    shots.forEach(function(s){
      if(!exportable(s)){return;}
      var p=pickOf(s);
      out[idOf(s)]=p.take===null?{take:null}:{take:p.take,key:p.key};any=true;  // null: took back
    });
    var box=document.querySelector('.picks .export'),area=box.querySelector('textarea');
    box.hidden=false;box.querySelector('.exported').hidden=!any;box.querySelector('.nothing').hidden=any;
    area.hidden=!any;
    if(!any){area.value='';return;}
    var text=JSON.stringify({schema:1,kind:'idcli-picks',project:document.body.getAttribute('data-project'),
      run:document.body.getAttribute('data-run'),exported:new Date().toISOString(),picks:out},null,1)+'\\n';
    var url=URL.createObjectURL(new Blob([text],{type:'application/json'}));
    var a=document.createElement('a');a.href=url;a.download='picks.json';a.hidden=true;
    document.body.appendChild(a);a.click();a.remove();
    setTimeout(function(){URL.revokeObjectURL(url);},60000);
    area.value=text;box.hidden=false;
  }
  var forgetArmed=0;
  function forget(b){
    if(Date.now()-forgetArmed>4000){forgetArmed=Date.now();b.textContent='click again to forget them';
      setTimeout(function(){if(forgetArmed){b.textContent='forget changes made here';forgetArmed=0;}},4000);return;}
    forgetArmed=0;b.textContent='forget changes made here';saved.picks=Object.create(null);write();
    shots.forEach(show);count();
  }
  // The place: the shot last looked at, in the URL (#shot-…, as j/k move) and in localStorage, so a reload or
  // reopening the page comes back to it instead of the top.
  function remember(s){
    saved.last=idOf(s);write();
    try{history.replaceState(null,'','#'+s.id);}catch(e){}
  }
  // The shot the keys act on: the one holding the focus while the view has not moved since j/k put it there, or
  // while it is in view; scrolled away from it (Page Down, Space, the wheel), the shot at the top of the view, so a
  // digit never picks in a shot off screen. (The last shots of a short page cannot scroll to the top: the focus
  // the keys gave them still counts.)
  var keyedAt=null;
  function current(){
    var a=document.activeElement&&document.activeElement.closest?document.activeElement.closest('section.shot'):null;
    var r=a?a.getBoundingClientRect():null;
    if(r&&(window.scrollY===keyedAt||(r.bottom>0&&r.top<window.innerHeight))){return shots.indexOf(a);}
    var best=0;
    for(var i=0;i<shots.length;i++){if(shots[i].getBoundingClientRect().top<=8){best=i;}}
    return best;
  }
  function go(i){if(i<0||i>=shots.length){return;}shots[i].focus({preventScroll:true});shots[i].scrollIntoView();
    keyedAt=window.scrollY;remember(shots[i]);}
  document.addEventListener('keydown',function(e){
    if(e.altKey||e.ctrlKey||e.metaKey){return;}
    var tag=(e.target&&e.target.tagName)||'';if(tag==='INPUT'||tag==='TEXTAREA'){return;}
    var i=current();
    if(e.key==='j'||e.key==='n'){go(i+1);e.preventDefault();}
    else if(e.key==='k'||e.key==='p'){go(i-1);e.preventDefault();}
    else if(e.key==='f'){
      for(var j=i+1;j<shots.length;j++){if(shots[j].dataset.flagged){go(j);break;}}
      e.preventDefault();
    }
    else if(/^[0-9]$/.test(e.key)&&shots[i]){pick(shots[i],e.key==='0'?null:Number(e.key));e.preventDefault();}
    else if(e.key==='s'){
      var t=document.activeElement&&document.activeElement.closest?document.activeElement.closest('article.take'):null;
      if(t){pick(t.closest('section.shot'),Number(t.getAttribute('data-take')));e.preventDefault();}
    }
  });
  document.addEventListener('click',function(e){
    var b=e.target&&e.target.closest?e.target.closest('button'):null;if(!b){return;}
    if(b.classList.contains('pick')){var t=b.closest('article.take');
      pick(t.closest('section.shot'),Number(t.getAttribute('data-take')));}
    else if(b.classList.contains('export-picks')){exportPicks();}
    else if(b.classList.contains('forget-picks')){forget(b);}
  });
  var settle=0;
  window.addEventListener('scroll',function(){clearTimeout(settle);settle=setTimeout(function(){
    if(window.scrollY>0){
      // the shot holding the focus while it is in view (the last shots cannot scroll to the top), else the top one
      var a=document.activeElement&&document.activeElement.closest?document.activeElement.closest('section.shot'):null;
      var r=a?a.getBoundingClientRect():null;
      if(r&&r.bottom>0&&r.top<window.innerHeight){remember(a);return;}
      var y=window.scrollY+8,i=0;while(i+1<shots.length&&shots[i+1].offsetTop<=y){i++;}
      if(shots[i]){remember(shots[i]);}return;}
    saved.last='';write();  // back at the top: reopen there
    try{history.replaceState(null,'',location.pathname+location.search);}catch(e){}
  },400);},{passive:true});
  var bar=document.querySelector('section.picks');if(bar){bar.hidden=false;}
  document.body.classList.add('picking');
  shots.forEach(show);count();
  var back=!location.hash&&saved.last?byId[saved.last]:null;
  if(back){back.focus({preventScroll:true});back.scrollIntoView({behavior:'instant'});}
})();
"""
