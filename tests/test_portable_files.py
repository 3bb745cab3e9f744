"""A shot list typed on Windows, selfies copied off a Mac, read on Linux: what each system leaves in the files.

Each case is one a previs team meets moving a project between machines: an accented folder name in the other
Unicode form (macOS writes names decomposed), Finder's and Explorer's own files among the selfies, an iPhone's HEIC
photos, a shot list Notepad saved as UTF-16, a path on a Windows drive, a name in another case than the disk's.
"""

from __future__ import annotations

import io
import shutil
import unicodedata
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.errors import EXIT_INVALID_INPUT
from idcli.identity.images import ImageError, load_rgb
from idcli.not_photos import APPLEDOUBLE_MAGIC
from idcli.paths import local_path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
NFC = unicodedata.normalize("NFC", "Renée")
NFD = unicodedata.normalize("NFD", "Renée")
# What an iPhone's HEIC starts with: an ftyp box of major brand 'heic'; and one whose major brand is the HEIF
# container's ('mif1', which Pillow's AVIF plugin takes as a candidate) with HEVC among its compatible brands.
HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x08meta" + bytes(64)
MIF1_HEIC_HEAD = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x08meta" + bytes(64)

SHOTS = """\
version: 1
project: portable
model:
  preset: tiny-sd
characters:
  renee:
    selfies: [{selfies}]
    description: a woman with grey hair
shots:
  - id: sh010
    prompt: "{{renee}} at a cafe"
"""


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 90, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


def _project(tmp_path: Path, folder: str, selfies: str) -> Path:
    """A shot list in a folder with spaces, whose selfies lie in ``selfies/<folder>/1.jpg``."""
    root = tmp_path / "Previs Team"
    (root / "selfies" / folder).mkdir(parents=True)
    (root / "selfies" / folder / "1.jpg").write_bytes(_jpeg())
    shots = root / "shots.yaml"
    shots.write_text(SHOTS.format(selfies=selfies), "utf-8")
    return shots


def _validate(path: Path):
    return RUNNER.invoke(app, ["validate", str(path)])


def _problem(result, line_part: str, *fragments: str) -> None:
    assert result.exit_code == EXIT_INVALID_INPUT, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if line_part in ln]
    assert lines, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --- an accented name in either Unicode form --------------------------------------------------------------------

@pytest.mark.parametrize(("on_disk", "written"), [(NFD, NFC), (NFC, NFD)], ids=["mac-folder", "mac-shot-list"])
def test_a_name_in_the_other_unicode_form_is_found(tmp_path: Path, on_disk: str, written: str) -> None:
    shots = _project(tmp_path, on_disk, f"selfies/{written}/1.jpg")
    result = _validate(shots)
    assert result.exit_code == 0, result.output
    found = local_path(f"selfies/{written}/1.jpg", shots.parent)
    assert found is not None and found == shots.parent / "selfies" / on_disk / "1.jpg" and found.is_file()


def test_encode_identity_finds_a_selfie_typed_in_the_other_unicode_form(tmp_path: Path) -> None:
    pytest.importorskip("insightface", exc_type=ImportError)
    folder = tmp_path / "selfies" / NFD
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "recipes" / "selfies" / "mara_1.jpg", folder / "1.jpg")
    pack = tmp_path / "renee.idpack"
    result = RUNNER.invoke(app, ["encode-identity", str(tmp_path / "selfies" / NFC / "1.jpg"), "--name", "renee",
                                 "--face-models", "synthetic", "-o", str(pack)])
    assert result.exit_code == 0, result.output
    assert pack.is_file()


def test_a_path_argument_typed_in_the_other_unicode_form_is_found(tmp_path: Path) -> None:
    """Every path argument and option: a shot list in 'Renée/' copied off a Mac, typed on a Windows keyboard."""
    folder = tmp_path / NFD
    folder.mkdir()
    shots = folder / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: tiny-sd}\nshots:\n  - id: a\n    prompt: a quay\n",
                     "utf-8")
    result = _validate(tmp_path / NFC / "shots.yaml")
    assert result.exit_code == 0, result.output


def test_two_entries_of_one_name_in_both_forms_are_not_guessed_between(tmp_path: Path) -> None:
    (tmp_path / NFD).mkdir()
    (tmp_path / NFC).mkdir()
    # Both spellings exist: each is found as itself; a third name in neither is found in neither.
    assert local_path(f"{NFC}/x", tmp_path) == tmp_path / NFC / "x"
    assert local_path(f"{NFD}/x", tmp_path) == tmp_path / NFD / "x"
    assert local_path("Zoé/x", tmp_path) == tmp_path / "Zoé" / "x"


def test_the_job_keys_of_a_found_selfie_folder_match_either_spelling(tmp_path: Path) -> None:
    """The selfie is read from the folder the disk has: the identity is keyed by its bytes, so the plan is the same."""
    from cli_helpers import plan_jobs

    keys = []
    for number, written in enumerate((NFD, NFC)):
        shots = _project(tmp_path / str(number), NFD, f"selfies/{written}/1.jpg")
        shutil.copy(ROOT / "recipes" / "selfies" / "mara_1.jpg", shots.parent / "selfies" / NFD / "1.jpg")
        keys.append([job.key for job in plan_jobs(shots)])
    assert keys[0] == keys[1] and len(keys[0]) == 1


# --- what Finder and Explorer leave among the photos -------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "says"), [
    ("._1.jpg", APPLEDOUBLE_MAGIC + bytes(80), "macOS AppleDouble file (the Finder's metadata for '1.jpg'"),
    (".DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(64), "the macOS Finder's settings for the folder"),
    ("Thumbs.db", b"\xd0\xcf\x11\xe0" + bytes(64), "Windows Explorer's cache of the folder's thumbnails"),
    ("desktop.ini", b"[.ShellClassInfo]\r\n", "Windows Explorer's settings for the folder"),
    ("IMG_0001.HEIC", HEIC_HEAD, "is a HEIC photo (an iPhone's own format)"),
    ("IMG_0002.heic", MIF1_HEIC_HEAD, "is a HEIC photo (an iPhone's own format)"),
], ids=["appledouble", "ds-store", "thumbs-db", "desktop-ini", "heic", "heic-mif1"])
def test_a_file_that_is_no_photo_is_said_at_validate_and_by_the_reader(tmp_path: Path, name: str, content: bytes,
                                                                       says: str) -> None:
    shots = _project(tmp_path, "mara", f"selfies/mara/1.jpg, selfies/mara/{name}")
    selfie = shots.parent / "selfies" / "mara" / name
    selfie.write_bytes(content)
    result = _validate(shots)
    _problem(result, "characters.renee.selfies[1]: ", f"selfie 'selfies/mara/{name}' ", says)
    with pytest.raises(ImageError) as raised:  # encode-identity (selfies/mara/* picks up Thumbs.db) says the same
        load_rgb(selfie)
    assert says in str(raised.value)


def test_a_real_photo_named_like_appledouble_is_read(tmp_path: Path) -> None:
    """Only a file with AppleDouble's header is taken for one: a photo whose name starts '._' is a photo."""
    shots = _project(tmp_path, "mara", "selfies/mara/._1.jpg")
    (shots.parent / "selfies" / "mara" / "._1.jpg").write_bytes(_jpeg())
    assert _validate(shots).exit_code == 0


def test_an_appledouble_selfie_is_answered_with_its_photo_in_its_folder(tmp_path: Path) -> None:
    """The fix offered is a path that validates: 'selfies/mara/1.jpg', not '1.jpg' (no file beside the shot list)."""
    shots = _project(tmp_path, "mara", "selfies/mara/._1.jpg")
    (shots.parent / "selfies" / "mara" / "._1.jpg").write_bytes(APPLEDOUBLE_MAGIC + bytes(80))
    _problem(_validate(shots), "characters.renee.selfies[0]: ", "AppleDouble", "list 'selfies/mara/1.jpg' instead")
    shots.write_text(shots.read_text("utf-8").replace("._1.jpg", "1.jpg"), "utf-8")
    assert _validate(shots).exit_code == 0


def test_a_folder_of_only_appledouble_files_says_the_photos_are_not_there(tmp_path: Path) -> None:
    """A USB stick's '._' files copied without the photos: nothing to list instead, so nothing is offered."""
    shots = _project(tmp_path, "mara", "selfies/mara/._2.jpg")
    (shots.parent / "selfies" / "mara" / "._2.jpg").write_bytes(APPLEDOUBLE_MAGIC + bytes(80))
    _problem(_validate(shots), "characters.renee.selfies[0]: ", "AppleDouble",
             "'2.jpg' itself is not beside it", "copy the photos themselves")


@pytest.mark.parametrize("name", ["Thumbs.db", "desktop.ini", ".DS_Store"])
def test_a_real_photo_named_like_a_system_file_is_read(tmp_path: Path, name: str) -> None:
    """The system's files are told by their bytes as AppleDouble is: a JPEG saved under such a name is a photo."""
    shots = _project(tmp_path, "mara", f"selfies/mara/{name}")
    (shots.parent / "selfies" / "mara" / name).write_bytes(_jpeg())
    assert _validate(shots).exit_code == 0, _validate(shots).output
    assert load_rgb(shots.parent / "selfies" / "mara" / name).shape == (64, 64, 3)


def test_a_plate_that_is_heic_is_said_at_its_line(tmp_path: Path) -> None:
    shots = _project(tmp_path, "mara", "selfies/mara/1.jpg")
    (shots.parent / "plate.heic").write_bytes(HEIC_HEAD)
    shots.write_text(shots.read_text("utf-8") + "    plate: plate.heic\n", "utf-8")
    _problem(_validate(shots), "shots[0].plate: ", "plate 'plate.heic' is a HEIC photo", "sips -s format jpeg")


# --- Windows paths and case ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["C:\\Users\\ana\\Pictures\\1.jpg", "'c:/Users/ana/1.jpg'",
                                   "'\\\\studio-nas\\previs\\1.jpg'"])
def test_a_windows_absolute_path_is_named_as_one(tmp_path: Path, value: str) -> None:
    shots = _project(tmp_path, "mara", value)
    where = "the network share" if value.startswith("'\\\\") else "drive C:"
    _problem(_validate(shots), "characters.renee.selfies[0]: ", f"is a Windows path (on {where}",
             "which this machine cannot reach", "'selfies/1.jpg'")


def test_a_folder_named_like_a_drive_on_a_linux_share_is_found(tmp_path: Path) -> None:
    """'C:' is a folder name on Linux: 'C:\\mara\\1.jpg' there is answered with the '/' to write, not as a drive."""
    shots = _project(tmp_path, "mara", "selfies/mara/1.jpg, 'C:\\mara\\1.jpg'")
    (shots.parent / "C:" / "mara").mkdir(parents=True)
    (shots.parent / "C:" / "mara" / "1.jpg").write_bytes(_jpeg())
    result = _validate(shots)
    _problem(result, "characters.renee.selfies[1]: ", "write '/' between folders: 'C:/mara/1.jpg'")
    assert "cannot reach" not in result.stderr
    # One that is not there is answered as any missing file is, with the one that is.
    shots.write_text(shots.read_text("utf-8").replace("'C:\\mara\\1.jpg'", "C:/mara/2.jpg"), "utf-8")
    result = _validate(shots)
    _problem(result, "characters.renee.selfies[1]: ", "'C:/mara/2.jpg' does not exist", "did you mean 'C:/mara/1.jpg'?")
    assert "cannot reach" not in result.stderr


def test_doubled_backslashes_are_one_separator_in_the_hint(tmp_path: Path) -> None:
    shots = _project(tmp_path, "mara", "selfies\\\\mara\\\\1.jpg")
    _problem(_validate(shots), "characters.renee.selfies[0]: ", "write '/' between folders: 'selfies/mara/1.jpg'")


def test_a_name_in_another_case_than_the_disk_says_so(tmp_path: Path) -> None:
    shots = _project(tmp_path, "mara", "selfies/mara/1.JPG")
    _problem(_validate(shots), "characters.renee.selfies[0]: ", "the file is 'selfies/mara/1.jpg': names differ by "
             "case here", "write 'selfies/mara/1.jpg'")


# --- a shot list Notepad saved as "Unicode" -----------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "bom", "said"), [
    ("utf-16-le", b"\xff\xfe", "UTF-16 LE"), ("utf-16-be", b"\xfe\xff", "UTF-16 BE"),
    ("utf-16-le", b"", "UTF-16 LE"), ("utf-16-be", b"", "UTF-16 BE")], ids=["le-bom", "be-bom", "le", "be"])
def test_a_utf16_shot_list_is_named_as_utf16(tmp_path: Path, encoding: str, bom: bytes, said: str) -> None:
    shots = _project(tmp_path, "mara", "selfies/mara/1.jpg")
    text = shots.read_text("utf-8").replace("a cafe", "a café").replace("\n", "\r\n")
    shots.write_bytes(bom + text.encode(encoding))
    result = _validate(shots)
    assert result.exit_code == EXIT_INVALID_INPUT
    assert f"{shots}:1:1: the file is saved as {said}, not UTF-8" in result.stderr, result.stderr
    assert "save it as UTF-8" in result.stderr


def test_a_utf8_shot_list_with_bom_and_crlf_is_read(tmp_path: Path) -> None:
    shots = _project(tmp_path, "mara", "selfies/mara/1.jpg")
    shots.write_bytes(b"\xef\xbb\xbf" + shots.read_text("utf-8").replace("\n", "\r\n").encode())
    assert _validate(shots).exit_code == 0


# --- the same text in the other Unicode form ------------------------------------------------------------------------

CAUSE_SHOTS = """\
version: 1
project: forms
model: {{preset: tiny-sd}}
defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg], description: "{description}"}}
shots:
  - id: cafe
    prompt: "{{mara}} at the {place}"
"""


def _stale_causes(shots: Path, out: Path) -> dict[str, str | None]:
    import json

    result = RUNNER.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return {row["shot_id"]: row["cause"] for row in json.loads(result.stdout)["jobs"] if row["state"] == "stale"}


def test_a_text_retyped_in_the_other_unicode_form_is_said_so(write_shotlist, tmp_path: Path, engine_factory) -> None:
    """Keys follow the text as written, so the take renders again (no key changes); the cause says why, where
    'prompt changed' named a change nobody could see."""
    import idcli

    pytest.importorskip("insightface", exc_type=ImportError)
    cafe, renee = unicodedata.normalize("NFD", "café"), NFD
    shots, out = write_shotlist(CAUSE_SHOTS.format(description=f"{renee}, a woman", place=cafe)), tmp_path / "out"
    assert idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory).failed == 0
    forms = ("the same letters, only their accents encoded otherwise: composed vs decomposed Unicode, NFC vs NFD, as a "
             "name pasted from a macOS file name is decomposed")
    shots.write_text(CAUSE_SHOTS.format(description=f"{renee}, a woman", place="café"), "utf-8")
    assert _stale_causes(shots, out) == {"cafe": f"prompt changed (prompt: {forms})"}
    shots.write_text(CAUSE_SHOTS.format(description=f"{NFC}, a woman", place=cafe), "utf-8")
    assert _stale_causes(shots, out) == {"cafe": f"mara's description changed (mara's description: {forms})"}
    # A real edit is said as before, without the note.
    shots.write_text(CAUSE_SHOTS.format(description=f"{renee}, a woman", place="bar"), "utf-8")
    assert _stale_causes(shots, out) == {"cafe": "prompt changed"}


# --- accented names where a name must be ASCII ---------------------------------------------------------------------

def test_an_accented_character_name_and_shot_id_are_answered_with_their_ascii_spelling(tmp_path: Path) -> None:
    shots = _project(tmp_path, "mara", "selfies/mara/1.jpg")
    text = shots.read_text("utf-8").replace("  renee:", "  renée:").replace("{renee}", "{renée}")
    shots.write_text(text, "utf-8")
    result = _validate(shots)
    _problem(result, "characters.renée: ", "character name 'renée' must be", "write 'renee', and {renee} in prompts")
    _problem(result, "shots[0].prompt: ", "'{renée}' is no character placeholder: character names are ASCII",
             "write {renee}, with the character named renee")
    shots.write_text(text.replace("id: sh010", "id: sh010_café"), "utf-8")
    _problem(_validate(shots), "shots[0].id: ", "is not a safe file name", "write 'sh010_cafe'")


def test_a_name_with_no_ascii_spelling_offers_none(tmp_path: Path) -> None:
    shots = _project(tmp_path, "mara", "selfies/mara/1.jpg")
    shots.write_text(shots.read_text("utf-8").replace("id: sh010", "id: straße"), "utf-8")
    result = _validate(shots)
    _problem(result, "shots[0].id: ", "is not a safe file name")
    assert "write '" not in result.stderr


def test_an_output_folder_on_a_windows_drive_is_refused_before_anything_is_made(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A command copied from a Windows machine: render made a folder named 'C:\\\\renders\\\\winmac' here."""
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: tiny-sd}\nshots:\n  - id: a\n    prompt: a lighthouse\n",
                     "utf-8")
    monkeypatch.chdir(tmp_path)
    result = RUNNER.invoke(app, ["render", str(shots), "--out", "C:\\renders\\winmac", "--dry-run"])
    assert result.exit_code == EXIT_INVALID_INPUT, result.output
    assert "'C:\\renders\\winmac' is a Windows path (on drive C:), which this machine cannot reach" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shots.yaml"]


def test_an_appledouble_file_given_as_the_shot_list_names_the_shot_list(tmp_path: Path) -> None:
    """Tab completion on a USB stick a Mac wrote offers '._shots.yaml'; it was 'control character U+0000'."""
    shadow = tmp_path / "._shots.yaml"
    shadow.write_bytes(APPLEDOUBLE_MAGIC + b"\x00\x02\x00\x00Mac OS X        " + bytes(200))
    result = _validate(shadow)
    assert result.exit_code == EXIT_INVALID_INPUT
    assert (f"{shadow}:1:1: this is a macOS AppleDouble file (the Finder's metadata for 'shots.yaml'), not a shot list "
            "(give 'shots.yaml')") in result.stderr, result.stderr


def test_an_output_folder_in_a_folder_named_like_a_drive_is_taken(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """'C:' is a folder name on a Linux share: 'C:/renders/new' there is a path of this machine, not yet made."""
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: tiny-sd}\nshots:\n  - id: a\n    prompt: a lighthouse\n",
                     "utf-8")
    (tmp_path / "C:").mkdir()
    monkeypatch.chdir(tmp_path)
    result = RUNNER.invoke(app, ["render", str(shots), "--out", "C:/renders/new", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Windows path" not in result.output
    # Written with '\\', it is one name here, not that folder: refused as before.
    result = RUNNER.invoke(app, ["render", str(shots), "--out", "C:\\renders\\new", "--dry-run"])
    assert result.exit_code == EXIT_INVALID_INPUT and "is a Windows path (on drive C:)" in result.stderr, result.output
