"""Errors name an argument as it was given: ``device='cuda'`` to a Python caller, ``--device cuda`` on the command
line (idcli/option_words.py). One message, written once with its arguments as ``Option`` parts; the CLI edge
(cli/output.py ``guarded``) reads it in flags, the library in Python's words."""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import pytest
from review_helpers import cli

import idcli
from idcli.errors import InputError
from idcli.option_words import Option, options_as_flags

SHOTS = """\
version: 1
project: words
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, takes: 1}
shots:
  - id: sh010
    prompt: "an empty harbour at dawn"
"""


def test_one_message_reads_in_each_surfaces_words() -> None:
    error = InputError(Option("device", "cuda"), ": no CUDA device is available here (use ", Option("device", "cpu"),
                       ")", field="device")
    assert str(error) == "device='cuda': no CUDA device is available here (use device='cpu')"
    with options_as_flags():
        assert str(error) == "--device cuda: no CUDA device is available here (use --device cpu)"
        assert error.as_json()["message"] == str(error) and error.as_json()["field"] == "device"
    assert error.render() == "device='cuda': no CUDA device is available here (use device='cpu')"  # reset after


@pytest.mark.parametrize(("option", "python", "flag"), [
    (Option("out_dir", Path("a b"), flag="--out"), "out_dir='a b'", "--out a b"),
    (Option("drop_frame", False, negated="--non-drop-frame"), "drop_frame=False", "--non-drop-frame"),
    (Option("unsigned", True), "unsigned=True", "--unsigned"),
    (Option("ray_address"), "ray_address", "--ray-address"),
    (Option("fps", 300.0), "fps=300.0", "--fps 300"),
    (Option("only", ["sh010", "sh020"]), "only=['sh010', 'sh020']", "--only sh010 --only sh020"),
    (Option("start", "01:00\n"), "start='01:00\\n'", "--start 01:00\\n"),  # one line, whatever was given
])
def test_each_kind_of_argument_in_both_words(option: Option, python: str, flag: str) -> None:
    assert (option.as_python(), option.as_flag()) == (python, flag)


def test_the_words_travel_with_a_pickled_error() -> None:
    """A Ray worker's error reaches the driver pickled; it still reads in the surface's words there."""
    error = pickle.loads(pickle.dumps(InputError(Option("workers", 9), ": give fewer", field="workers")))
    assert str(error) == "workers=9: give fewer" and error.field == "workers"
    with options_as_flags():
        assert str(error) == "--workers 9: give fewer"


def test_a_message_in_plain_parts_is_one_message() -> None:
    assert str(InputError("identity QA: ", "no face models")) == "identity QA: no face models"
    assert str(InputError("plain")) == "plain" and InputError("plain").message_parts == ("plain",)


@pytest.fixture
def shots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this machine has no CUDA device, as CI's
    path = tmp_path / "shots.yaml"
    path.write_text(SHOTS, "utf-8")
    return path


def test_render_names_device_as_python_does_and_the_command_as_its_flag(shots: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        idcli.render(shots, tmp_path / "out", device="cuda")
    assert str(caught.value) == "device='cuda': no CUDA device is available here (use device='cpu')"
    result = cli("render", shots, "--out", tmp_path / "out", "--device", "cuda")
    assert result.exit_code == 2
    assert "--device cuda: no CUDA device is available here (use --device cpu)" in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_render_names_the_executor_options_in_each_surfaces_words(shots: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^ray_address and workers need executor='ray'$"):
        idcli.render(shots, tmp_path / "out", device="cpu", workers=2)
    with pytest.raises(InputError, match=r"^executor='slurm': not an executor"):
        idcli.render(shots, tmp_path / "out", device="cpu", executor="slurm")  # type: ignore[arg-type]
    result = cli("render", shots, "--out", tmp_path / "out", "--device", "cpu", "--workers", "2")
    assert result.exit_code == 2 and "--ray-address and --workers need --executor ray" in result.stderr, result.output


def test_only_an_unknown_shot_is_named_as_given(shots: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"only='sh010,sh020': no such shot .*one shot id each: only=\['sh010', "):
        idcli.render(shots, tmp_path / "out", device="cpu", only="sh010,sh020", dry_run=True)
    result = cli("render", shots, "--out", tmp_path / "out", "--only", "sh010,sh020", "--dry-run")
    assert result.exit_code == 2, result.output
    assert "--only sh010,sh020: no such shot" in result.stderr and "--only sh010 --only sh020" in result.stderr


def test_only_a_pattern_matching_no_shot_says_why_as_an_id_does(shots: Path, tmp_path: Path) -> None:
    """hostile-read-31: a shot id given in another case or as a comma list is told what was meant; a pattern (since
    night-counts-3) was told only `no shot in shots.yaml matches it`, at 2 a.m. as good as a shot list emptied."""
    with pytest.raises(InputError, match=r"only='SH0\*': no shot in .* matches it; a pattern is case-sensitive: it "
                                         r"matches sh010 in another case$"):
        idcli.render(shots, tmp_path / "out", device="cpu", only="SH0*", dry_run=True)
    result = cli("render", shots, "--out", tmp_path / "out", "--only", "sh0*,sh1*", "--dry-run")
    assert result.exit_code == 2, result.output
    # the --only values to type, quoted as a shell needs them (an unquoted sh0* is the folder's sh010/ in OUT)
    assert ("--only sh0*,sh1*: no shot in" in result.stderr and "matches it; one shot id or pattern each: --only "
            "'sh0*' --only 'sh1*'" in result.stderr), result.stderr


def test_verify_names_trust_in_each_surfaces_words(review_run: Path, tmp_path: Path) -> None:
    (tmp_path / "roots.pem").write_text("not a certificate", "utf-8")
    with pytest.raises(InputError, match=r"^trust='.*roots\.pem': holds no PEM certificate$"):
        idcli.verify_folder(review_run, trust=tmp_path / "roots.pem")
    result = cli("verify", review_run, "--trust", tmp_path / "roots.pem", "--json")
    message = json.loads(result.stdout)["error"]["message"]  # the --json error object in the command's words
    assert message == f"--trust {tmp_path / 'roots.pem'}: holds no PEM certificate"


def test_export_names_start_and_its_companions_in_each_surfaces_words(review_run: Path, tmp_path: Path) -> None:
    from idcli.review.export import export_animatic
    from idcli.review.runs import load_run

    with pytest.raises(InputError, match=r"^start='01:00:00:00': at 29.97 fps the export writes drop-frame timecode: "
                                         r"give start='01:00:00;00' \(or drop_frame=False\)$"):
        export_animatic(load_run(review_run), otio=tmp_path / "a.otio", fps=29.97, start="01:00:00:00")
    with pytest.raises(InputError, match=r"^drop_frame=True: drop-frame timecode exists only at 29.97 and 59.94 fps, "
                                         r"not at 24$"):
        export_animatic(load_run(review_run), otio=tmp_path / "a.otio", fps=24.0, drop_frame=True)
    # what the refusal above asks for is taken (until 2026-12-02 the .otio alone refused drop_frame: no way out)
    [taken] = export_animatic(load_run(review_run), otio=tmp_path / "b.otio", fps=29.97, start="01:00:00:00",
                              drop_frame=False)
    assert taken.start == "01:00:00:00"
    result = cli("export", review_run, "--otio", tmp_path / "a.otio", "--fps", "29.97", "--start", "01:00:00:00")
    assert result.exit_code == 2
    assert ("--start 01:00:00:00: at 29.97 fps the export writes drop-frame timecode: give --start 01:00:00;00 (or "
            "--non-drop-frame)") in result.stderr, result.output
    assert not (tmp_path / "a.otio").exists()


def test_the_edited_by_hand_note_names_force_on_each_surface(tmp_path) -> None:
    # folder_notes is what `plan`/`render` print and what a Python caller of idcli.cli.folder_notes gets: its note
    # on images edited by hand spelled "--force" on both.
    from idcli.cli import folder_notes

    document = {"jobs": [{"shot_id": "sh010", "take": 1, "state": "modified"}]}
    assert any("(force=True renders them, moving" in n for n in folder_notes(document, tmp_path))
    with options_as_flags():
        assert any("(--force renders them, moving" in n for n in folder_notes(document, tmp_path))


FIELD_WORDS = re.compile(r"[a-z_][a-z0-9_]*(\[\d+\])?(\.[a-z_][a-z0-9_]*(\[\d+\])?)*|IDCLI_[A-Z0-9_]+")


def test_every_error_field_is_an_argument_name_or_a_field_path() -> None:
    """``error.field`` in the JSON documents names what was wrong as a script can match it: an argument's Python name
    (``out_dir``, ``shots``, ``force``), a shot list's field path (``defaults.batch_size``) or an environment
    variable (``IDCLI_C2PA_KEY``) — never a flag (``--out``) or a usage metavar (``DEST``, ``SHOT_tN``), which some
    errors said while the rest said the argument (the flag is the message's, read in the surface's words)."""
    package = Path(idcli.__file__).parent
    odd = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "field" and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str) and not FIELD_WORDS.fullmatch(node.value.value):
                odd.append(f"{source.relative_to(package)}:{node.value.lineno}: field={node.value.value!r}")
    assert not odd, odd


def test_deliver_names_its_arguments_as_fields(tmp_path: Path) -> None:
    """The CLI's JSON error for a bad --shots and a DEST inside OUT says the argument (``shots``, ``dest``)."""
    out = tmp_path / "renders"
    out.mkdir()
    inside = cli("deliver", out, out / "d", "--json")
    assert inside.exit_code == 2 and json.loads(inside.stdout)["error"]["field"] == "dest", inside.output
