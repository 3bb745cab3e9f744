"""Measure the storyboard page of an output folder in headless Chromium, as a director's laptop opens it.

python tools/measure_review_page.py OUT [--runs 3] [--page index.html] [--chromium /usr/bin/chromium]

Copies OUT/review/index.html to OUT/review/measure.html with a recorder script injected before the page's
Content-Security-Policy (the page itself ships no hooks), opens it from file:// in a 1280×900 window and
prints, per run and as medians: the page's bytes, first paint and first contentful paint, the load event
(all from the Performance API, ms after navigation start), the images with pixels by the load event and the
bytes of their files (what the browser read for pictures: from a network share, what crossed the network), the
lazy images within a desktop browser's fetch distance of the first screen, the images in the page, the JS
heap in use (performance.memory, precise) and the wall time of the Chromium process. docs/performance.md "At film
scale" records its figures.

Headless Chromium turns lazy image loading off (every `loading="lazy"` image loads at once, as if the page
had none); a desktop browser has it on, so the measurement turns it back on (`--blink-settings=
lazyLoadEnabled=true`). `--page NAME` measures another page in OUT/review/ (an earlier page kept for a
before/after comparison).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote

RECORDER = """<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    var nav = performance.getEntriesByType('navigation')[0] || {};
    var paint = {};
    performance.getEntriesByType('paint').forEach(function (p) { paint[p.name] = p.startTime; });
    // file:// loads leave no resource-timing entries: an image fetched by the load event has pixels
    var images = Array.prototype.filter.call(document.images, function (i) { return i.naturalWidth > 0; });
    var m = performance.memory || {};
    // what a desktop browser fetches at once: lazy images within its distance of the first screen (1,250 px
    // on a fast connection, 2,500 px on a slow one); an image without a size is 0 px tall until it loads
    // (from the top of the page, and once scrolled to the first shot, past the index)
    var first = document.querySelector('section.shot');
    var near = function (px, from) { return Array.prototype.filter.call(document.images, function (i) {
      return i.getBoundingClientRect().top - from < window.innerHeight + px; }).length; };
    var shotTop = first ? first.getBoundingClientRect().top : 0;
    document.documentElement.setAttribute('data-measure', JSON.stringify({
      first_paint_ms: paint['first-paint'], first_contentful_paint_ms: paint['first-contentful-paint'],
      load_ms: nav.loadEventStart, dom_content_loaded_ms: nav.domContentLoadedEventStart,
      image_requests_at_load: images.length, lazy_images_in_reach_fast: near(1250, 0),
      lazy_images_in_reach_slow: near(2500, 0), at_first_shot_in_reach_fast: near(1250, shotTop),
      at_first_shot_in_reach_slow: near(2500, shotTop), first_shot_top_px: shotTop,
      images_in_page: document.images.length,
      loaded_srcs: images.map(function (i) { return i.getAttribute('src'); }),
      js_heap_mb: m.usedJSHeapSize ? m.usedJSHeapSize / 1048576 : null,
      dom_nodes: document.getElementsByTagName('*').length}));
  }, 0);
});
</script>"""


def _chromium(chromium: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1280,900", "--blink-settings=lazyLoadEnabled=true",
         "--enable-precise-memory-info",
         *args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300, check=False)


def measure_once(chromium: str, page: Path, profile: Path) -> dict:
    started = time.perf_counter()
    done = _chromium(chromium, page, profile)
    wall = time.perf_counter() - started
    found = re.search(r"data-measure=\"([^\"]*)\"", done.stdout)
    if not found:
        raise SystemExit(f"no measurement in Chromium's output: {done.stderr[-1500:]}")
    figures = json.loads(found.group(1).replace("&quot;", '"'))
    figures["chromium_wall_s"] = round(wall, 2)
    # the bytes the browser read for pictures by the load event: the files of the images with pixels (file://
    # leaves no transfer sizes to read in the page; each file counts once, as the browser fetches it once)
    srcs = set(figures.pop("loaded_srcs", []))
    figures["image_bytes_at_load"] = sum(f.stat().st_size for s in srcs if (f := page.parent / unquote(s)).is_file())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page", default="index.html")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    index = args.out / "review" / args.page
    text = index.read_text("utf-8")
    probe = index.with_name("measure.html")  # same folder: every relative link is the page's own
    probe.write_text(text.replace("<head>", "<head>" + RECORDER, 1), "utf-8")
    runs = []
    try:
        with tempfile.TemporaryDirectory() as profile:
            for _ in range(args.runs):
                runs.append(measure_once(args.chromium, probe, Path(profile)))
                print(json.dumps(runs[-1]))
    finally:
        probe.unlink(missing_ok=True)
    keys = {key: None for r in runs for key in r}  # a run may lack a figure (no paint entry): the rest count
    medians = {key: statistics.median(found) if (found := [r[key] for r in runs if r.get(key) is not None]) else None
               for key in keys}
    print(json.dumps({"page_bytes": len(text.encode("utf-8")), "runs": len(runs), "median": medians}))


if __name__ == "__main__":
    main()
