"""A link that leads back to itself in an output folder or a delivery folder (a loop of links, left by a sync tool or a
hand-made link gone wrong): ``idcli verify`` names it as the image nothing checks, where it stopped with ``internal
error: RuntimeError: Symlink loop from …`` (Python's ``Path.resolve`` raises on a loop; the system cannot read the
file either). The file's two parts: links that loop, and links that lead out.

A take reached through a link that leads out of the folder verify is given: the image itself linked to a file kept
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
project: link-loops
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 1}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42]}
"""
NOT_A_TAKE = ("not a take of this render (a take is SHOT/SHOT_tN.png beside its sidecar), so nothing checks where it "
              "came from: added, renamed or edited outside idcli?")
NOT_A_COPY = ("not a delivered copy (a copy is SHOT_takeN.png beside its sidecar, listed in delivery.json), so "
              "nothing checks where it came from: added, renamed or edited outside idcli?")


@pytest.fixture
def out(write_shotlist, tmp_path: Path, engine_factory) -> Path:
    folder = tmp_path / "out"
    render_on_cpu(write_shotlist(SHOTS), folder, engine_factory)
    assert verify_folder(folder).failed == 0
    return folder


def _problems(folder: Path) -> dict[str, list[str]]:
    return {check.image["path"]: check.problems for check in verify_folder(folder).images if not check.ok}


@pytest.mark.parametrize("name", ["frame.png", "street_t1.mask.png", "street_t2.png"],
                         ids=["an-image-name", "a-mask-name", "a-take-name"])
def test_a_link_loop_named_as_an_image_is_an_image_nothing_checks(out: Path, name: str) -> None:
    os.symlink(name, out / "street" / name)  # street/NAME -> street/NAME
    problems = _problems(out)
    if name == "street_t1.mask.png":  # named as the take's mask: idcli's own file by its name, as any mask is
        assert problems == {}
        return
    assert list(problems) == [f"street/{name}"]
    if name == "street_t2.png":  # named as a take: the take without its sidecar
        assert problems[f"street/{name}"][0].startswith("no sidecar beside it, so it cannot be checked")
    else:
        assert problems[f"street/{name}"] == [NOT_A_TAKE]


def test_a_take_whose_image_is_a_link_loop_fails_as_unreadable(out: Path) -> None:
    image = out / "street" / "street_t1.png"
    image.unlink()
    os.symlink(image.name, image)
    (problem, *_) = _problems(out)["street/street_t1.png"]
    assert "street/street_t1.png" in problem


def test_a_link_loop_in_a_delivery_folder_is_no_delivered_copy(out: Path, tmp_path: Path) -> None:
    from idcli.delivery import deliver

    dest = tmp_path / "dest"
    deliver(out, dest)
    os.symlink("loop.jpg", dest / "loop.jpg")
    assert _problems(dest) == {"loop.jpg": [NOT_A_COPY]}


@pytest.mark.parametrize("name", ["loop.png", "loop.jpg"], ids=["a-png", "another-image"])
def test_a_link_loop_in_a_flat_folder_is_an_image_that_fails(out: Path, tmp_path: Path, name: str) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for part in ("street_t1.png", "street_t1.json"):
        shutil.copy2(out / "street" / part, flat / part)
    os.symlink(name, flat / name)  # flat/NAME -> flat/NAME
    report = verify_folder(flat)
    assert [(check.image["path"], check.ok) for check in report.images] == [(name, False), ("street_t1.png", True)]


# -- a take reached through a link out of the folder ------------------------------------------------------------


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
