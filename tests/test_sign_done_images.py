"""``render --sign`` over done images: which stay unsigned is told from their sidecars, reading an image only
where its sidecar was rebuilt after a kill (run_signing.note_unsigned).

It read every done image whose sidecar had no ``c2pa`` block, whole, to look for a manifest: 2,000 unsigned
images cost every signing resume 1.6–3.8 s (docs/performance.md, "At film scale: resume, restore, sign"). The commit
path records ``c2pa`` in each sidecar it signs for, and recovery reads it back from the image's manifest (since
2026-12-01), so only a ``recovered`` sidecar without such a block (rebuilt by an earlier idcli) needs the image's word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import NotesKept, render_on_cpu

from idcli import safeio

SHOTS = """\
version: 1
project: sign-done
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
shots:
  - {id: sh010, prompt: "an empty street at night, rain", seeds: [42]}
  - {id: sh020, prompt: "a harbour at dawn", seeds: [7]}
"""


@pytest.fixture
def image_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The PNGs read whole through safeio.read_regular (what the unsigned check read each image with)."""
    reads: list[Path] = []
    real = safeio.read_regular

    def counting(path: Path, limit: int, *, follow_links: bool = True) -> bytes:
        if str(path).endswith(".png"):
            reads.append(Path(path))
        return real(path, limit, follow_links=follow_links)

    monkeypatch.setattr(safeio, "read_regular", counting)
    return reads


def test_unsigned_done_images_are_told_from_their_sidecars(write_shotlist, tmp_path: Path, engine_factory,
                                                           signing_env, image_reads: list[Path]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, sign=False)
    progress = NotesKept()
    image_reads.clear()
    report = render_on_cpu(shots, out, engine_factory, sign=True, progress=progress)
    assert report.count("skipped") == 2
    assert [n for n in progress.notes if "stay unsigned" in n] == [
        "note: 2 image(s) already done were rendered without signing and stay unsigned (sh010_t1, sh020_t1); "
        "force=True, only='SHOT' renders them again, signed"], progress.notes  # as Python names them
    assert image_reads == [], "no image read to learn what its sidecar says"


def test_a_signed_image_whose_sidecar_was_rebuilt_still_counts_as_signed(write_shotlist, tmp_path: Path,
                                                                         engine_factory, signing_env,
                                                                         image_reads: list[Path]) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, sign=True)
    (out / "sh020" / "sh020_t1.json").unlink()  # as a kill between the image's and the sidecar's rename leaves it
    assert render_on_cpu(shots, out, engine_factory, sign=True).count("recovered") == 1
    # The rebuilt sidecar carries its c2pa block, read back from the image's manifest: it says so itself.
    sidecar_path = out / "sh020" / "sh020_t1.json"
    rebuilt = json.loads(sidecar_path.read_text())
    assert rebuilt["recovered"] and rebuilt["c2pa"]["signed"], rebuilt
    for reads in ([], ["sh020_t1.png"]):
        progress = NotesKept()
        image_reads.clear()
        report = render_on_cpu(shots, out, engine_factory, sign=True, progress=progress)
        assert report.count("skipped") == 2
        assert not [n for n in progress.notes if "stay unsigned" in n], progress.notes
        assert [p.name for p in image_reads] == reads, "a sidecar rebuilt without c2pa: its image says it is signed"
        # As an idcli before 2026-12-01 rebuilt it: no c2pa block.
        sidecar_path.write_text(json.dumps({k: v for k, v in rebuilt.items() if k != "c2pa"}))
