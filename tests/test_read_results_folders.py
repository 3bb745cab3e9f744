"""``idcli.read_results()`` on a folder that is not a render's output folder says so instead of returning [].

A pipeline script reading a delivery folder (docs/delivery.md), or a typo'd folder, got an empty list and went
on as if nothing had been rendered. An output folder with no take in it (yet) still reads as [].
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import render_on_cpu

import idcli
from idcli.store import OutputStore

SHOTS = """\
version: 1
project: read-results
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
shots:
  - {id: sh010, prompt: "an empty street at night, rain", seeds: [42]}
"""


def test_a_delivery_folder_is_named_with_what_to_read_instead(write_shotlist, tmp_path: Path,
                                                              engine_factory) -> None:
    out, dest = tmp_path / "out", tmp_path / "client"
    render_on_cpu(write_shotlist(SHOTS), out, engine_factory, qa=False)
    assert [(r["shot_id"], r["take"]) for r in idcli.read_results(out)] == [("sh010", 1)]
    idcli.deliver(out, dest)
    with pytest.raises(idcli.InputError) as caught:
        idcli.read_results(dest)
    message = str(caught.value)
    assert "a delivery folder" in message and "delivery.json" in message and "output folder" in message, message
    assert caught.value.exit_code == idcli.EXIT_INVALID_INPUT


def test_a_folder_idcli_never_rendered_into_is_refused(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "holiday").mkdir(parents=True)
    (photos / "holiday" / "beach.json").write_text('{"camera": "x"}')
    with pytest.raises(idcli.InputError, match=r"photos: not an idcli output folder"):
        idcli.read_results(photos)


def test_an_empty_output_folder_reads_as_no_takes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputStore(out).session():  # what a render holds first: the folder and its .idcli state
        pass
    assert list(idcli.read_results(out)) == []
