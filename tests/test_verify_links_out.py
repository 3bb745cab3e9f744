"""A take reached through a link that leads out of the folder verify is given: the image itself linked to a file kept
elsewhere (a deduplicating tool, a shared store), or its shot folder linked to one. The sidecar records the image
beside it as it should; ``idcli verify`` said ``its sidecar … records image.path 'street/street_t1.png', which leaves
the output folder: … edited by hand?``, blaming a sidecar nobody edited for a path that does not leave the folder.
It now says what does: a link. The take still fails (the folder does not hold it), as before."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_helpers import render_on_cpu

from idcli.verify import verify_folder

SHOTS = """\
version: 1
project: links-out
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 1}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42]}
"""


@pytest.fixture
def out(write_shotlist, tmp_path: Path, engine_factory) -> Path:
    folder = tmp_path / "out"
    render_on_cpu(write_shotlist(SHOTS), folder, engine_factory)
    assert verify_folder(folder).failed == 0
    return folder


def _problems(folder: Path) -> dict[str, list[str]]:
    return {check.image["path"]: check.problems for check in verify_folder(folder).images if not check.ok}


def test_a_take_linked_to_a_file_outside_the_folder_is_said_to_be_a_link(out: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    image = out / "street" / "street_t1.png"
    shutil.move(image, store / image.name)
    os.symlink(store / image.name, image)
    assert _problems(out) == {"street/street_t1.png": [
        f"image street/street_t1.png is outside the output folder, reached through a link (to {store / image.name}): "
        "the folder does not hold it, so it is not checked against its sidecar"]}


def test_a_shot_folder_linked_to_a_folder_outside_is_said_to_be_a_link(out: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    shutil.move(out / "street", store / "street")
    os.symlink(store / "street", out / "street")
    assert _problems(out) == {"street/street_t1.png": [
        f"image street/street_t1.png is outside the output folder, reached through a link (to "
        f"{store / 'street' / 'street_t1.png'}): the folder does not hold it, so it is not checked against its "
        "sidecar"]}


def test_a_delivered_copy_linked_to_a_file_outside_is_said_to_be_a_link(out: Path, tmp_path: Path) -> None:
    from idcli.delivery import deliver

    dest, store = tmp_path / "dest", tmp_path / "store"
    deliver(out, dest)
    store.mkdir()
    shutil.move(dest / "street_take1.png", store / "street_take1.png")
    os.symlink(store / "street_take1.png", dest / "street_take1.png")
    (problem, *_) = _problems(dest)["street_take1.png"]
    assert problem == (f"image street_take1.png is outside the delivery folder, reached through a link (to "
                       f"{store / 'street_take1.png'}): the folder does not hold it, so it is not checked against its "
                       "sidecar")
