"""A take is any size its shot list allowed, 704x64 (11:1) included: every reader of committed takes (the
storyboard page's thumbnails, the animatic movie, ``idcli qa``, reproduce's pixel comparison, a re-render's
hand-edit check) reads it through ``load_take_rgb``, never the selfie reader that refuses more than 10:1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.identity.images import ImageError, load_rgb, load_take_rgb
from idcli.superseded import is_whole_image

WIDE = """\
version: 1
project: wide
model: {preset: tiny-sd}
shots:
  - {id: sh010, prompt: "a long corridor", size: 704x64}
"""


def test_a_take_wider_than_a_selfie_may_be_is_read_as_a_take(tmp_path: Path) -> None:
    path = tmp_path / "strip.png"
    Image.fromarray(np.full((64, 704, 3), 90, np.uint8)).save(path)
    with pytest.raises(ImageError, match="too elongated for a selfie"):
        load_rgb(path)
    assert load_take_rgb(path).shape == (64, 704, 3)
    assert is_whole_image(path)  # a hand-edited strip is a whole image, not a damaged one to render again


def test_a_wide_take_gets_its_thumbnail_and_its_place_in_the_movie(tmp_path: Path) -> None:
    shots = tmp_path / "shots.yaml"
    shots.write_text(WIDE)
    out = tmp_path / "out"
    report = idcli.render(str(shots), out, device="cpu", qa=False)
    assert [job.status for job in report.jobs] == ["rendered"]
    page = CliRunner().invoke(app, ["review", str(out)])
    assert page.exit_code == 0, page.output
    assert "elongated" not in page.output and len(list((out / "review" / "thumbs").glob("sh010_t1-*.jpg"))) == 1
    pytest.importorskip("av")
    movie = CliRunner().invoke(app, ["export", str(out), "--movie", str(tmp_path / "a.mp4")])
    assert movie.exit_code == 0, movie.output
    assert (tmp_path / "a.mp4").stat().st_size > 0
