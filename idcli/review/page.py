"""The storyboard page: ``OUT/review/index.html``, written with its thumbnails and contact sheets.

Static files only: no server, no CDN, no web fonts; every link is relative, so the folder works from
a file:// URL offline and can be zipped and mailed. Shots in shot-list order, takes side by side, the
selected take marked. Everything taken from sidecars is HTML-escaped. At film scale the index lists scenes
(each opening onto its shots), thumbnails load lazily at their size and shots off screen are not laid out until
scrolled near (docs/review.md).

The director picks takes on the page, kept in the browser's localStorage under ``run_key``; the page carries
what the script needs as attributes (``data-run``, each take's ``data-key``, a shot's recorded
``data-selected``). Beside this module, each owning one part of the folder: page_files.py (where the files go,
the thumbnails, what is no longer used), contact_sheet.py (the contact sheets), page_nav.py (the index of
shots and scenes), page_assets.py (the stylesheet, the script and the Content-Security-Policy).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..count_words import counted
from ..errors import InputError
from ..shell_words import quote_word
from .contact_sheet import FLAG_TEXT, contact_sheet_pngs
from .export import cut_takes, shown_take, standing_takes
from .page_assets import CSS, SCRIPT, csp
from .page_files import (
    REVIEW_DIR,
    THUMBS_DIR,
    clear_dead_temporaries,
    page_folder,
    remove_unused_sheets,
    remove_unused_thumbnails,
    sheet_name,
    thumbnail,
    write_page_file,
)
from .page_nav import group_ids, index_legend, nav_html, scene_groups, scene_mark
from .pick_standing import DAMAGED_SHORT, select_shown
from .picks_file import is_seen_key, seen_key
from .print_boards import print_css
from .qa_findings import in_plain_words
from .runs import Run, Shot, Take


@dataclass
class PageResult:
    index: Path
    contact_sheet: Path  # the first sheet
    takes: int
    shots: int
    thumbnails_made: int
    problems: list[str]
    contact_sheets: list[Path] = field(default_factory=list)  # every sheet, in shot order


def write_review(run: Run, to: Path | None = None) -> PageResult:
    """Write the page, the thumbnails it needs and the contact sheet into ``OUT/review/`` (``run``: the folder as
    ``idcli.review.runs.load_run(OUT)`` reads it; anything else raises ``InputError``, as ``export_animatic``).
    ``to``: write them into that folder instead and nothing into OUT (``review --to``: idcli/review/page_elsewhere.py;
    a folder holding other files is refused before anything is written)."""
    if not isinstance(run, Run):
        from ..arguments import shown

        raise InputError(f"run={shown(run)}: give the output folder as idcli.review.runs.load_run(OUT) reads it",
                         field="run")
    if any(shot.id.lower() == REVIEW_DIR for shot in run.shots):  # one folder where case is ignored (macOS)
        raise InputError(f"a shot is named '{REVIEW_DIR}', the folder the review page is written to; rename it")
    if to is not None:
        from .page_elsewhere import check_page_folder, make_page_folder

        check_page_folder(to, run.root)
        make_page_folder(to)
    problems = list(run.problems)
    clear_dead_temporaries(run.root, to)
    thumbs: dict[str, str] = {}  # image path -> thumbnail path relative to review/
    sizes: dict[str, tuple[int, int]] = {}  # image path -> the thumbnail's width and height in pixels
    made = 0
    for take in run.takes:
        try:
            name, new, sizes[take.image] = thumbnail(run.root, take, to)
        except InputError as exc:  # the image cannot be read: the take still shows, without a picture
            problems.append(f"{take.image}: {exc}")
            continue
        thumbs[take.image] = f"{THUMBS_DIR}/{name}"
        made += new
    remove_unused_thumbnails(run.root, {Path(t).name for t in thumbs.values()}, to)
    sheets = [write_page_file(run.root, to, sheet_name(i), png)
              for i, png in enumerate(contact_sheet_pngs(run, thumbs, page_folder(run.root, to)))]
    remove_unused_sheets(run.root, {p.name for p in sheets}, to)  # an earlier, longer cut's last sheets
    index = write_page_file(run.root, to, "index.html",
                            page_html(run, thumbs, problems, len(sheets), sizes, to=to).encode("utf-8"))
    return PageResult(index, sheets[0], len(run.takes), len(run.shots), made, problems, sheets)


# -- the page --------------------------------------------------------------------------------------


def _href(relpath: str, base: str = "../") -> str:
    """A link from the page to a file of the output folder: from review/index.html ``../``, from ``--to``'s
    DIR the relative way there (page_elsewhere.links_base)."""
    # each part's bytes as the file system holds them: a folder not named in UTF-8 (its bytes surrogate-escaped)
    # is linked by them (%E9), where quoting the text raised UnicodeEncodeError
    return "".join(quote(os.fsencode(part)) + "/" for part in base.rstrip("/").split("/")) + "/".join(
        quote(os.fsencode(part)) for part in relpath.split("/"))


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
        # A plate image's untouched people (QA records them as plate faces) are not a missing match, and a face QA
        # could not embed was compared with no one: neither is an unmatched face ("—").
        who = face.get("character") or ("plate's own" if face.get("plate_face")
                                        else "not embedded" if face.get("unusable") else "—")
        rows.append(f"<tr><td>{i}</td><td>{_e(who)}</td>"
                    f"<td>{_figure(face.get('cosine'))}</td><td>{_figure(face.get('area_share'))}</td>"
                    f"<td class=\"box\">{_e(box)}</td></tr>")
    table = ("<table class=\"faces\"><caption>Faces found</caption><thead><tr><th scope=\"col\">#</th>"
             "<th scope=\"col\">character</th><th scope=\"col\">likeness</th><th scope=\"col\">area</th>"
             f"<th scope=\"col\">box</th></tr></thead><tbody>{''.join(rows)}</tbody></table>") if rows else \
        "<p>No face found.</p>"
    leak = qa.get("leakage")
    return f"{table}<p class=\"leak\">Leakage {_figure(leak)}</p>"


def _take_html(shot: Shot, take: Take, thumbs: dict[str, str], sizes: dict[str, tuple[int, int]],
               board: bool = False, shot_prompt: str | None = None, orphan: bool = False,
               removed: bool = False, holding: tuple[int, ...] = (), select: Take | None = None,
               base: str = "../") -> str:
    # ``select``: the take marked as the select (export.shown_select: the one holding the image picked when the
    # shot's takes shifted since the pick, as the animatic and deliver have it). ``holding``: then the takes holding
    # that image (pick_standing.takes_holding); the picked take names them, each says which image it is
    selected = select is take
    badges = []
    if orphan:  # beyond the shot's takes in the shot list: idcli select refuses it, so the page offers no pick
        badges.append('<span class="badge warn">beyond the shot\'s takes: not pickable</span>')
    if selected:
        badges.append('<span class="badge sel">selected</span>')
        if removed:  # picked before the shot left the shot list: export leaves it out of the animatic
            badges.append('<span class="badge warn">not in the shot list: left out of the animatic</span>')
        elif shot.selection_damaged:  # in the notes' words (pick_notes.py), not taken for a re-render
            badges.append(f'<span class="badge warn">{_e(DAMAGED_SHORT)}</span>')
        elif shot.selection_stale and not holding:
            badges.append('<span class="badge warn">re-rendered since picked</span>')
    if shot.selected is take and holding:  # the take picked, no longer holding the image picked
        now = f"take{'s' if len(holding) > 1 else ''} {' and '.join(map(str, holding))}"
        what = "re-rendered since picked" if shot.selection_stale else "picked"
        badges.append(f'<span class="badge warn">{what}: the picked image is {now} now</span>')
    elif take.take in holding and shot.picked_take is not None:
        badges.append(f'<span class="badge">the image picked as take {shot.picked_take}</span>')
    badges += [f'<span class="badge flag flag-{_e(f)}">{_e(FLAG_TEXT.get(f, f))}</span>' for f in take.flags]
    if take.qa is not None and not take.flags and not take.qa_error:
        badges.append('<span class="badge ok">QA passed</span>')
    # What the flags mean for this take, in words: who is not in it, whose face is not theirs, whom a face looks
    # like instead (the badges say only that something failed; the table's figures need reading)
    said = in_plain_words(take.qa) if take.qa is not None and not take.qa_error else []
    said_html = ('<ul class="qa-said">' + "".join(f"<li>{_e(line)}</li>" for line in said) + "</ul>") if said else ""
    if take.random_weights:  # a tiny/bench preset's noise, or identities from the synthetic face models
        badges.append('<span class="badge warn random">random weights: not for review</span>')
    thumb = thumbs.get(take.image)
    alt = f"{take.shot_id} take {take.take}"
    # the picture names who is in it: a screen reader's list of images (or of links: the thumbnail's is its picture)
    # tells a two-shot from a close-up without reading the facts below (the take's label stays short)
    seen = f"{alt}: {', '.join(take.characters)}" if take.characters else alt
    # Its size in the markup: without one, an image not loaded yet is a line of alt text, so the page jumps
    # as thumbnails arrive (the take being read moves down) and a jump to a shot lands short of it.
    size = sizes.get(take.image)
    dimensions = f' width="{size[0]}" height="{size[1]}"' if size else ""
    # The board's picture (one a shot) loads with the page, the other takes' as they are scrolled to: a browser
    # prints what it has loaded, and Chromium 150 printed none of the lazy pictures not yet scrolled to (a
    # 14-board PDF held 0–3 pictures), so a board printed right after the page opened had an empty frame.
    loading = "" if board else ' loading="lazy"'
    picture = (f'<img src="{_e(thumb)}" alt="{_e(seen)}"{dimensions}{loading} decoding="async">' if thumb
               else f'<span class="noimg">{_e(alt)}: image unreadable</span>')
    # The prompt the shot's takes share is shown once, with the shot (shot_prompt); a take's own otherwise.
    facts: list[tuple[str, Any]] = ([] if take.prompt == shot_prompt else [("prompt", take.prompt)]) + [
        ("characters", ", ".join(take.characters) or "—"), ("expression", take.expression or "—"),
        ("framing", take.framing or "—")]
    # seed and method last: the printed board leaves off the last two facts (print_boards.py)
    facts += [("seed", take.seed if take.seed is not None else "—"), ("method", take.method or "—")]
    facts_html = "".join(f'<dt{" class=prompt" if k == "prompt" else ""}>{_e(k)}</dt><dd>{_e(v)}</dd>'
                         for k, v in facts)
    strip = (f'<a class="strip" href="{_href(take.mask_strip, base)}"><img src="{_href(take.mask_strip, base)}" '
             f'alt="{_e(alt)} fusion mask over the steps" loading="lazy"></a>') if take.mask_strip else ""
    classes = "take" + (" selected" if selected else "") + (" flagged" if take.flags else "")
    board_attr = ' data-board="1"' if board else ""  # the take the shot's printed board shows (print_boards.py)
    orphan_attr = ' data-orphan="1"' if orphan else ""  # the page's script makes no pick button on it
    # data-key: the take's job key as an exported pick carries it (picks_file.py: seen_key)
    return (f'<article class="{classes}" id="take-{_e(take.stem)}" data-take="{take.take}"{board_attr}{orphan_attr} '
            f'data-key="{_e(seen_key(take.job_key))}" aria-label="{_e(alt)}">'
            f'<a class="thumb" href="{_href(take.image, base)}">{picture}</a>'
            f'<h3>Take {take.take}</h3><p class="badges">{"".join(badges)}</p>{said_html}'
            f"<dl>{facts_html}</dl>{qa_html(take)}{strip}"
            f'<p class="links"><a href="{_href(take.image, base)}">full image</a> · '
            f'<a href="{_href(take.sidecar, base)}">sidecar</a></p></article>')


def _shot_html(number: int, shot: Shot, thumbs: dict[str, str], sizes: dict[str, tuple[int, int]],
               listed: bool = False, live: set[tuple[str, int]] | None = None, base: str = "../") -> str:
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
    removed = listed and shot.entry is None
    # the select as the animatic shows it and deliver sends it: the take holding the image picked, when the shot's
    # takes shifted since the pick (pick_standing.select_shown); a removed shot's as picked (left out of the cut)
    shown, holding = select_shown(shot, cut_takes(shot, live if listed else None)) if not removed else (None, [])
    select = shown if holding else shot.selected
    body = ("".join(_take_html(shot, t, thumbs, sizes, t is board, prompt, t.take in orphan_takes, removed,
                               tuple(holding), select, base)
                    for t in shot.takes)
            or '<p class="empty">Not rendered yet.</p>')
    attrs = ' data-flagged="1"' if shot.all_flagged else ""
    if shot.picked_take is not None:  # the select idcli select recorded: the page's picks start from it
        # (a take not rendered now too, its image file deleted: its key lets the script find the take holding it)
        attrs += f' data-selected="{shot.picked_take}"'
        recorded = shot.picked_key if isinstance(shot.picked_key, str) else ""  # a damaged record: no key to show
        picked_as = seen_key(recorded) if (shot.selection_stale or shot.selected is None) and recorded else ""
        if is_seen_key(picked_as):  # picked as another render of the take: exported as picked, not as rendered now
            attrs += f' data-selected-key="{picked_as}"'
        if shot.selection_damaged:  # no key to say which render was picked: the script asks to look again
            attrs += f' data-selected-damaged="{_e(DAMAGED_SHORT)}"'
    if removed:  # taken out of the shot list: idcli select refuses its takes, so no picks
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


def _qa_key(takes: list[Take]) -> str:
    """What the page's QA figures measure, said once in the header (when a take has QA): a director reads "likeness",
    not "cosine", and the thresholds the run flagged by."""
    checked = [t.qa for t in takes if t.qa is not None and not t.qa_error]
    if not checked:
        return ""
    limits = {(str(limit.get("low_identity")), str(limit.get("leakage"))) for limit in
              (qa.get("thresholds") for qa in checked) if isinstance(limit, dict)}
    low, leak = next(iter(limits)) if len(limits) == 1 else ("its threshold", "its threshold")
    # folded: the header stays short on a laptop's screen, and the summary line is one Tab stop away
    return ("<details class=\"qa-key\"><summary>What identity QA's marks and figures mean</summary><p>Identity QA "
            "compares each face found with the selfies of the characters the shot names. <b>Likeness</b> runs from −1 "
            "to 1: two photos of one person score about 0.4–0.8 with real face models, two people 0–0.2. Flagged: no "
            f"face, a character with no face, a face whose likeness to its character is under {_e(low)} (low "
            "identity), a face whose likeness to a character it was not taken for is "
            f"{_e(leak)} or more (leakage). Under each flagged take, what was found, in words.</p></details>")


def _sheet_links(sheets: int) -> str:
    """The header's link to the contact sheet, or one link per sheet (numbered) when there are several."""
    if sheets <= 1:
        return '<a href="contact-sheet.png">contact sheet</a>'
    return "contact sheets " + " ".join(f'<a href="{sheet_name(i)}">{i + 1}</a>' for i in range(sheets))


def page_html(run: Run, thumbs: dict[str, str], problems: list[str], sheets: int = 1,
              sizes: dict[str, tuple[int, int]] | None = None, to: Path | None = None) -> str:
    from ..provenance import now

    takes = run.takes
    flagged = sum(1 for t in takes if t.flags)
    base, reviews = "../", ""
    if to is not None:  # review --to: the links lead back into OUT, and the page says which folder it reviews
        from .page_elsewhere import links_base

        base = links_base(run.root, to)
        shown = os.fsencode(run.root.resolve()).decode("utf-8", "backslashreplace")  # a name not in UTF-8: \\xe9
        reviews = f'<p class="reviews">Reviews the output folder <code>{_e(shown)}</code></p>'
    out_words = "OUT" if to is None else quote_word(str(run.root.resolve()))  # for whoever she sends it to
    groups = scene_groups(run.shots)
    # the takes that stand (as the notes and the animatic have them): the run manifest's, which idcli select refuses
    # picks outside of, or those of the shot list given with --shots, whose order the page follows
    live = standing_takes(run)
    nav = nav_html(run.shots, groups, listed=run.order is not None, live=live)
    problems_html = ("<section class=\"problems\" role=\"alert\"><h2>Skipped</h2><ul>"
                     + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul></section>") if problems else ""
    sizes = sizes or {}
    starts = {start: (anchor, label, count) for (label, start, count), anchor in zip(groups, group_ids(groups),
                                                                                     strict=True)}
    shots = "".join((scene_mark(*starts[i]) if i in starts else "")
                    + _shot_html(i + 1, s, thumbs, sizes, listed=run.order is not None, live=live, base=base)
                    for i, s in enumerate(run.shots))
    written = now().strftime('%Y-%m-%d %H:%M UTC')
    legend = index_legend(run.shots, bool(groups), listed=run.order is not None)  # the index's tooltips, for a finger
    summary = (f"{counted(len(run.shots), 'shot')} · {counted(len(takes), 'take')} · {flagged} flagged by identity "
               f"QA · written {written}")
    random = sum(1 for t in takes if t.random_weights)
    if random:
        summary += (f" · {random} of {counted(len(takes), 'take')} were rendered with random-weight test models "
                    "(tiny presets or synthetic face models): not for review")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp()}">
<title>{_e(run.project)} — idcli review</title>
<style>{CSS}{print_css(run.project, written, random)}</style>
</head>
<body data-run="{_e(run_key(run))}" data-project="{_e(run.project)}">
<a class="skip" href="#shots">Skip to the shots</a>
<header>
<h1>{_e(run.project)}</h1>
<p class="summary">{_e(summary)}</p>{reviews}{_qa_key(takes)}
<p class="keys"><span class="key-help">Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous shot · <kbd>f</kbd> next shot
with every take flagged · <kbd>1</kbd>–<kbd>9</kbd> pick that take of the shot (again: unpick), <kbd>0</kbd> no pick,
<kbd>s</kbd> pick the take with the focus · <kbd>e</kbd> to export picks · </span>{legend}{_sheet_links(sheets)}</p>
{_PICKS_BAR.replace("idcli select OUT", "idcli select " + _e(out_words))}
{nav}
</header>
{problems_html}
<main id="shots">{shots}</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


# -- picks: the director's, kept in the browser, exported as picks.json ---------------------------------

# Filled by the script: the count of picks, the export (a download, and the same text to copy), and where the picks
# are kept (the script says so instead when the browser keeps none). Without the script (printed, or a browser that
# blocks it) the page shows the selects alone.
_PICKS_BAR = """<section class="picks" aria-label="Picks" hidden>
<p><span class="pick-count" aria-live="polite"></span>
<button type="button" class="export-picks">export picks</button>
<button type="button" class="forget-picks">forget changes made here</button></p>
<p class="pick-where">Picks are kept in this browser on this computer, not in the folder: <b>export picks</b> gives
the <code>picks.json</code> to send the artist.</p>
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
    # surrogateescape: a folder not named in UTF-8 hashed by its bytes (strict UTF-8 raised; the key of every other
    # folder is unchanged, so picks kept in a browser are found again)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]
