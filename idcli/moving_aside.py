"""The files at a take's final paths moved aside into ``OUT/.idcli/superseded/<shot_id>/`` before a new commit
(superseded.py tells the whole protocol): named before any rename (``aside_name``), moved image, mask, then sidecar,
so a kill at any instant leaves each file at one of its two paths, and a half a killed command left is rejoined. Also
whether an image is whole, which tells a take edited by hand (kept unless forced) from one damaged (rendered again).
Split from superseded.py."""

from __future__ import annotations

import os
from pathlib import Path

from . import safeio
from .interrupted_restore import kept_sidecar_of
from .kept_files import SUPERSEDED, free_name, is_regular, key_label, move_file, take_key


def is_whole_image(path: Path) -> bool:
    """Whether ``path`` is a regular file holding a complete image (decoded within a pixel budget).

    Tells an image edited by hand (whole: kept unless forced) from one damaged or cut short (rendered
    again). Only images whose bytes differ from their sidecar are ever asked about.
    """
    from .identity.images import ImageError, load_take_rgb, read_image_file

    try:
        fd = safeio.open_regular(path, follow_links=False)  # never a link, a FIFO or a device
        os.close(fd)
        load_take_rgb(path, read_image_file(path))
    except (safeio.NotRegularFile, ImageError, OSError):
        return False
    return True


def _aside_names(root: Path, shot_id: str, stem: str, image_rel: str,
                 sidecar_rel: str) -> tuple[str, str] | None:
    """The base names ``move_aside`` gives the files at a job's final paths now: (the image's and mask's, the
    sidecar's), the same but for a lone sidecar whose name is taken; None when nothing would move."""
    image, sidecar = root / image_rel, root / sidecar_rel
    has_image, has_sidecar = is_regular(image), is_regular(sidecar)
    if not (has_image or has_sidecar):
        return None
    folder = root / SUPERSEDED / shot_id
    base = f"{stem}.{key_label(take_key(image, sidecar))}"
    if has_image:
        # An image whose sidecar is kept without it (a restore killed between moving them back) goes back beside it.
        rejoined = None if has_sidecar else kept_sidecar_of(root, shot_id, stem, image)
        base = rejoined or free_name(folder, base, (".png", ".json", ".mask.png"))
    # A lone sidecar (a kill between two moves) joins its image kept under the same base name, unless taken; with
    # the take's mask when that is left too (killed right after the image moved), to a name free for both: the mask
    # went to ``base``, renamed over the mask of a version kept under it.
    with_mask = not has_image and is_regular(root / shot_id / f"{stem}.mask.png")
    exts = (".json", ".mask.png") if with_mask else (".json",)
    sidecar_base = free_name(folder, base, exts) if has_sidecar else base
    return base, sidecar_base


def aside_name(root: Path, shot_id: str, stem: str, image_rel: str, sidecar_rel: str) -> str | None:
    """The name ``move_aside`` would keep the files at a job's final paths under now (what it returns), or None
    when nothing would move: known before any rename, so a command killed part-way can have named it already."""
    names = _aside_names(root, shot_id, stem, image_rel, sidecar_rel)
    return names[1] if names is not None else None


def move_aside(root: Path, shot_id: str, stem: str, image_rel: str, sidecar_rel: str, mask_rel: str) -> str | None:
    """Move the files at a job's final paths into ``superseded/``; the base name used (``aside_name``'s), or None
    if nothing moved.

    Only regular files move: a link or a special file planted there is left for the commit to refuse
    or replace, as before.
    """
    names = _aside_names(root, shot_id, stem, image_rel, sidecar_rel)
    if names is None:
        _move_stray_mask(root, shot_id, stem, root / mask_rel)
        return None
    base, sidecar_base = names
    image, sidecar, mask = root / image_rel, root / sidecar_rel, root / mask_rel
    folder = root / SUPERSEDED / shot_id
    # Image first, then its mask, then the sidecar (the commit marker, last as when committing): a kill
    # between two moves leaves a lone sidecar, moved under the same base name by the next commit.
    has_image = is_regular(image)
    if has_image:
        move_file(image, folder / f"{base}.png")
    if is_regular(mask):  # beside the image moved, else with the sidecar left alone (_aside_names)
        move_file(mask, folder / f"{base if has_image else sidecar_base}.mask.png")
    if is_regular(sidecar):
        move_file(sidecar, folder / f"{sidecar_base}.json")
    return sidecar_base


def _move_stray_mask(root: Path, shot_id: str, stem: str, mask: Path) -> None:
    """Move a mask found at a take's final path with neither its image nor its sidecar there out of the way, to
    ``superseded/<shot_id>/<stem>.uncommitted[.N].mask.png``.

    Only a commit killed after writing its ``--save-masks`` mask, before its image, leaves one: ``move_aside`` and
    ``put_back`` move an image before its mask, and a lone sidecar stays with a mask left. Left there, the take that
    next went to those paths (a restored version, a render without ``--save-masks``) kept a mask of an image never
    committed beside it. It is kept, not deleted (nothing idcli finds is deleted), under a name no kept version can
    have: no version is listed, restored or reused for it."""
    if not is_regular(mask):
        return
    folder = root / SUPERSEDED / shot_id
    move_file(mask, folder / f"{free_name(folder, f'{stem}.uncommitted', ('.mask.png',))}.mask.png")
