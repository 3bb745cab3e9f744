"""Measure how much of the first screen the storyboard page's header takes, on the screens a director reviews on.

python tools/measure_review_header.py OUT [OUT ...] [--page index.html] [--keeps-no-picks]

Opens OUT/review/index.html (``--page NAME``: another page in OUT/review/, an earlier one kept for a before/after
comparison) from file:// in headless Chromium, driven as the browser tests drive it (tests/browser_pipe.py), with
the viewport set exactly through the DevTools protocol (``Emulation.setDeviceMetricsOverride``; a headless
``--window-size`` leaves a smaller viewport than it names): a 1366×768 laptop at 100 %, 125 %, 150 % and 200 % zoom
(its viewport in CSS px and the zoom as the device scale factor), 1280×720, and a 390×844 phone (mobile layout). Prints
one JSON line per page and screen: the viewport, the header's bottom at the top of the page (px) and the share of the
viewport it takes. ``--keeps-no-picks``: in a browser that lets no page save data (the profile's content setting, as
tests/test_review_picks.py sets it), where the picks bar's warning takes the place of where picks are kept.
docs/review.md ("On a short screen") records its figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_pipe import Browser  # type: ignore[import-not-found, unused-ignore]  # the tests' harness: no package needed

# name, CSS width, CSS height, device scale factor, mobile
SCREENS = [("1366x768 at 100 %", 1366, 768, 1.0, False), ("1366x768 at 125 %", 1093, 614, 1.25, False),
           ("1366x768 at 150 %", 910, 512, 1.5, False), ("1366x768 at 200 %", 683, 384, 2.0, False),
           ("1280x720", 1280, 720, 1.0, False),
           ("phone 390x844", 390, 844, 3.0, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="+")
    parser.add_argument("--page", default="index.html")
    parser.add_argument("--keeps-no-picks", action="store_true", help="a browser that lets no page save data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "profile"
        if args.keeps_no_picks:
            (profile / "Default").mkdir(parents=True)
            (profile / "Default" / "Preferences").write_text(json.dumps(
                {"profile": {"default_content_setting_values": {"cookies": 2}}}), "utf-8")  # 2: block
        measure(args.out, args.page, profile, Path(scratch))


def measure(outs: list[Path], name: str, profile: Path, downloads: Path) -> None:
    with Browser(profile, downloads) as browser:
        for out in outs:
            page = (out / "review" / name).resolve()
            for screen, width, height, scale, mobile in SCREENS:
                browser.send("Emulation.setDeviceMetricsOverride", page=True, width=width, height=height,
                             deviceScaleFactor=scale, mobile=mobile)
                browser.open(page.as_uri())
                header, viewport = browser.js("[document.querySelector('header').getBoundingClientRect().bottom,"
                                              "window.innerHeight]")
                print(json.dumps({"page": str(page), "screen": screen, "viewport": f"{width}x{viewport}",
                                  "header_px": round(header), "share": round(header / viewport, 2)}))


if __name__ == "__main__":
    main()
