"""Model folders as users keep them (a tour of the adapters and models people bring): linked components,
their own pickled adapters, face-model folders holding two packs, model folders that need their own code."""

from __future__ import annotations

import shutil
from pathlib import Path

from idcli.models import resolve_model
from idcli.shotlist import ModelSpec


def test_a_component_linked_from_a_shared_folder_is_keyed_by_its_files(tiny_engines, tmp_path: Path) -> None:
    """Fine-tunes that share a component keep it once and link it (`unet -> ../shared/unet`): the content hash
    skipped linked folders (Path.rglob does not enter them), so changing the linked weights kept every job key and
    a rerun re-rendered nothing. A linked component now counts as a copy of it would."""
    tiny = tiny_engines("tiny-sd").pipe
    copy = tmp_path / "copy"
    tiny.save_pretrained(copy, safe_serialization=True)
    shared = tmp_path / "shared"
    shared.mkdir()
    linked = tmp_path / "linked"
    shutil.copytree(copy, linked)
    shutil.move(linked / "unet", shared / "unet")
    (linked / "unet").symlink_to(shared / "unet", target_is_directory=True)
    (shared / "unet" / "loop").symlink_to(linked, target_is_directory=True)  # a link back up is not followed
    (linked / "unet" / "loop").resolve(strict=True)
    key = resolve_model(ModelSpec(preset="sd15", id=str(copy)), tmp_path, "float32").content_hash
    assert resolve_model(ModelSpec(preset="sd15", id=str(linked)), tmp_path, "float32").content_hash == key
    weights = shared / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x80\x3f")  # one weight changed
    assert resolve_model(ModelSpec(preset="sd15", id=str(linked)), tmp_path, "float32").content_hash != key
