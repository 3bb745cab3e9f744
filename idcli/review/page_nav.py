"""The storyboard page's index of shots: every shot's link, or at film scale one line per scene (its shots behind a
disclosure), and the anchors a scene's link lands on.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .runs import Shot

# Up to this many shots the index lists every shot; past it (a film's 2,000 links filled the first screen) it
# lists scenes, each opening onto its shots.
NAV_FLAT_SHOTS = 40
# Shots per index group when the shot ids name no scenes (no "sc12_" prefix to group by).
NAV_BLOCK = 25


def _e(value: Any) -> str:
    """Text from a sidecar or a shot list, escaped for the page (as page.py escapes its own)."""
    return html.escape(str(value), quote=True)


def scene_of(shot_id: str) -> str:
    """The scene a shot id names, by the usual convention ``<scene>_<shot>`` (``sc12_sh010`` -> ``sc12``);
    '' when the id has no such prefix."""
    head, sep, _ = shot_id.partition("_")
    return head if sep and head else ""


def scene_groups(shots: list[Shot]) -> list[tuple[str, int, int]]:
    """The index's groups as (label, index of the first shot, number of shots), in shot order: runs of
    consecutive shots of one scene, else blocks of NAV_BLOCK shots labelled by their numbers. [] when the
    index lists every shot (NAV_FLAT_SHOTS or fewer)."""
    if len(shots) <= NAV_FLAT_SHOTS:
        return []
    groups: list[tuple[str, int, int]] = []
    # Without a shot list (no run manifest, no --shots) no shot has an entry: none is an orphan, all are by id.
    listed = any(shot.entry is not None for shot in shots)
    for i, shot in enumerate(shots):
        scene = scene_of(shot.id) if shot.entry is not None or not listed else "not in the shot list"
        if groups and groups[-1][0] == scene and scene:
            label, start, count = groups[-1]
            groups[-1] = (label, start, count + 1)
        else:
            groups.append((scene, i, 1))
    if any(not label for label, _, _ in groups) or len(groups) * 2 > len(shots):  # ids name no scenes
        groups = [(_block_label(start, len(shots)), start, min(NAV_BLOCK, len(shots) - start))
                  for start in range(0, len(shots), NAV_BLOCK)]
    return groups


def _block_label(start: int, total: int) -> str:
    """A numbered group's label: its shots' numbers, ``26–50``."""
    return f"{start + 1}–{min(start + NAV_BLOCK, total)}"


def _in_cut(shot: Shot, listed: bool) -> bool:
    """Whether the shot's select stands for it in the cut: picked, and (when a shot list is known) still in it."""
    return shot.picked_take is not None and (shot.entry is not None or not listed)


def _shot_link(shot: Shot, listed: bool, live: set[tuple[str, int]] | None) -> str:
    from .export import shown_select

    picked = ""
    if _in_cut(shot, listed):
        # the take marked as the select: the one holding the image picked when the shot's takes shifted since
        shown = shown_select(shot, live if listed else None)
        picked = f" <span class=navpick>✓t{shown.take if shown is not None else shot.picked_take}</span>"
    elif shot.picked_take is not None:  # picked, then taken out of the shot list: export leaves it out (as its badge)
        picked = (f' <span class=navout title="picked take {shot.picked_take}, but not in the shot list: left out '
                  'of the animatic">out</span>')
    return (f'<li><a href="#shot-{_e(shot.id)}">{_e(shot.id)}</a>'
            f'{" <span class=dot title=flagged>●</span>" if shot.all_flagged else ""}{picked}</li>')


def group_ids(groups: list[tuple[str, int, int]]) -> list[str]:
    """Each group's anchor, ``scene-<label>``, one per group: a scene the shot list comes back to (cross-cutting)
    is a group again, and its second anchor (``scene-sc05~2``) must not send its link to the first."""
    ids: list[str] = []
    for label, _, _ in groups:
        base = anchor = "scene-" + re.sub(r"[^A-Za-z0-9_.-]", "-", label)
        n = 1
        while anchor in ids:
            n += 1
            anchor = f"{base}~{n}"
        ids.append(anchor)
    return ids


def nav_html(shots: list[Shot], groups: list[tuple[str, int, int]], listed: bool = False,
             live: set[tuple[str, int]] | None = None) -> str:
    """Every shot's link; at film scale one line per scene (its shots behind a disclosure), so the index
    takes a few lines and scene 14 is one click away. ``listed``: the shot list is known (a shot without an entry
    was taken out of it), as the page's header counts picks; ``live``: its takes (export.standing_takes)."""
    if not groups:
        return f'<nav aria-label="Shots"><ol>{"".join(_shot_link(s, listed, live) for s in shots)}</ol></nav>'
    items = []
    for (label, start, count), anchor in zip(groups, group_ids(groups), strict=True):
        members = shots[start:start + count]
        flagged = sum(1 for s in members if s.all_flagged)
        mark = f' <span class="dot" title="{flagged} with every take flagged">●{flagged}</span>' if flagged else ""
        # picking takes over days: which scenes still wait for a pick
        picked = sum(1 for s in members if _in_cut(s, listed))
        mark += f' <span class="picked" title="{picked} of {count} picked">{f"✓{picked}" if picked else ""}</span>'
        items.append(f'<li><details><summary><a href="#{anchor}">{_e(label)}</a> '
                     f'<span class="count">{count}</span>{mark}</summary>'
                     f'<ol>{"".join(_shot_link(s, listed, live) for s in members)}</ol></details></li>')
    # "scenes" only when they are: ids that name none are cut into numbered groups
    plural = "" if len(groups) == 1 else "s"
    what = f"group{plural} of shots" if groups[0][0] == _block_label(0, len(shots)) else f"scene{plural}"
    return (f'<nav aria-label="Shots" class="scenes"><p class="count">{len(groups)} {what} · open one for its shots'
            f'</p><ol>{"".join(items)}</ol></nav>')


def index_legend(shots: list[Shot], scenes: bool, listed: bool) -> str:
    """What the index's marks that only a tooltip (``title``) explains mean, in words, for the header: a mouse shows
    the tooltip, and no finger reaches one. Only the marks this index holds (a ● when a shot has every take flagged,
    ``out`` when a pick is of a shot out of the shot list, a scene's count of picks); nothing when it holds none. The
    stylesheet shows it on a touch screen only (``any-pointer: coarse``, a touch laptop too)."""
    flagged = any(s.all_flagged for s in shots)
    said = ["●3 shots with every take flagged"] if scenes and flagged else []
    said += ["✓2 shots picked"] if scenes else []
    said += ["● every take of the shot flagged"] if flagged else []
    if any(s.picked_take is not None and not _in_cut(s, listed) for s in shots):
        said.append("out: picked, but not in the shot list (left out of the animatic)")
    return f'<span class="legend">In the index: {" · ".join(said)} · </span>' if said else ""


def scene_mark(anchor: str, label: str, count: int) -> str:
    """The target of a scene's index link, before its first shot."""
    return (f'<p class="scene" id="{anchor}">{_e(label)} '
            f'<span class="meta">{count} shot{"s" if count != 1 else ""}</span></p>')
