"""``idcli verify`` of a folder whose records were edited to be hostile: a sidecar or the image's own record (its
``idcli`` chunk) nested as deep as JSON reads, holding huge numbers, NaN or a key written twice. Each such copy or
take fails, said in one line, exit 6: never a RecursionError, a traceback or a hang (docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env, render_on_cpu

from idcli.delivery import deliver
from idcli.hashing import sha256_bytes
from idcli.provenance import PNG_CHUNK, PNG_SIGNATURE, png_chunk, png_chunks
from idcli.verify import verify_folder

SHOTS = """\
version: 1
project: hostile-records
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
shots:
  - {id: sh010, prompt: "an empty street at night, rain", seeds: [42]}
"""


def _nested(depth: int, opener: str = "[") -> str:
    """A JSON value nested ``depth`` levels deep (lists, or objects each holding one key)."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _with_record(png: bytes, text: str) -> bytes:
    """The PNG with its idcli chunk's text replaced by ``text`` (an iTXt chunk, as encode_png writes it)."""
    payload = PNG_CHUNK.encode() + b"\x00\x00\x00\x00\x00" + text.encode()
    return PNG_SIGNATURE + b"".join(png_chunk(b"iTXt", payload) if kind == b"iTXt" and body.startswith(b"idcli\x00")
                                    else png_chunk(kind, body) for kind, body in png_chunks(png))


def _field(text: str, name: str, value: str) -> str:
    """A record's JSON text with ``name``'s value replaced by the raw JSON ``value`` (json.dumps cannot write most
    of these: a value nested past the recursion limit, a key twice)."""
    record = json.loads(text)
    marker = "\u0000HOSTILE\u0000"
    record[name] = marker
    return json.dumps(record).replace(json.dumps(marker), value)


# (name, raw JSON for the seed in the sidecar, in the image's record): the sidecar's and the image's hash stay
# each other's, so only the record comparison can tell. The seed: a field deliver's path check walks (prompts are
# texts people wrote, not walked).
FIELD = "seed"
DEEP = 100_000
CASES: list[tuple[str, str | None, str | None]] = [
    ("sidecar nested 100,000 lists deep", _nested(DEEP), None),
    ("sidecar nested 100,000 objects deep", _nested(DEEP, "{"), None),
    ("image record nested 100,000 lists deep", None, _nested(DEEP)),
    ("both nested just under the recursion limit", _nested(sys.getrecursionlimit() - 30),
     _nested(sys.getrecursionlimit() - 30)),
    ("both nested just under the recursion limit, objects", _nested(sys.getrecursionlimit() - 30, "{"),
     _nested(sys.getrecursionlimit() - 30, "{")),
    ("sidecar nested half the recursion limit", _nested(sys.getrecursionlimit() // 2), None),
    ("a number of 100,000 digits", "1" * 100_000, None),
    ("a number of 100,000 digits in the image", None, "1" * 100_000),
    ("1e999 in both", "1e999", "1e999"),
    ("NaN in the sidecar", "NaN", None),
    ("NaN in both", "NaN", "NaN"),
    ("a key written twice in the sidecar", '7, "seed": 42', None),
]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory, tiny_engines) -> tuple[Path, Path]:
    """A render's output folder and its delivery, made once: each test edits copies of their files."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "shots.yaml").write_text(SHOTS, "utf-8")
    out, dest = folder / "out", folder / "dest"
    factory = _factory(tiny_engines)
    render_on_cpu(folder / "shots.yaml", out, factory)
    deliver(out, dest)
    return out, dest


def _factory(tiny_engines: Any) -> Any:
    """engine_factory (tests/conftest.py) for a module-scoped fixture: the same tiny engine, no identity."""
    engine = tiny_engines("tiny-sd")

    def factory(identity: Any, runtime: Any, adapter: Any = None) -> Any:
        return engine

    return factory


def _record_text(png: bytes) -> str:
    """The idcli chunk's JSON text (an uncompressed iTXt chunk: keyword, two flag bytes, language, translation)."""
    payload = next(body for kind, body in png_chunks(png) if kind == b"iTXt" and body.startswith(b"idcli\x00"))
    return payload.split(b"\x00", 5)[5].decode()


def _edit(sidecar_path: Path, in_sidecar: str | None, in_image: str | None) -> None:
    """Write the hostile seed into the sidecar and/or the image's record, the sidecar's sha256 the new image's."""
    image = sidecar_path.with_suffix(".png")
    png = image.read_bytes()
    if in_image is not None:
        png = _with_record(png, _field(_record_text(png), FIELD, in_image))
        image.write_bytes(png)
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["image"]["sha256"] = sha256_bytes(png)
    text = json.dumps(sidecar)
    sidecar_path.write_text(_field(text, FIELD, in_sidecar) if in_sidecar is not None else text)


def _one_line_each(problems: list[str]) -> None:
    assert problems and all("\n" not in p and len(p) < 400 for p in problems), problems


@pytest.mark.parametrize(("name", "in_sidecar", "in_image"), CASES, ids=[c[0] for c in CASES])
def test_verify_dest_fails_a_hostile_record_cleanly(delivered, tmp_path, name, in_sidecar, in_image) -> None:
    import shutil

    dest = tmp_path / "dest"
    shutil.copytree(delivered[1], dest)
    _edit(dest / "sh010_take1.json", in_sidecar, in_image)
    report = verify_folder(dest)
    assert report.exit_code == 6 and report.failed >= 1
    for check in report.images:
        if not check.ok:
            _one_line_each(check.problems)


@pytest.mark.parametrize(("name", "in_sidecar", "in_image"), CASES, ids=[c[0] for c in CASES])
def test_verify_out_fails_a_hostile_record_cleanly(delivered, tmp_path, name, in_sidecar, in_image) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(delivered[0], out)
    _edit(out / "sh010" / "sh010_t1.json", in_sidecar, in_image)
    report = verify_folder(out)
    one_sided = in_sidecar is None or in_image is None
    if one_sided:
        assert report.exit_code == 6
    for check in report.images:
        if not check.ok:
            _one_line_each(check.problems)


def test_the_cli_says_one_line_per_problem_and_exits_6_on_a_nested_delivered_record(delivered, tmp_path) -> None:
    # The path check walked the sidecar recursively: a seed nested 500 lists deep was exit 70, an internal error.
    import shutil

    dest = tmp_path / "dest"
    shutil.copytree(delivered[1], dest)
    _edit(dest / "sh010_take1.json", _nested(500), _nested(500))
    run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(dest), "--json"], capture_output=True,
                         text=True, env=cli_env(), timeout=120)
    assert run.returncode == 6, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    [image] = json.loads(run.stdout)["images"]
    _one_line_each(image["problems"])


def test_a_key_written_twice_is_named(delivered, tmp_path) -> None:
    import shutil

    for folder, sidecar in ((delivered[1], "sh010_take1.json"), (delivered[0], "sh010/sh010_t1.json")):
        copy = tmp_path / folder.name
        shutil.copytree(folder, copy)
        _edit(copy / sidecar, '7, "seed": 42', None)
        [check] = verify_folder(copy).images
        assert "its sidecar writes the key 'seed' twice (edited by hand?): readers disagree on its value" in \
            check.problems, check.problems


def test_a_key_written_twice_in_the_images_own_record_is_named(delivered, tmp_path) -> None:
    # The image's own record (its idcli chunk) writing a key twice read as "the image carries no idcli record": false,
    # it carries one, which readers read two ways. Said as the sidecar's case says it, the rest still compared.
    import shutil

    said = "the image's own record (its idcli chunk) writes the key 'seed' twice (edited by hand?): readers disagree " \
           "on its value"
    for folder, sidecar in ((delivered[1], "sh010_take1.json"), (delivered[0], "sh010/sh010_t1.json")):
        copy = tmp_path / folder.name
        shutil.copytree(folder, copy)
        _edit(copy / sidecar, None, '7, "seed": 42')
        if folder == delivered[1]:
            _relist(copy, "sh010_take1.png")
        report = verify_folder(copy)
        [check] = report.images
        assert report.exit_code == 6 and check.problems == [said], check.problems
        run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(copy), "--json"], capture_output=True,
                             text=True, env=cli_env(), timeout=120)
        assert run.returncode == 6, run.stderr
        [image] = json.loads(run.stdout)["images"]
        assert image["problems"] == [said]
    # Python reads the last value: one that is not the sidecar's is said too
    out = tmp_path / "again"
    shutil.copytree(delivered[0], out)
    _edit(out / "sh010" / "sh010_t1.json", None, '42, "seed": 7')
    [check] = verify_folder(out).images
    assert check.problems[0] == said and check.problems[1].startswith("its sidecar says seed 42, the image's own "
                                                                      "record (its idcli chunk) 7"), check.problems


@pytest.mark.parametrize(("text", "why"), [
    (None, "nested too deep to read as JSON"),
    ('{"job_key": ', "not JSON: line 1 column 13: Expecting value"),
    ("[1, 2]", None),
], ids=["nested past the parser's limit", "cut short", "not a sidecar"])
def test_a_sidecar_that_cannot_be_read_is_there_not_missing(delivered, tmp_path, text, why) -> None:
    # The take's image has a sidecar beside it that JSON cannot read (nested past the parser's limit, ~980 levels):
    # verify said "no sidecar beside it", sending whoever read it looking for a file that is there.
    import shutil

    for folder, sidecar, kind in ((delivered[1], "sh010_take1.json", "a delivered copy's sidecar"),
                                  (delivered[0], "sh010/sh010_t1.json", "an idcli sidecar")):
        copy = tmp_path / folder.name
        shutil.copytree(folder, copy)
        if text is None:
            _edit(copy / sidecar, _nested(DEEP), None)
        else:
            (copy / sidecar).write_text(text)
        report = verify_folder(copy)
        [check] = report.images
        assert report.exit_code == 6 and not check.ok
        name = Path(sidecar).name
        assert check.problems[0].startswith(f"its sidecar {name} is there but cannot be read "
                                            f"({why or 'not ' + kind}): edited after "), check.problems
        assert len(check.problems) == 1 and not any("no sidecar beside it" in p for p in check.problems), \
            check.problems
        _one_line_each(check.problems)


def copy_recording_image_path(folder: Path, copy: Path, sidecar: str, recorded: str) -> Path:
    """A copy of ``folder`` whose ``sidecar`` records ``recorded`` as its image's path (a hand edit)."""
    import shutil

    shutil.copytree(folder, copy)
    record = json.loads((copy / sidecar).read_text())
    record["image"]["path"] = recorded
    (copy / sidecar).write_text(json.dumps(record))
    return copy


@pytest.mark.parametrize("recorded", ["../../etc/x.png", "/etc/x.png", "sh010/../../sh010_t1.png"],
                         ids=["relative, out of the folder", "absolute", "through the shot folder and out"])
def test_a_sidecar_whose_image_path_leaves_the_folder_is_said_once(delivered, tmp_path, recorded) -> None:
    # The sidecar naming an image outside the folder was failed for it, but the take's PNG beside it was then
    # reported a second time as having "no sidecar beside it": false, and it sent whoever read it looking for a
    # file that is there.
    out = copy_recording_image_path(delivered[0], tmp_path / "out", "sh010/sh010_t1.json", recorded)
    said = (f"its sidecar sh010/sh010_t1.json records image.path {recorded!r}, which leaves the output folder: "
            "a sidecar records the image beside it (sh010/sh010_t1.png); edited by hand? The image is not checked "
            "against it")
    report = verify_folder(out)
    [check] = report.images
    assert report.exit_code == 6 and not check.ok
    assert check.image["path"] == "sh010/sh010_t1.png" and check.sidecar["path"] == "sh010/sh010_t1.json"
    assert check.problems == [said]
    run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(out), "--json"], capture_output=True,
                         text=True, env=cli_env(), timeout=120)
    assert run.returncode == 6, run.stderr
    [image] = json.loads(run.stdout)["images"]
    assert image["image"]["path"] == "sh010/sh010_t1.png" and image["problems"] == [said]
    run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(out)], capture_output=True, text=True,
                         env=cli_env(), timeout=120)
    assert run.returncode == 6, run.stderr
    assert run.stdout.splitlines() == ["FAILED sh010/sh010_t1.png", f"       {said}",
                                       "1 image checked, 0 signed, 1 failed"], run.stdout


@pytest.mark.parametrize("recorded", ["../../x.png", "/etc/x.png"], ids=["relative, out of the folder", "absolute"])
def test_a_delivered_sidecar_whose_image_path_leaves_the_folder_says_so(delivered, tmp_path, recorded) -> None:
    # verify DEST said "its sidecar is the record of '../../x.png', not of this image (moved or swapped)": no image
    # was moved there, the path leaves the delivery folder. Said as verify OUT says it.
    dest = copy_recording_image_path(delivered[1], tmp_path / "dest", "sh010_take1.json", recorded)
    said = (f"its sidecar sh010_take1.json records image.path {recorded!r}, which leaves the delivery folder: a "
            "sidecar records the image beside it (sh010_take1.png); edited by hand? The image is not checked against "
            "it")
    report = verify_folder(dest)
    [check] = report.images
    # and only that: the image was not read, so delivery.json's sha256 for it is not "another" (it was said so)
    assert report.exit_code == 6 and check.problems == [said], check.problems
    run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(dest)], capture_output=True, text=True,
                         env=cli_env(), timeout=120)
    assert run.returncode == 6 and f"       {said}" in run.stdout.splitlines(), run.stdout + run.stderr
    # an image name in the folder that is not this one is still a moved or swapped record
    moved = copy_recording_image_path(dest, tmp_path / "moved", "sh010_take1.json", "sh020_take1.png")
    [check] = verify_folder(moved).images
    assert check.problems == ["its sidecar is the record of 'sh020_take1.png', not of this image (moved or swapped)"]


NOT_JSON = ("which is not JSON (RFC 8259 has no NaN or Infinity): other JSON readers refuse the file, and idcli "
            "never writes one (edited by hand?)")


def _relist(dest: Path, name: str) -> None:
    """delivery.json's entry for ``name`` given the copy's new sha256 (an edit made as a whole delivery)."""
    listing = json.loads((dest / "delivery.json").read_text())
    for entry in listing["images"]:
        if entry["image"] == name:
            entry["sha256"] = sha256_bytes((dest / name).read_bytes())
    (dest / "delivery.json").write_text(json.dumps(listing))


@pytest.mark.parametrize("token", ["NaN", "-Infinity"])
def test_nan_on_both_sides_is_refused_as_not_json_and_is_no_difference(delivered, tmp_path, token) -> None:
    # A hand-edited record holding NaN on both sides (the sidecar and the image's own record) failed as a mismatch:
    # NaN != NaN in Python, so verify said the sidecar no longer says what the image says (a delivered copy: "its
    # idcli record is not its sidecar's (another take's copy, or edited)"), which both say. What is wrong is that
    # neither is JSON: each is named, file and field, and the comparison finds no difference.
    import shutil

    for folder, sidecar in ((delivered[1], "sh010_take1.json"), (delivered[0], "sh010/sh010_t1.json")):
        copy = tmp_path / folder.name
        shutil.copytree(folder, copy)
        _edit(copy / sidecar, token, token)
        if folder == delivered[1]:
            _relist(copy, "sh010_take1.png")
        report = verify_folder(copy)
        [check] = report.images
        assert report.exit_code == 6 and not check.ok
        assert check.problems == [f"its sidecar {sidecar} holds {token} at seed, {NOT_JSON}",
                                  f"the image's own record (its idcli chunk) holds {token} at seed, {NOT_JSON}"]
        shutil.rmtree(copy)


def test_nan_in_the_sidecar_alone_is_named_and_differs(delivered, tmp_path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(delivered[0], out)
    _edit(out / "sh010" / "sh010_t1.json", "NaN", None)
    [check] = verify_folder(out).images
    assert check.problems[0] == f"its sidecar sh010/sh010_t1.json holds NaN at seed, {NOT_JSON}"
    assert check.problems[1].startswith("its sidecar says seed nan, the image's own record (its idcli chunk) 42"), \
        check.problems


def test_the_cli_names_nan_in_a_delivered_record(delivered, tmp_path) -> None:
    import shutil

    dest = tmp_path / "dest"
    shutil.copytree(delivered[1], dest)
    _edit(dest / "sh010_take1.json", "NaN", "NaN")
    _relist(dest, "sh010_take1.png")
    run = subprocess.run([sys.executable, "-m", "idcli", "verify", str(dest), "--json"], capture_output=True,
                         text=True, env=cli_env(), timeout=120)
    assert run.returncode == 6, run.stderr
    [image] = json.loads(run.stdout)["images"]
    assert image["problems"] == [f"its sidecar sh010_take1.json holds NaN at seed, {NOT_JSON}",
                                 f"the image's own record (its idcli chunk) holds NaN at seed, {NOT_JSON}"]


@pytest.mark.parametrize(("text", "token", "field"), [
    ('{"a": [1, {"b": NaN}], "c": Infinity}', "NaN", "a[1].b"),
    ('{"a": {"b": 1}, "c": [-Infinity]}', "-Infinity", "c[0]"),
    ("NaN", "NaN", "the top level"),
])
def test_loads_strict_names_where_a_record_holds_nan(text, token, field) -> None:
    from idcli.provenance import NotJsonNumber, loads_strict

    with pytest.raises(NotJsonNumber) as raised:
        loads_strict(text)
    assert (raised.value.token, raised.value.field) == (token, field)
    assert loads_strict('{"a": 1e999}') == {"a": float("inf")}  # a number past a double's range is JSON


def _deliver_refused(delivered, tmp_path: Path, in_sidecar: str | None, in_image: str | None) -> tuple[Path, str]:
    """A copy of the output folder with sh010 t1's seed edited by hand, delivered: the refusal's words (and the
    copy), nothing written at the destination."""
    import shutil

    from idcli.delivery import DeliveryError

    out = tmp_path / "out"
    shutil.copytree(delivered[0], out)
    _edit(out / "sh010" / "sh010_t1.json", in_sidecar, in_image)
    with pytest.raises(DeliveryError) as raised:
        deliver(out, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    return out, str(raised.value)


def test_deliver_refuses_a_take_whose_record_holds_nan_and_says_so(delivered, tmp_path) -> None:
    # A delivery carries the take's record to readers other than Python's json: one holding NaN on both sides (which
    # verify now finds no difference in) is refused for what it is, never delivered for verify DEST to fail.
    out, said = _deliver_refused(delivered, tmp_path, "NaN", "NaN")
    assert said == (f"{out / 'sh010' / 'sh010_t1.png'}: its own record (its idcli chunk) holds NaN at seed, which is "
                    "not JSON (RFC 8259 has no NaN or Infinity) and other readers refuse it: edited after the render? "
                    "Re-render the take; nothing was delivered")


def test_deliver_refuses_a_take_whose_own_record_writes_a_key_twice(delivered, tmp_path) -> None:
    # deliver compared such a record as Python reads it (the last value) and delivered it: verify DEST then failed the
    # copy it had just made. Refused before anything is written, naming the key, as verify names it.
    seed = json.loads((delivered[0] / "sh010" / "sh010_t1.json").read_text())["seed"]
    out, said = _deliver_refused(delivered, tmp_path, None, f'7, "seed": {seed}')  # the last value is the sidecar's
    assert said == (f"{out / 'sh010' / 'sh010_t1.png'}: its own record (its idcli chunk) writes the key 'seed' twice, "
                    "which readers read two ways: edited after the render? Re-render the take; nothing was delivered")


def test_deliver_refuses_a_number_past_jsons_range_on_both_sides(delivered, tmp_path) -> None:
    # 1e999 is JSON, read by Python as infinity: the same on both sides, so no difference, and deliver wrote the
    # delivered sidecar with json.dumps's `Infinity`, which is not JSON. Refused, naming the field; nothing written.
    out, said = _deliver_refused(delivered, tmp_path, "1e999", "1e999")
    assert said == (f"{out / 'sh010' / 'sh010_t1.json'}: its record holds a number past JSON's range (1e999 reads as "
                    "infinity), which a delivered record cannot carry: edited after the render? Re-render the take; "
                    "nothing was delivered")


def test_a_missing_image_is_named_relative_to_the_output_folder(delivered, tmp_path, monkeypatch) -> None:
    # A take whose image was deleted, its sidecar left: the problem named the image relative to the current folder
    # (`image missing: T/out/sh010/sh010_t1.png`), where every other line of verify, and its --json `image.path`,
    # name files relative to the output folder.
    import shutil

    shutil.copytree(delivered[0], tmp_path / "out")
    (tmp_path / "out" / "sh010" / "sh010_t1.png").unlink()
    monkeypatch.chdir(tmp_path)
    report = verify_folder(Path("out"))
    [check] = report.images
    assert check.problems == ["image missing: sh010/sh010_t1.png"], check.problems
    assert report.as_dict()["images"][0]["problems"] == check.problems
    assert check.image["path"] == "sh010/sh010_t1.png"
