"""The contact sheets: ``OUT/review/contact-sheet.png`` (with ``contact-sheet-2.png``, ``-3`` … past SHEET_SHOTS
shots), each shot's selected (else first) take drawn from its thumbnail, labelled with its shot id, take and QA
flags, a random-weight take marked across its picture's top.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .export import shown_select, shown_take, standing_takes
from .page_files import REVIEW_DIR
from .runs import Run, Shot

SHEET_CELL = 256
SHEET_COLUMNS = 4
# Shots per contact sheet: a film's 2,000 shots on one sheet made a PNG 152,008 pixels tall (161 megapixels,
# a decompression bomb to Pillow, a sliver in a browser). 100 shots keep a sheet under 15,000 pixels tall.
SHEET_SHOTS = 100
# QA's flags in the words the sheet and the page show them
FLAG_TEXT = {"no_face": "no face", "missing_character": "missing character", "low_identity": "low identity",
             "leakage": "leakage"}
# A random-weight take's mark, as the page, the printed boards and the animatic say it: the sheet is the file sent
# in chat and e-mail, where nothing else says its pictures are noise (a tiny preset's) or its faces no likeness.
RANDOM_MARK = "random weights: not for review"
RANDOM_MARK_BAND = 20  # pixels: the black band across the top of the picture that holds the mark
WARN_COLOUR = (255, 120, 90)


def contact_sheet_pngs(run: Run, thumbs: dict[str, str], folder: Path | None = None) -> list[bytes]:
    """The contact sheets of a run: SHEET_SHOTS shots each, in shot order (one sheet for a run without shots);
    ``folder``: where the thumbnails' paths lead from [default: OUT/review]."""
    return [contact_sheet_png(run, thumbs, run.shots[start:start + SHEET_SHOTS], folder)
            for start in range(0, max(1, len(run.shots)), SHEET_SHOTS)]


def contact_sheet_png(run: Run, thumbs: dict[str, str], shots: list[Shot] | None = None,
                      folder: Path | None = None) -> bytes:
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
            with Image.open((folder or run.root / REVIEW_DIR) / thumb) as picture:
                rgb = picture.convert("RGB")
                rgb.thumbnail((SHEET_CELL, cell_h))
                sheet.paste(rgb, (x + (SHEET_CELL - rgb.width) // 2, y + (cell_h - rgb.height) // 2))
        else:
            draw.rectangle((x, y, x + SHEET_CELL - 1, y + cell_h - 1), fill=(60, 60, 66))
            draw.text((x + 10, y + cell_h // 2 - 8), "not rendered", fill=(200, 200, 200), font=font)
        if take is not None and take.random_weights:
            draw.rectangle((x, y, x + SHEET_CELL - 1, y + RANDOM_MARK_BAND - 1), fill=(0, 0, 0))
            draw.text((x + 6, y + 3), _fit(draw, font, RANDOM_MARK, SHEET_CELL - 12), fill=WARN_COLOUR, font=font)
        after = "" if take is None else f"  t{take.take}" + ("  selected" if take is shown_select(shot, live) else "")
        text = _fit(draw, font, shot.id, SHEET_CELL - draw.textlength(after, font=font), middle=True) + after
        draw.text((x, y + cell_h + 4), text, fill=(240, 240, 240), font=font)
        if take is not None and take.flags:
            flags = ", ".join(FLAG_TEXT.get(f, f) for f in take.flags)
            draw.text((x, y + cell_h + 21), _fit(draw, font, flags, SHEET_CELL), fill=WARN_COLOUR, font=font)
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
