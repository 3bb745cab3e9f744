"""Expressions in shot lists: validation with suggestions, compound conditioning, balance, keys, sidecars."""

from __future__ import annotations

import pytest
from cli_helpers import plan_jobs
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.errors import ShotListError
from idcli.method import EXPRESSION_IDENTITY_TRADE, balanced_strength

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: expressions
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 3.0, sampler: ddim}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - {id: grief, prompt: "{mara} at a grave in the rain", expression: grief}
  - {id: mild, prompt: "{mara} at a grave in the rain", expression: {label: grief, intensity: 0.2}}
  - {id: level, prompt: "{mara} at a grave in the rain", expression: grief, expression_intensity: 0.2}
  - {id: pinned, prompt: "{mara} at a grave in the rain", expression: grief, identity_strength: 0.9}
  - {id: happy, prompt: "{mara} at a party", expression: happy}
  - {id: joy, prompt: "{mara} at a party", expression: JOY}
  - {id: calm, prompt: "{mara} at a party", expression: neutral}
  - {id: calm2, prompt: "{mara} at a party", expression: {label: neutral, intensity: 0.9}}
  - {id: street, prompt: "an empty street", expression: {label: gloom, intensity: 1.0}}
"""


def _plan(write_shotlist, text: str = SHOTS):
    return {j.shot_id: j for j in plan_jobs(write_shotlist(text))}


def test_unknown_labels_exit_2_with_the_three_closest_terms(write_shotlist) -> None:
    path = write_shotlist(SHOTS.replace("expression: grief}", "expression: greif}", 1))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "shots[0].expression: unknown expression 'greif'" in result.output
    assert "did you mean: grief" in result.output and result.output.count(",") >= 2
    assert "shots.yaml:8:70:" in result.output  # the line and column of the bad label


def test_an_intensity_word_in_a_label_is_answered_at_its_line(write_shotlist) -> None:
    text = SHOTS.replace("expression: grief}", "expression: Intense Grief}", 1)
    result = CliRunner().invoke(app, ["validate", str(write_shotlist(text))])
    assert result.exit_code == 2
    assert "shots.yaml:8:" in result.output
    assert "shots[0].expression: unknown expression 'Intense Grief'" in result.output
    assert "did you mean: {label: grief, intensity: 0.9}?" in result.output


def test_intensity_given_twice_or_without_expression_is_refused(write_shotlist) -> None:
    twice = SHOTS.replace("intensity: 0.2}}", "intensity: 0.2}, expression_intensity: 0.3}")
    with pytest.raises(ShotListError, match="intensity is given twice"):
        idcli.load_shotlist(write_shotlist(twice))
    alone = SHOTS.replace('expression: happy}', 'expression_intensity: 0.5}')
    with pytest.raises(ShotListError, match="no expression"):
        idcli.load_shotlist(write_shotlist(alone, "alone.yaml"))
    over = SHOTS.replace("intensity: 0.2}}", "intensity: 1.5}}")
    with pytest.raises(ShotListError, match=r"shots\[1\]\.expression\.intensity"):
        idcli.load_shotlist(write_shotlist(over, "over.yaml"))


def test_compound_conditioning_and_the_semantic_line(write_shotlist) -> None:
    jobs = _plan(write_shotlist)
    grief = jobs["grief"].request
    assert grief.prompt.startswith("a red-haired woman at a grave in the rain, intense grief expression, ")
    assert "brows" in grief.prompt  # the facial description rides with the identity tokens
    assert grief.semantic_prompt == "a red-haired woman at a grave in the rain, intense grief"
    assert jobs["mild"].request.prompt.count("subtle grief expression") == 1
    assert jobs["happy"].expression["label"] == "happiness" and jobs["happy"].expression["given"] == "happy"
    assert jobs["joy"].expression["label"] == "joy"  # a category names its prototype term
    assert jobs["calm"].request.prompt.endswith("neutral relaxed expression")
    assert "gloom" in jobs["street"].request.prompt and jobs["street"].request.method == "text"


def test_expression_and_intensity_are_in_the_key_and_the_sidecar(write_shotlist) -> None:
    jobs = _plan(write_shotlist)
    assert jobs["mild"].key_material["expression"]["intensity"] == 0.2
    assert jobs["mild"].key_material["expression"] == jobs["level"].key_material["expression"]
    assert jobs["grief"].key_material["expression"]["intensity"] == 0.85  # the term's default
    # The key holds the term and intensity; the vocabulary's version and hash go to the sidecar only.
    assert jobs["grief"].key_material["expression"] == {"label": "grief", "intensity": 0.85}
    assert jobs["grief"].expression["vocabulary"].startswith("idcli-expressions/1:")
    # The relaxed face has no intensity: both neutral shots key the same expression.
    assert jobs["calm"].key_material["expression"] == jobs["calm2"].key_material["expression"]
    record = jobs["mild"].expression
    assert record["label"] == "grief" and record["intensity"] == 0.2 and record["category"] == "sadness"


def test_balance_rule_lowers_identity_for_strong_expressions_unless_pinned(write_shotlist) -> None:
    jobs = _plan(write_shotlist)
    assert jobs["grief"].request.identity_strength == pytest.approx(1 - EXPRESSION_IDENTITY_TRADE * 0.85)
    assert jobs["mild"].request.identity_strength == pytest.approx(1 - EXPRESSION_IDENTITY_TRADE * 0.2)
    assert jobs["pinned"].request.identity_strength == 0.9  # the shot's own strength wins
    assert jobs["calm"].request.identity_strength == 1.0 and jobs["calm2"].request.identity_strength == 1.0
    assert jobs["grief"].key_material["method"]["identity"]["strength"] == jobs["grief"].request.identity_strength
    assert balanced_strength(0.8, None, 1.0) == pytest.approx(0.8 * (1 - EXPRESSION_IDENTITY_TRADE))
    assert balanced_strength(0.8, 0.0, 1.0) == 0.0


def test_identity_strength_zero_on_a_shot_is_text_only(write_shotlist) -> None:
    jobs = _plan(write_shotlist, SHOTS.replace("identity_strength: 0.9", "identity_strength: 0"))
    assert jobs["pinned"].request.method == "text" and jobs["pinned"].key_material["method"] == {"name": "text"}


def test_expression_shots_render_and_record(write_shotlist, tmp_path, engine_factory) -> None:
    import json
    from pathlib import Path

    path = write_shotlist(SHOTS)
    report = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", engine_factory=engine_factory,
                          only=["mild", "street"])
    assert report.rendered == 2
    sidecar = json.loads(Path(next(o.sidecar.abs_path for o in report.jobs if o.shot_id == "mild")).read_text())
    assert sidecar["expression"]["label"] == "grief" and sidecar["expression"]["intensity"] == 0.2
    assert sidecar["expression"]["given"] == {"label": "grief", "intensity": 0.2}


def test_an_expression_on_a_shot_with_no_character_is_noted_at_its_line(write_shotlist) -> None:
    # 'an empty street' with an expression: its facial description is added to a scene with no person.
    text = SHOTS + '  - {id: alley, prompt: "a dark alley", expression: joy}\n'
    path = write_shotlist(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "names no character" in line]
    street_line = text.splitlines().index(next(x for x in text.splitlines() if "id: street" in x)) + 1
    assert len(lines) == 2, result.output
    assert f"shots.yaml:{street_line}:" in lines[0] and "shots[8].expression: expression 'gloom'" in lines[0]
    assert "shots[9].expression: expression 'joy'" in lines[1] and "remove the expression" in lines[1]
    notes = idcli.load_shotlist(path).notes
    assert [n.path for n in notes if "names no character" in n.message] == ["shots[8].expression",
                                                                          "shots[9].expression"]
    # a shot naming a character, and one without an expression: nothing said
    quiet = SHOTS.replace("expression: {label: gloom, intensity: 1.0}", "seeds: [3]")
    assert not [n for n in idcli.load_shotlist(write_shotlist(quiet, "quiet.yaml")).notes
                if "names no character" in n.message]


def test_plan_and_render_warn_once_and_change_no_key_or_prompt(write_shotlist, tmp_path, engine_factory) -> None:
    from idcli.planning import plan_shotlist

    text = SHOTS + '  - {id: alley, prompt: "a dark alley", expression: joy}\n'
    plan, _runtime = plan_shotlist(write_shotlist(text))
    said = [w for w in plan.warnings if "name no character" in w]
    assert len(said) == 1 and said[0].startswith("2 shots give an expression"), plan.warnings
    assert "shots[8].expression: expression 'gloom')" in said[0] and "idcli validate" in said[0]
    # Only a note: the jobs are those of the same shot list without the note's shot, plus its own.
    jobs = {j.shot_id: j for j in plan.jobs}
    before = _plan(write_shotlist, SHOTS)
    assert {k: (j.key, j.request.prompt) for k, j in before.items()} == {
        k: (jobs[k].key, jobs[k].request.prompt) for k in before}
    assert "joyful radiant smile" in jobs["alley"].request.prompt
    report = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS, "one.yaml")), tmp_path / "out", device="cpu",
                          engine_factory=engine_factory, only=["street"], dry_run=True)
    said = [w for w in report.warnings if "names no character" in w]
    assert len(said) == 1 and said[0].startswith("1 shot gives an expression"), report.warnings
