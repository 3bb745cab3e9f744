"""Checks that the mutation pass (docs/testing.md, tools/mutation_pass.py) found missing: each test here fails
with the mutation it names applied, and passes without it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from idcli import safeio
from idcli.errors import OutputError
from idcli.store import OutputStore

# -- atomic commits ------------------------------------------------------------------------------------


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutations atomic-no-fsync, atomic-no-dir-fsync: a rename not preceded by the file's fsync can leave an
    empty file at the final path after a power cut; one not followed by the folder's fsync can lose the rename."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    final = tmp_path / "shot" / "shot_t1.json"
    final.parent.mkdir()
    final.write_bytes(b"old")
    safeio.atomic_write(final, b"new")
    assert events == ["fsync file", "rename", "fsync folder"]
    assert final.read_bytes() == b"new"



def test_a_commit_that_raises_stops_the_commits_queued_behind_it() -> None:
    """Mutation queue-goes-on-after-failure: a commit that raises (the disk filled mid-write) must stop the
    commits already queued behind it, so nothing more is written after the failure. The test docs/testing.md
    named as killing it never makes a commit raise: the verdict had come from timing (it survived a re-run)."""
    import threading

    from idcli.writer import CommitQueue

    ran: list[int] = []
    gate = threading.Event()

    def failing() -> int:
        gate.wait(10)  # the two commits behind it are queued before it fails
        raise OSError(28, "No space left on device")

    def later(value: int) -> int:
        ran.append(value)
        return value

    queue = CommitQueue(lambda result: None, depth=5)
    queue.submit(failing)
    queue.submit(later, 2)
    queue.submit(later, 3)
    gate.set()
    with pytest.raises(OSError, match="No space left"):
        queue.drain()
    queue.cancel()
    queue.close()
    assert ran == [], "commits queued behind a failed one ran"

# -- path containment ----------------------------------------------------------------------------------


@pytest.mark.parametrize("relpath", ["../escaped.png", "sh010/../../escaped.json"])
def test_the_store_refuses_a_path_that_leaves_the_output_folder(tmp_path: Path, relpath: str) -> None:
    """Mutation store-path-no-containment: with no link on the way, only the resolved-path check stands
    between a relative path with '..' and a write outside OUT."""
    store = OutputStore(tmp_path / "out")
    with pytest.raises(OutputError, match="resolves outside the output folder"):
        store.path(relpath)
    with store.session(), pytest.raises(OutputError, match="resolves outside the output folder"):
        store.write(relpath, b"x")
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "escaped.json").exists()


# -- job keys ------------------------------------------------------------------------------------------

KEYED = """\
version: 1
project: keyed
model: {preset: tiny-sd}
defaults: {size: 64x96, steps: 3, guidance: 4.0, sampler: ddim, negative_prompt: blurry}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: sh010, prompt: "{mara} on a wet street", seeds: [5], identity_strength: 0.8}
"""

# Each edit changes the pixels of the one job, so each must change its key (and no two may share one).
PIXEL_EDITS = {
    "height": ("size: 64x96", "size: 64x128"),
    "width": ("size: 64x96", "size: 96x96"),
    "seed": ("seeds: [5]", "seeds: [6]"),
    "steps": ("steps: 3", "steps: 4"),
    "sampler": ("sampler: ddim", "sampler: euler"),
    "guidance": ("guidance: 4.0", "guidance: 5.0"),
    "negative prompt": ("negative_prompt: blurry", "negative_prompt: grainy"),
    "identity strength": ("identity_strength: 0.8", "identity_strength: 0.6"),
    "prompt": ("on a wet street", "on a dry street"),
}


def test_every_field_that_changes_the_pixels_changes_the_key(write_shotlist) -> None:
    """Mutations keys-size, keys-no-steps, keys-no-sampler, keys-no-guidance, keys-no-strength, keys-no-seed: a
    field left out of the key makes a resume skip a job whose image would now differ."""
    from cli_helpers import plan_jobs

    keys = {"base": plan_jobs(write_shotlist(KEYED))[0].key}
    for name, (old, new) in PIXEL_EDITS.items():
        assert KEYED.count(old) == 1, name
        keys[name] = plan_jobs(write_shotlist(KEYED.replace(old, new), f"{name.replace(' ', '_')}.yaml"))[0].key
    same = {k: v for k, v in keys.items() if list(keys.values()).count(v) > 1}
    assert not same, f"edits that keep a key: {same}"


def test_the_start_of_a_run_removes_only_idclis_own_temporaries(tmp_path: Path) -> None:
    """Mutation clean-any-dotfile: the start-of-run cleanup must leave a person's dot-files and any file not
    named like an idcli temporary where they are."""
    out = tmp_path / "out"
    shot = out / "sh010"
    shot.mkdir(parents=True)
    leftover = shot / ".sh010_t1.png.999.abcd0123.idcli-tmp"
    kept = [shot / ".notes.txt", shot / ".DS_Store", shot / "sh010_t1.png.idcli-tmp"]
    for path in [leftover, *kept]:
        path.write_bytes(b"x")
    with OutputStore(out).session():
        pass
    assert not leftover.exists()
    assert [p.name for p in kept if not p.exists()] == []


# -- exact resume --------------------------------------------------------------------------------------

TWO_TAKES = """\
version: 1
project: resume-guard
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 2}
shots:
  - {id: sh010, prompt: a lighthouse at dusk}
"""


def test_an_image_carrying_another_jobs_record_is_not_recovered(write_shotlist, tmp_path: Path,
                                                               engine_factory) -> None:
    """Mutation state-recover-any-record: a take's image without its sidecar is recovered (not rendered) only
    when its own record names this job; take 1's image copied over take 2's must be rendered again."""
    from cli_helpers import render_on_cpu

    from idcli.hashing import sha256_file

    path, out = write_shotlist(TWO_TAKES), tmp_path / "out"
    render_on_cpu(path, out, engine_factory)
    shot = out / "sh010"
    (shot / "sh010_t2.json").unlink()
    (shot / "sh010_t2.png").write_bytes((shot / "sh010_t1.png").read_bytes())
    report = render_on_cpu(path, out, engine_factory)
    assert [(o.take, o.status) for o in report.jobs] == [(1, "skipped"), (2, "rendered")]
    assert sha256_file(shot / "sh010_t2.png") != sha256_file(shot / "sh010_t1.png")



# -- bounded YAML --------------------------------------------------------------------------------------

_BOMB_READER = """\
import sys
from idcli.errors import ShotListError
from idcli.yamlsafe import load_yaml_bytes
try:
    load_yaml_bytes(open(sys.argv[1], "rb").read(), "bomb.yaml")
except ShotListError as exc:
    print(exc)
    sys.exit(3)
"""


def test_an_alias_bomb_is_refused_within_a_memory_and_time_bound(tmp_path: Path) -> None:
    """Mutation yaml-no-alias-bound: without the expansion bound the billion-laughs test in test_shotlist.py does
    not fail, it eats the machine (11 GB in three minutes). Here the same document is read in a process held to
    1 GB and 60 s, so a lost bound is one clear failure."""
    import resource
    import subprocess
    import sys

    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("version: 1\nproject: demo\n" + "\n".join(lines) + "\nshots: [{id: a, prompt: x}]\n", "utf-8")

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    result = subprocess.run([sys.executable, "-c", _BOMB_READER, str(bomb)], capture_output=True, text=True,
                            timeout=60, preexec_fn=bounded, env=env)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "alias expansion bomb" in result.stdout

# -- identity QA ---------------------------------------------------------------------------------------


class _Face:
    """A detected face as QA reads one: a box, a score and an embedding (exact dot products: no normalising)."""

    def __init__(self, x: float, embedding: list[float], y: float = 0.0) -> None:
        import numpy as np

        self.bbox, self.det_score = np.array([x, y, x + 40.0, y + 40.0]), 0.9
        self.embedding = np.zeros(512)
        self.embedding[:2] = embedding


@pytest.mark.parametrize(("second_face", "flags"), [
    ([0.5, 0.8], ["leakage"]),        # cosine to the other character exactly at the leakage threshold: flagged
    ([0.49, 0.8], []),                # just under it: not
    ([0.3, 0.5], []),                 # matched cosine exactly at the low-identity threshold: not below it
    ([0.3, 0.49], ["low_identity"]),  # just under it: flagged
])
def test_qa_flags_at_their_thresholds_as_documented(second_face: list[float], flags: list[str]) -> None:
    """Mutations qa-leak-boundary, qa-low-inclusive: docs/review.md says low identity is a cosine *below* its
    threshold and leakage one *at or above* its threshold."""
    import numpy as np

    from idcli.review.qa import CastMember, QAThresholds, assess

    cast = [CastMember("a", np.eye(512)[0]), CastMember("b", np.eye(512)[1])]
    faces = [_Face(0.0, [1.0, 0.0]), _Face(50.0, second_face)]
    record = assess(faces, cast, 100, 100, QAThresholds(low_identity=0.5, leakage=0.5))
    assert [f["character"] for f in record["faces"]] == ["a", "b"]
    assert record["flags"] == flags


# A plate face box at x 100..140, y 100..140: grown by a quarter of its side (10 px) on each side, a detected
# face whose centre lies within 90..150 on both axes is on it.
@pytest.mark.parametrize(("centre", "on_the_box"), [
    ((95, 120), True), ((85, 120), False),    # left
    ((145, 120), True), ((155, 120), False),  # right
    ((120, 95), True), ((120, 85), False),    # top
    ((120, 145), True), ((120, 155), False),  # bottom
])
def test_a_plate_face_counts_as_on_its_box_within_the_documented_margin(centre: tuple[int, int],
                                                                       on_the_box: bool) -> None:
    """Mutation qa-region-margin: docs/review.md grows each recorded plate box by REGION_MARGIN on *each* side;
    a face just outside one edge is the plate's own person, one just inside is the character's."""
    import numpy as np

    from idcli.review.qa import REGION_MARGIN, CastMember, assess

    assert REGION_MARGIN == 0.25
    face = _Face(centre[0] - 20.0, [1.0, 0.0], y=centre[1] - 20.0)
    record = assess([face], [CastMember("a", np.eye(512)[0])], 300, 300, regions={"a": [[100.0, 100.0, 40.0, 40.0]]})
    assert record["faces"][0]["plate_face"] is (not on_the_box)
    assert record["faces"][0]["character"] == ("a" if on_the_box else None)


# -- selects -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("take", ['"2"', "2.0", "true", "null", "[2]"])
def test_a_selects_file_whose_take_is_no_whole_number_is_damaged(tmp_path: Path, take: str) -> None:
    """Mutation selects-damaged-file: a pick's take must be an integer; read as anything else it would be
    compared with take numbers that never equal it, and the director's pick silently shown as missing."""
    from idcli.errors import InputError
    from idcli.review.selects import read_selects

    (tmp_path / "selects.json").write_text(f'{{"schema": 1, "selects": {{"sh010": {{"take": {take}}}}}}}', "utf-8")
    with pytest.raises(InputError, match="damaged"):
        read_selects(tmp_path)
    (tmp_path / "selects.json").write_text('{"schema": 1, "selects": {"sh010": {"take": 2}}}', "utf-8")
    assert read_selects(tmp_path) == {"sh010": {"take": 2}}


# -- determinism: seeds --------------------------------------------------------------------------------

SEEDED = """\
version: 1
project: seeds
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
shots:
  - {id: sh010, prompt: a lighthouse at dusk, takes: 3}
  - {id: sh020, prompt: a harbour at dawn, seeds: [11]}
"""


def test_a_takes_derived_seed_is_its_own_and_independent_of_the_other_shots(write_shotlist) -> None:
    """Mutations derived-seed-off-by-one, derived-seed-unstable: take N of a shot without seeds gets
    derived_seed(shot, N), every take its own, whatever other shots the list holds."""
    from cli_helpers import plan_jobs

    from idcli.plan import derived_seed

    jobs = plan_jobs(write_shotlist(SEEDED))
    seeds = {(j.shot_id, j.take): j.request.seed for j in jobs}
    assert seeds == {("sh010", 1): derived_seed("sh010", 1), ("sh010", 2): derived_seed("sh010", 2),
                     ("sh010", 3): derived_seed("sh010", 3), ("sh020", 1): 11}
    assert len({seeds["sh010", t] for t in (1, 2, 3)}) == 3
    alone = plan_jobs(write_shotlist(SEEDED.replace("  - {id: sh020, prompt: a harbour at dawn, seeds: [11]}\n", ""),
                                     "alone.yaml"))
    assert [(j.take, j.request.seed, j.key) for j in alone] == [
        (j.take, j.request.seed, j.key) for j in jobs if j.shot_id == "sh010"]


def test_every_commit_is_journalled(write_shotlist, tmp_path: Path) -> None:
    """Mutation journal-not-written: .idcli/journal.jsonl records each commit (its job key, shot and take)."""
    from cli_helpers import journal_commits, plan_jobs

    jobs = plan_jobs(write_shotlist(SEEDED))
    store = OutputStore(tmp_path / "out")
    with store.session():
        for job in jobs[:2]:
            store.commit(job, b"not really a png", {"job_key": job.key})
    assert journal_commits(tmp_path / "out") == {jobs[0].key: 1, jobs[1].key: 1}
    entries = [e for e in store.journal_entries() if e["event"] == "commit"]
    assert [(e["shot_id"], e["take"]) for e in entries] == [("sh010", 1), ("sh010", 2)]


def test_a_sidecar_naming_an_image_up_and_out_of_the_folder_is_not_a_take(tmp_path: Path) -> None:
    """Mutation results-dotdot: ``../NAME.png`` has the two parts of ``SHOT/NAME.png``; review, export, select and
    deliver read takes through scan_results, so its '..' check is what keeps a file beside OUT out of them."""
    import json

    from idcli.results import scan_results

    out = tmp_path / "out"
    (out / "sh010").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"a file beside the output folder")
    record = {"job_key": "idcli-job-v1:" + "ab" * 32, "shot_id": "sh010", "take": 1,
              "image": {"path": "../outside.png"}}
    (out / "sh010" / "sh010_t1.json").write_text(json.dumps(record), "utf-8")
    scan = scan_results(out)
    assert scan.records == []
    assert scan.problems == ["sh010/sh010_t1.json: image path '../outside.png' is not inside the output folder"]


# -- provenance ----------------------------------------------------------------------------------------


def test_verify_fails_a_signed_image_whose_sidecar_names_another_job(write_shotlist, tmp_path: Path, engine_factory,
                                                                    signing_env) -> None:
    """Mutation verify-job-key: the signed manifest's org.idcli.render assertion binds the image to its job; a
    sidecar whose job key was changed (the image and its sha256 untouched) must fail verify, or render would
    count the image done for a job that never made it."""
    import json

    from cli_helpers import render_on_cpu

    from idcli.verify import verify_folder

    pytest.importorskip("c2pa")
    out = tmp_path / "out"
    report = render_on_cpu(write_shotlist(TWO_TAKES.replace("takes: 2", "takes: 1")), out, engine_factory, sign=True)
    sidecar = Path(report.jobs[0].sidecar)
    assert verify_folder(out, signing_env.root).failed == 0
    record = json.loads(sidecar.read_text("utf-8"))
    record["job_key"] = "idcli-job-v1:" + "0" * 64
    sidecar.write_text(json.dumps(record, indent=2), "utf-8")
    result = verify_folder(out, signing_env.root)
    assert result.failed == 1
    # The image's own record (its idcli chunk) names the job too (verify compares the sidecar with it); the
    # manifest's assertion is checked on its own.
    assert result.images[0].problems[1:] == ["the manifest's org.idcli.render assertion names another job key"]
    assert result.images[0].problems[0].startswith("its sidecar says job_key 'idcli-job-v1:")


def test_verify_fails_a_manifest_that_does_not_say_the_image_was_generated(write_shotlist, tmp_path: Path,
                                                                          engine_factory, signing_env) -> None:
    """Mutation verify-not-created: an image signed with a valid manifest whose first action is not
    ``c2pa.created`` with the trainedAlgorithmicMedia source type (here: a camera capture) must not pass as an
    idcli render, even signed by the studio's own certificate."""
    import json

    from cli_helpers import render_on_cpu

    from idcli.hashing import sha256_bytes
    from idcli.provenance import record_of_sidecar
    from idcli.signing import load_credentials, manifest_for, sign_with_manifest, without_manifest
    from idcli.verify import verify_folder

    pytest.importorskip("c2pa")
    out = tmp_path / "out"
    report = render_on_cpu(write_shotlist(TWO_TAKES.replace("takes: 2", "takes: 1")), out, engine_factory, sign=True)
    image, sidecar = Path(report.jobs[0].image), Path(report.jobs[0].sidecar)
    record = json.loads(sidecar.read_text("utf-8"))
    manifest = manifest_for(record_of_sidecar(record))
    action = manifest["assertions"][0]["data"]["actions"][0]
    assert action["action"] == "c2pa.created"
    action["digitalSourceType"] = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
    unsigned = without_manifest(image.read_bytes())
    assert unsigned is not None
    resigned = sign_with_manifest(load_credentials(signing_env.cert, signing_env.key), unsigned, manifest)
    image.write_bytes(resigned)
    record["image"]["sha256"] = sha256_bytes(resigned)  # the sidecar matches: only the manifest is at fault
    sidecar.write_text(json.dumps(record, indent=2), "utf-8")
    result = verify_folder(out, signing_env.root)
    assert result.failed == 1
    assert result.images[0].problems == ["the manifest's first action is not c2pa.created (trainedAlgorithmicMedia)"]


# -- delivery ------------------------------------------------------------------------------------------


def test_a_take_whose_prompt_names_the_output_folder_is_not_delivered(write_shotlist, tmp_path: Path,
                                                                       engine_factory) -> None:
    """Mutation deliver-no-leak-check: prompts are never reduced (they are the director's words), so the last
    check — no text of the copy names a local folder — is what keeps this take in the studio."""
    from cli_helpers import render_on_cpu

    from idcli.delivery import DeliveryError, deliver

    out, dest = tmp_path / "renders", tmp_path / "client"
    shots = TWO_TAKES.replace("takes: 2", "takes: 1").replace("a lighthouse at dusk", f"a sign that reads {out}")
    render_on_cpu(write_shotlist(shots), out, engine_factory)
    with pytest.raises(DeliveryError, match=f"would still name '{out}'"):
        deliver(out, dest, credentials=None)
    assert not list(dest.glob("*.png")) and not list(dest.glob("*.json"))


def test_a_home_relative_path_is_a_local_path_the_delivery_record_reduces() -> None:
    """Mutation looks-absolute-no-home: ``~/...`` and ``~user/...`` name a studio machine's files as surely as
    ``/home/...`` does; under a key the record does not know they must be reduced to a file name, and verify
    must call one a local path."""
    from idcli.delivery_checks import absolute_values
    from idcli.delivery_record import delivery_record, looks_absolute

    assert looks_absolute("~/studio/selfies/mara.jpg") and looks_absolute("~jane/plates/p.png")
    sidecar = {"job_key": "idcli-job-v2:abc", "shot_id": "s", "take": 1, "prompt": "a street",
               "image": {"path": "s/s_t1.png", "width": 8, "height": 8, "sha256": "00"},
               "future_field": "~/studio/secret/file.bin", "later": {"where": "~jane/plates/p.png"}}
    record = delivery_record(sidecar, delivered_name="s_take1.png", source_name="s_t1.png", source_sha256="00",
                             signature="none")
    assert record["future_field"] == "file.bin" and record["later"] == {"where": "p.png"}
    assert absolute_values(sidecar, looks_absolute) == ["future_field", "later.where"]


def test_verify_fails_a_delivered_copy_its_listing_gives_another_sha256(write_shotlist, tmp_path: Path,
                                                                       engine_factory) -> None:
    """Mutation verify-delivery-listing-sha: delivery.json is what a recipient checks the folder against; an entry
    whose sha256 is not the copy's (a copy replaced, or the listing edited) must fail verify."""
    import json

    from cli_helpers import render_on_cpu

    from idcli.delivery import deliver
    from idcli.verify import verify_folder

    out, dest = tmp_path / "renders", tmp_path / "client"
    render_on_cpu(write_shotlist(TWO_TAKES.replace("takes: 2", "takes: 1")), out, engine_factory)
    deliver(out, dest, credentials=None)
    assert verify_folder(dest).failed == 0
    listing = json.loads((dest / "delivery.json").read_text("utf-8"))
    listing["images"][0]["sha256"] = "0" * 64
    (dest / "delivery.json").write_text(json.dumps(listing, indent=2), "utf-8")
    result = verify_folder(dest)
    assert result.failed == 1
    assert result.images[0].problems == ["delivery.json lists another sha256 for it"]

