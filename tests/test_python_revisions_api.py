"""Revisions as a pipeline engineer scripts them (README, "From Python"): why each take renders again from
``idcli.plan_folder`` and ``idcli.render``, each select and whether it stands, the kept renders — the same content
as the commands' ``--json``, so a script needs neither the CLI nor a private module.

The folder is test_revisions.py's: DAY1 rendered and picked, then DAY2 (sh010's prompt changed, sh020 renamed,
sh040 deleted); the images are drawn faces (review_helpers.FaceEngine), no model is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from review_helpers import cli
from test_revisions import DAY2, day1, day2, days_rendered, face_engine  # noqa: F401  (fixtures)

import idcli
from idcli.review.select_list import list_selects
from idcli.superseded import kept_renders


def _without_head(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in ("ok", "exit_code", "error")}


def test_plan_folder_and_render_give_each_stale_take_its_cause_as_their_json(day1: Path) -> None:  # noqa: F811
    shots, out = day1 / "shots.yaml", day1 / "out"
    shots.write_text(DAY2, "utf-8")
    planned = idcli.plan_folder(shots, out, device="cpu")
    command = json.loads(cli("plan", shots, "--out", out, "--device", "cpu", "--json").stdout)
    assert planned == _without_head(command)
    causes = {(j["shot_id"], j["take"]): j["cause"] for j in planned["jobs"] if j["state"] == "stale"}
    assert causes == {("sh010", 1): "prompt changed", ("sh010", 2): "prompt changed"}

    report = idcli.render(shots, out, device="cpu")
    stale = {j["job_key"]: j["cause"] for j in planned["jobs"] if j["state"] == "stale"}
    assert report.stale_causes == stale
    assert {j["job_key"]: j["cause"] for j in report.as_dict()["jobs"] if j["cause"]} == stale
    assert set(report.stale_reasons) == set(stale)


def test_plan_folder_refuses_what_the_command_refuses(day1: Path) -> None:  # noqa: F811
    with pytest.raises(idcli.InputError, match="out_dir=3"):
        idcli.plan_folder(day1 / "shots.yaml", 3)  # type: ignore[arg-type]
    with pytest.raises(idcli.InputError, match="shots=None"):
        idcli.plan_folder(None, day1 / "out")  # type: ignore[arg-type]


def test_list_selects_says_how_each_pick_stands_as_select_json(day2: Path) -> None:  # noqa: F811
    out = day2 / "out"
    listed = list_selects(out)
    assert [(s.shot_id, s.take, s.standing.value) for s in listed.selects] == [
        ("sh010", 2, "re-rendered"), ("sh030", 2, "as-picked"), ("sh020", 1, "shot-gone"), ("sh040", 1, "shot-gone")]
    assert listed.unpicked == ["sh025"]
    document = json.loads(cli("select", out, "--json").stdout)
    assert [s.as_dict() for s in listed.selects] == document["standing"]
    assert listed.unpicked == document["unpicked"]


def test_kept_renders_lists_what_restore_list_lists(day2: Path) -> None:  # noqa: F811
    out = day2 / "out"
    every = kept_renders(out)
    assert [(v.shot_id, v.take) for v in every] == [("sh010", 1), ("sh010", 2)]
    document = json.loads(cli("restore", out, "--list", "--json").stdout)
    assert [v.as_dict(out) for v in every] == document["versions"]
    assert [v.name for v in kept_renders(out, "sh010_t2")] == [every[1].name]
    with pytest.raises(idcli.InputError, match="no such output folder"):
        kept_renders(day2 / "no-such-folder")
    with pytest.raises(idcli.InputError, match="SHOT_tN"):
        kept_renders(out, "sh010")
