"""Printed storyboards: the review page's print stylesheet (docs/review.md, "Printing boards").

A director or an AD prints ``OUT/review/index.html`` from the browser to paper or PDF. On paper each shot is
one board — the take that stands for it (``export.shown_take``, as in the animatic; with the page's script, the take
the director picked on the page, marked as not recorded yet), the shot id, duration, badges
(selected, QA flags, random weights), prompt, characters, expression and framing — six to a landscape page (3 × 2) in
shot-list order, with the project and the page number in the page's margins. Screen-only parts (the index, the key
help, links, the faces table, the other takes) are left off. It is CSS only (``@media print`` and ``@page``): the
page stays one self-contained file under its Content-Security-Policy, and nothing on screen changes.
"""

from __future__ import annotations

from ..count_words import counted


def css_string(text: str) -> str:
    """``text`` as a CSS string literal. Every character but ASCII letters, digits and spaces is written as a
    six-digit escape: a project name from a shot list can then neither end the string nor the ``<style>``
    element (``</style>``), whatever it holds."""
    return '"' + "".join(c if (c.isascii() and c.isalnum()) or c == " " else f"\\{ord(c):06x}" for c in text) + '"'


def print_css(project: str, written: str, random_takes: int) -> str:
    """The print stylesheet: boards six to a landscape page, the project and page number in the margins.

    ``@page`` margin boxes (``@top-left`` …) are supported by Chromium since version 131; a browser without
    them prints the boards alone. ``size: landscape`` keeps the printer's paper (A4 or Letter)."""
    note = f"{counted(random_takes, 'take')} rendered with random-weight test models: not for review"
    warning = f"@bottom-left{{content:{css_string(note)};color:#a00;font-weight:700}}" if random_takes else ""
    return f"""
@page{{size:landscape;margin:13mm 10mm 12mm;
@top-left{{content:{css_string(project)};font:600 10pt system-ui,sans-serif}}
@top-right{{content:{css_string("storyboards · written " + written)};font:8pt system-ui,sans-serif;color:#555}}
@bottom-right{{content:"page " counter(page) " of " counter(pages);font:8pt system-ui,sans-serif;color:#555}}
{warning}}}
@media print{{
:root{{color-scheme:light;--text:#000;--muted:#555;--flag:#b3261e;--ok:#1e6b3a;--sel:#7a5c00;--accent:#000}}
html{{scroll-behavior:auto}}
body{{background:#fff;color:#000;font:8pt/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}}
/* screen-only chrome: the index, key help, picks, contact-sheet links, the problems list, scene marks, and on
each take what QA found in words and all that follows its facts (faces table or "No face found", leakage, mask
strip, links); only the board's take of each shot is printed */
.skip,header,.problems,.scene,.take:not([data-board]),.take>dl~*,.qa-said,.pick,.pick-note{{display:none}}
/* the last two facts (seed, method: see _take_html's facts; the prompt is there only when the take's own) are for
the screen */
.take dl>dt:nth-last-of-type(-n+2),.take dl>dd:nth-last-of-type(-n+2){{display:none}}
main{{padding:0;display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:4mm 6mm}}
.shot{{content-visibility:visible;contain-intrinsic-size:none;margin:0;padding:0;border:0;break-inside:avoid;
display:flex;flex-direction:column}}
/* the prompt the shot's takes share (page.py, shared_prompt) follows the board's take, as its own would; a board
take with a prompt of its own prints that one */
.shot-prompt{{order:1;margin:0}}.shot:has(.take[data-board] dt.prompt) .shot-prompt{{display:none}}
/* a long shot id (up to 64 characters, no space) starts on its number's line and breaks where the line ends: broken
at the space after the number, it took a line more, which on A4 sent a row of boards to the next page */
.shot h2{{font-size:10pt;margin:0 0 1mm;overflow-wrap:anywhere;word-break:break-all}}.shot h2 .meta{{word-break:normal}}
.shot h2 .meta{{font-size:8pt;margin-left:2mm}}
.takes{{display:block}}
.take,.take.selected,.take.picked,.take.flagged{{background:none;border:0;padding:0;border-radius:0;box-shadow:none}}
.thumb img{{width:100%;height:48mm;object-fit:contain;border-radius:0;background:none;outline:.2mm solid #bbb}}
.take h3{{display:inline;font-size:8pt;margin:0 2mm 0 0}}
.badges{{display:inline;margin:0;min-height:0}}
.badge{{background:none;color:#000;border:.2mm solid currentColor;border-radius:1mm;padding:0 1mm;margin:0 1mm 0 0;
font-size:7pt;font-weight:600}}
.badge.flag{{background:none;color:var(--flag)}}.badge.ok{{background:none;color:var(--ok)}}
.badge.sel{{background:none;color:var(--sel)}}.badge.warn{{background:none;color:#5b2a9e}}
.badge.random{{color:#a00;border-width:.4mm}}
/* the board of a take picked on the page, not recorded yet (the page's script moves data-board to it), stamped on
its picture's corner: after the take's marks (two QA flags, or the random weights' one) it took a line more, and on A4
and Letter sent the second row of boards to the next page. Taken out of the flow at its place (no top or left: the
picture's corner), it takes no room, and the board keeps no positioned box (a PDF's text stays in the boards' order) */
.take.picked-here::before{{content:"picked here, not recorded yet";position:absolute;margin:1mm 0 0 1mm;padding:0 1mm;
font-size:7pt;font-weight:600;color:var(--sel);background:#fff;border:.2mm solid currentColor;border-radius:1mm}}
/* a shot of the list not rendered yet keeps its place on the wall */
.empty{{height:48mm;margin:0;display:flex;align-items:center;justify-content:center;outline:.2mm dashed #bbb}}
dl{{font-size:7.5pt;margin:1mm 0 0;gap:0 2mm}}
dd{{overflow-wrap:anywhere}}
a{{color:inherit;text-decoration:none}}
}}
"""
