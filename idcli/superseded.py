"""Renders that a newer render replaced are kept, never lost: moved aside, listed, restorable.

Before a job's new image is committed, whatever idcli image and sidecar sit at its final paths (the
take the director liked, before a prompt edit; an image retouched by hand and re-rendered with
``--force``; another project's take of the same shot id) are moved to::

    OUT/.idcli/superseded/<shot_id>/<shot_id>_t<take>.<key>.png   (and .json, .mask.png)

where ``<key>`` is the first 12 hex digits of the old job key (``unkeyed`` when the image carried
none). Each move is one ``rename`` in the same file system, the image before its sidecar, so a run
killed at any instant leaves every old file either at its final path or in ``superseded/``: the next
commit moves a sidecar left behind to the same name as its image, and an image a killed restore moved back without
its sidecar back to its sidecar's name. ``idcli restore`` moves a version
back (the current take moving aside in its place, so a restore can be undone the same way), by renames too, after a
``restore-begin`` journal line naming it: a restore killed at any instant, even after its last rename (its ``restore``
line not written), is finished by its rerun: a take split between two renames is rejoined (a sidecar and a mask moved
to their image, matched by sha256), the version the line names is put back unless it is back already, and the
``restore`` line is journalled.

Their order, "the most recently superseded", is the journal's: every move aside is a line (``supersede``'s ``as``,
``restore``'s ``moved_aside``, and for a restore killed before that line its ``restore-begin``'s ``aside``) and the
journal travels with the folder, where no copy keeps a file's change time
(``cp -a``, ``rsync -a``, tar, a sync client set it to the copy's). A version the journal does not name (a journal
deleted, cut short or damaged) is ordered by its files' change time, as before.

This module is the protocol's public face: its names, imported from here by scripts, the README and tests, live in
the modules that own each part (docs/architecture.md): kept_files.py (the kept files' names, reading and moving them),
moving_aside.py (before a commit), kept_versions.py (listing and ordering), restore.py (``idcli restore``) and
interrupted_restore.py (a restore killed part-way, finished).
"""

from __future__ import annotations

from .interrupted_restore import rejoin_put_back
from .kept_files import SUPERSEDED, key_label, read_sidecar_file
from .kept_versions import (
    SupersededVersion,
    by_job,
    by_take,
    count_superseded,
    each_alone,
    kept_render_of,
    kept_versions_by_take,
    list_superseded,
)
from .moving_aside import aside_name, is_whole_image, move_aside
from .restore import kept_renders, kept_versions_of, last_rendered_key, put_back, restore

__all__ = ["SUPERSEDED", "SupersededVersion", "aside_name", "by_job", "by_take", "count_superseded", "each_alone",
           "is_whole_image", "kept_render_of", "kept_renders", "kept_versions_by_take", "kept_versions_of", "key_label",
           "last_rendered_key", "list_superseded", "move_aside", "put_back", "read_sidecar_file", "rejoin_put_back",
           "restore"]
