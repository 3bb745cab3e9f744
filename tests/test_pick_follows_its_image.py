"""A pick names a take and the job key it had when picked. Inserting a seed into a shot's ``seeds:`` shifts its
takes: the picked pixels are reused at another take (same job key, idcli/reuse.py), and the picked take holds
another render. The pick is of those pixels: ``select``, its list, the notes and the page name the take that holds
them now, and ``select`` keeps the pick on it (docs/review.md, "Selects"), never on different pixels unsaid.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from browser_pipe import CHROMIUM, Browser
from review_helpers import cli

import idcli
from idcli.delivery import DeliveryError
from idcli.review.pick_standing import takes_holding
from idcli.review.picks_file import seen_key

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
    version: 1
    project: follow
    model: {preset: tiny-sd}
    defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
    shots:
      - {id: a010, prompt: "a lighthouse in a storm", seeds: [1, 2]}
      - {id: a020, prompt: "a harbour at dawn", seeds: [7]}
    """


def _render(shots: Path, out: Path, tiny_engines: Any) -> idcli.RenderReport:
    def engine(identity: Any, runtime: Any, adapter: Any = None) -> Any:
        return tiny_engines(identity.preset, adapter)

    return idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1, engine_factory=engine)


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory, tiny_engines: Any) -> Path:
    """a010 rendered with seeds [1, 2], take 2 (seed 2) picked with idcli select, then seed 5 inserted before it
    and rendered: seed 2's pixels are take 3 now (reused), take 2 is seed 5's render."""
    base = tmp_path_factory.mktemp("pick-follow")
    shots, out = base / "shots.yaml", base / "out"
    shots.write_text(textwrap.dedent(SHOTS), "utf-8")
    _render(shots, out, tiny_engines)
    assert cli("select", out, "a010=2").exit_code == 0
    shots.write_text(shots.read_text("utf-8").replace("seeds: [1, 2]", "seeds: [1, 5, 2]"), "utf-8")
    report = _render(shots, out, tiny_engines)
    statuses = {f"{j.shot_id}_t{j.take}": j.status for j in report.jobs}
    assert statuses["a010_t2"] == "rendered" and statuses["a010_t3"] == "reused", statuses
    return out


@pytest.fixture
def out(shifted: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(shifted, target)
    return target


def _key(out: Path, stem: str) -> str:
    shot = stem.rsplit("_t", 1)[0]
    return json.loads((out / shot / f"{stem}.json").read_text("utf-8"))["job_key"]


def _selects(out: Path) -> dict[str, Any]:
    return json.loads((out / "selects.json").read_text("utf-8"))["selects"]


def test_the_picked_image_is_take_3_after_the_seed_was_inserted(out: Path) -> None:
    picked = _selects(out)["a010"]
    assert picked["take"] == 2 and picked["job_key"] == _key(out, "a010_t3") != _key(out, "a010_t2")



def test_select_keeps_the_pick_on_the_take_that_holds_the_picked_image_and_says_so(out: Path) -> None:
    before = _selects(out)["a010"]
    result = cli("select", out, "a020=1")
    assert result.exit_code == 0, result.output
    # the same pixels, the same pick: its key and when it was made kept, its take the one holding them now
    assert _selects(out)["a010"] == {**before, "take": 3}
    said = [line for line in result.stderr.splitlines() if "a010" in line]
    assert said == ["idcli: note: selects.json: a010=t2 moved to t3: the image picked as take 2 is take 3 now (the "
                    "same job: the shot's takes shifted)"], result.stderr
    listed = cli("select", out)
    assert "a010=t3: as rendered when picked" in listed.output, listed.output


def test_the_list_of_picks_names_the_take_that_holds_the_picked_image(out: Path) -> None:
    listed = cli("select", out)
    assert listed.exit_code == 0, listed.output
    folder = str(out)
    assert ("a010=t2: re-rendered since it was picked; the image picked as take 2 is take 3 now (the same job: the "
            f"shot's takes shifted); idcli select {folder} a010=3 picks it there") in listed.output.splitlines()
    document = json.loads(cli("select", out, "--json").output)
    assert document["standing"] == [{"shot_id": "a010", "take": 2, "standing": "re-rendered", "image_changed": None,
                                     "picked_image_takes": [3]}]
    assert _selects(out)["a010"]["take"] == 2  # the list writes nothing


def test_review_and_the_page_name_the_take_that_holds_the_picked_image(out: Path) -> None:
    result = cli("review", out)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "a010" in line]
    assert notes == [f"idcli: note: a010: the director's select, take 2, was re-rendered since it was picked; the "
                     "image picked as take 2 is take 3 now (the same job: the shot's takes shifted): shown as the "
                     f"select (idcli select {out} a010=3 records it there)"], result.stderr
    page = (out / "review" / "index.html").read_text("utf-8")
    take_2 = page.split('id="take-a010_t2"', 1)[1].split("</article>", 1)[0]
    take_3 = page.split('id="take-a010_t3"', 1)[1].split("</article>", 1)[0]
    assert "re-rendered since picked: the picked image is take 3 now</span>" in take_2
    assert '<span class="badge">the image picked as take 2</span>' in take_3


def _article(page: str, stem: str) -> str:
    """The opening tag and badges of a take's article on the page."""
    return '<article class="' + page.split('id="take-' + stem + '"', 1)[0].rsplit('<article class="', 1)[1] + \
        page.split('id="take-' + stem + '"', 1)[1].split("</article>", 1)[0]


def test_every_command_shows_the_take_holding_the_picked_image_as_the_select(out: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Before ``select`` runs, the animatic (every format reads one cut), the contact sheet, the printed board, the
    page's select marking and ``review --json``'s count show take 3, which holds the picked pixels, as the select,
    as ``deliver`` sends it: take 2 (seed 5's render, never seen by the director) is no clip, no board, no select.
    Reading commands write no pick."""
    import opentimelineio as otio
    from PIL import ImageDraw

    before = (out / "selects.json").read_bytes()
    labels: list[str] = []
    drawn = ImageDraw.ImageDraw.text

    def text(self: Any, xy: Any, words: str, *args: Any, **kwargs: Any) -> None:
        labels.append(words)
        drawn(self, xy, words, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    reviewed = cli("review", out, "--json")
    assert reviewed.exit_code == 0, reviewed.output
    assert json.loads(reviewed.stdout)["counts"]["selected"] == 1
    assert [label for label in labels if label.startswith("a010")] == ["a010  t3  selected"], labels
    page = (out / "review" / "index.html").read_text("utf-8")
    take_2, take_3 = _article(page, "a010_t2"), _article(page, "a010_t3")
    assert take_3.startswith('<article class="take selected"') and "data-board" in take_3.split(">", 1)[0]
    assert '<span class="badge sel">selected</span>' in take_3
    assert take_2.startswith('<article class="take"') and "data-board" not in take_2.split(">", 1)[0]
    assert '<span class="badge sel">selected</span>' not in take_2
    assert "<span class=navpick>✓t3</span>" in page
    exported = cli("export", out, "--otio", tmp_path / "cut.otio")
    assert exported.exit_code == 0, exported.output
    timeline = otio.adapters.read_from_file(str(tmp_path / "cut.otio"))
    [clip] = [c for c in timeline.find_clips() if c.name == "a010"]
    assert clip.media_reference.target_url.endswith("a010_t3.png")
    assert (clip.metadata["idcli"]["take"], clip.metadata["idcli"]["selected"]) == (3, True)
    assert ("the image picked as take 2 is take 3 now" in exported.stderr), exported.stderr
    assert (out / "selects.json").read_bytes() == before


def test_a_picks_file_of_the_image_seen_is_recorded_at_the_take_that_holds_it(out: Path, tmp_path: Path) -> None:
    """Exported from the page as it was before the seed was inserted: take 2, with the key the director saw (seed
    2's). Recorded at take 3, which holds that render now, without --force and saying so; a pick of what take 2
    shows now (seed 5's key) is take 2 as ever."""
    (out / "selects.json").unlink()
    exported = tmp_path / "picks.json"
    exported.write_text(json.dumps({"schema": 1, "kind": "idcli-picks", "project": "follow", "run": "0" * 20,
                                    "exported": "2026-12-01T10:00:00.000Z",
                                    "picks": {"a010": {"take": 2, "key": seen_key(_key(out, "a010_t3"))},
                                              "a020": {"take": 1, "key": seen_key(_key(out, "a020_t1"))}}}), "utf-8")
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 0, result.output
    assert {shot: (pick["take"], pick["job_key"]) for shot, pick in _selects(out).items()} == {
        "a010": (3, _key(out, "a010_t3")), "a020": (1, _key(out, "a020_t1"))}
    assert ("idcli: note: picks.json: a010=2 recorded as a010=3: the image picked as take 2 is take 3 now (the same "
            "job: the shot's takes shifted)") in result.stderr.splitlines(), result.stderr
    again = json.loads(exported.read_text("utf-8"))
    again["picks"] = {"a010": {"take": 2, "key": seen_key(_key(out, "a010_t2"))}}
    exported.write_text(json.dumps(again), "utf-8")
    assert cli("select", out, "--from", exported).exit_code == 0
    assert _selects(out)["a010"]["take"] == 2


def _give_picked_key(out: Path, stem: str) -> None:
    """``stem`` given the picked image's job key, in its sidecar and in its PNG's own record (as two alike takes of
    one shot would record it; a shot list cannot give one seed twice): then takes 1 and 3 hold the image picked as
    take 2, and ``deliver`` finds the take's sidecar and image in agreement."""
    from idcli.hashing import sha256_bytes
    from idcli.provenance import PNG_SIGNATURE, png_chunk, png_chunks

    sidecar, image = out / "a010" / f"{stem}.json", out / "a010" / f"{stem}.png"
    record = json.loads(sidecar.read_text("utf-8"))
    old, new = record["job_key"].encode(), _key(out, "a010_t3").encode()
    data = PNG_SIGNATURE + b"".join(png_chunk(kind, payload.replace(old, new) if kind in (b"tEXt", b"iTXt") else
                                              payload) for kind, payload in png_chunks(image.read_bytes()))
    image.write_bytes(data)
    record["job_key"], record["image"]["sha256"] = new.decode(), sha256_bytes(data)
    sidecar.write_text(json.dumps(record), "utf-8")


def _what_each_command_takes(out: Path, tmp_path: Path, name: str, skipped: int = 0) -> dict[str, Any]:
    """a010's select as the list, review --json (the page), export's timeline and deliver each take it. ``skipped``:
    how many problems review and export skip (exit 2, everything else used): a sidecar whose image was deleted."""
    import opentimelineio as otio

    listed = cli("select", out)
    assert listed.exit_code == 0, listed.output
    reviewed = cli("review", out, "--json")
    assert reviewed.exit_code == (2 if skipped else 0), reviewed.output
    assert len((json.loads(reviewed.stdout).get("error") or {}).get("problems", [])) == skipped, reviewed.output
    page = (out / "review" / "index.html").read_text("utf-8")
    marked = [take for take in (1, 2, 3) if f'id="take-a010_t{take}"' in page  # a take not rendered has no article
              and _article(page, f"a010_t{take}").startswith('<article class="take selected')]
    assert cli("export", out, "--otio", tmp_path / f"{name}.otio").exit_code == (2 if skipped else 0)
    [clip] = [c for c in otio.adapters.read_from_file(str(tmp_path / f"{name}.otio")).find_clips() if c.name == "a010"]
    sent, deliver_notes = None, []
    if skipped:  # deliver sends nothing from a folder with a damaged take (idcli verify names it)
        with pytest.raises(DeliveryError, match="is missing; nothing was delivered"):
            idcli.deliver(out, tmp_path / f"{name}-delivery", credentials=None)
    else:
        delivered = idcli.deliver(out, tmp_path / f"{name}-delivery", credentials=None)
        [sent] = [(i.take, i.selected) for i in delivered.images if i.shot_id == "a010"]
        deliver_notes = [n for n in delivered.notes if n.startswith("a010")]
    return {"list": [line for line in listed.output.splitlines() if line.startswith("a010")],
            "review notes": [n for n in json.loads(reviewed.stdout)["notes"] if n.startswith("a010")],
            "selected shots": json.loads(reviewed.stdout)["counts"]["selected"], "page": marked,
            "timeline": (clip.metadata["idcli"]["take"], clip.metadata["idcli"]["selected"]), "deliver": sent,
            "deliver notes": deliver_notes}


def test_a_pick_whose_image_two_takes_hold_stands_on_the_first_in_every_command(out: Path, tmp_path: Path) -> None:
    """Takes 1 and 3 hold the image picked as take 2 (the same job, the same pixels). The page, review, the animatic
    and deliver showed and sent take 1 (the first) while ``select`` kept the pick on take 2 (seed 5's render) and
    asked to choose: the commands disagreed on the director's select. One rule now (pick_standing.followed_take): the
    first take holding the picked image. Before ``select`` runs each command takes take 1 and says so; ``select``
    records the pick there, naming the other take; after it, every command takes take 1 with nothing to say."""
    _give_picked_key(out, "a010_t1")
    folder = str(out)
    held = ("the image picked as take 2 is each of takes 1, 3 now (the same job: the shot's takes shifted; the first, "
            "take 1, stands for it)")
    before = _what_each_command_takes(out, tmp_path, "before")
    assert before == {
        "list": [f"a010=t2: re-rendered since it was picked; {held}; idcli select {folder} a010=1 picks it there"],
        "review notes": [f"a010: the director's select, take 2, was re-rendered since it was picked; {held}: shown as "
                         f"the select (idcli select {folder} a010=1 records it there)"],
        "selected shots": 1, "page": [1], "timeline": (1, True), "deliver": (1, True),
        "deliver notes": [f"a010: the director's select: {held}; delivered take 1 (idcli select records the pick "
                          "there)"]}
    picked = _selects(out)["a010"]
    result = cli("select", out, "a020=1")
    assert result.exit_code == 0, result.output
    assert _selects(out)["a010"] == {**picked, "take": 1}  # the same pixels, the same pick: its key and time kept
    assert [line for line in result.stderr.splitlines() if "a010" in line] == [
        f"idcli: note: selects.json: a010=t2 moved to t1: {held} (idcli select {folder} a010=N picks another of "
        "them)"], result.stderr
    after = _what_each_command_takes(out, tmp_path, "after")
    assert after == {"list": ["a010=t1: as rendered when picked"], "review notes": [], "selected shots": 2,
                     "page": [1], "timeline": (1, True), "deliver": (1, True), "deliver notes": []}
    # The director picks take 3 by name: it holds the picked image too, so the pick stands there, as picked.
    assert cli("select", out, "a010=3").exit_code == 0
    assert _what_each_command_takes(out, tmp_path, "by-name")["list"] == ["a010=t3: as rendered when picked"]


def test_a_picks_file_pick_whose_image_two_takes_hold_is_recorded_at_the_first(out: Path, tmp_path: Path) -> None:
    """Exported from the page before the seed was inserted (take 2, seed 2's key), recorded when takes 1 and 3 hold
    that render: at take 1, as every command shows it, not refused (nor, with --force, seed 5's take 2)."""
    _give_picked_key(out, "a010_t1")
    (out / "selects.json").unlink()
    exported = tmp_path / "picks.json"
    exported.write_text(json.dumps({"schema": 1, "kind": "idcli-picks", "project": "follow", "run": "0" * 20,
                                    "exported": "2026-12-01T10:00:00.000Z",
                                    "picks": {"a010": {"take": 2, "key": seen_key(_key(out, "a010_t3"))}}}), "utf-8")
    for force in ((), ("--force",)):
        result = cli("select", out, "--from", exported, *force)
        assert result.exit_code == 0, result.output
        assert (_selects(out)["a010"]["take"], _selects(out)["a010"]["job_key"]) == (1, _key(out, "a010_t3"))
        assert ("idcli: note: picks.json: a010=2 recorded as a010=1: the image picked as take 2 is each of takes 1, 3 "
                "now (the same job: the shot's takes shifted; the first, take 1, stands for it)"
                ) in result.stderr.splitlines(), result.stderr


def test_a_pick_of_a_take_re_rendered_with_no_take_holding_its_image_is_not_moved(out: Path) -> None:
    """The take that holds the picked image rendered again (another key): nothing holds what was picked, and the
    pick stays on its take, said re-rendered as before."""
    sidecar = out / "a010" / "a010_t3.json"
    record = json.loads(sidecar.read_text("utf-8"))
    record["job_key"] = "idcli-job-v2:" + "cd" * 32
    sidecar.write_text(json.dumps(record), "utf-8")
    result = cli("select", out, "a020=1")
    assert _selects(out)["a010"]["take"] == 2
    assert "a010=t2 was re-rendered since it was picked (its prompt" in " ".join(result.stderr.split())


@pytest.mark.parametrize(("take", "keys", "live", "holding"), [
    (2, {1: "k1", 2: "k5", 3: "k2"}, None, [3]),
    (2, {1: "k2", 2: "k5", 3: "k2"}, None, [1, 3]),
    (2, {1: "k1", 2: "k5", 3: "k2"}, {("a010", 1), ("a010", 2)}, []),  # take 3 beyond the shot's takes
    (2, {1: "k1", 2: "k5"}, None, []),
    (2, {1: "k1", 3: "k2"}, None, [3]),  # take 2 not rendered
])
def test_takes_holding_the_picked_image(take: int, keys: dict[int, str], live: Any, holding: list[int]) -> None:
    assert takes_holding("a010", take, "k2", keys, live) == holding


def test_a_pick_recorded_without_a_key_or_with_a_damaged_one_is_held_by_no_take() -> None:
    assert takes_holding("a010", 2, None, {1: "k2"}) == []
    assert takes_holding("a010", 2, 7, {1: "k2"}) == []


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_a_pick_made_on_the_page_names_the_take_holding_its_image_after_a_seed_is_inserted(
        tmp_path: Path, tiny_engines: Any) -> None:
    """The director picks take 2 on the page; the artist inserts a seed before it and renders, and reviews again.
    The page says where the picked image is now; its pick exported as it was is recorded there, and so is a pick of
    that take made after reading it."""
    shots, out = tmp_path / "shots.yaml", tmp_path / "out"
    shots.write_text(textwrap.dedent(SHOTS), "utf-8")
    _render(shots, out, tiny_engines)
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        browser.open((out / "review" / "index.html").as_uri())
        browser.click("#take-a010_t2 button.pick")
        shots.write_text(shots.read_text("utf-8").replace("seeds: [1, 2]", "seeds: [1, 5, 2]"), "utf-8")
        _render(shots, out, tiny_engines)
        assert cli("review", out).exit_code == 0
        picked = seen_key(_key(out, "a010_t3"))
        browser.open("about:blank")  # the director comes back: the same browser opens the page anew (browser_pipe.py)
        browser.open((out / "review" / "index.html").as_uri())
        notes = browser.js("Array.from(document.querySelectorAll('.pick-note')).map(function(n){"
                           "return n.textContent;})")
        assert notes == [" picked take 2: the image you picked is take 3 now (the shot's takes shifted); pick take "
                         "3 to keep it"]
        # the index marks the take the pick stands on, as the heading's note and `select` have it (it said t2)
        assert browser.js("document.querySelector('nav .navpick').textContent") == " \u2713t3*"
        as_it_was = browser.download("button.export-picks")
        assert json.loads(as_it_was.read_text("utf-8"))["picks"] == {"a010": {"take": 2, "key": picked}}
        as_it_was = as_it_was.rename(tmp_path / "as-it-was.json")
        browser.click("#take-a010_t3 button.pick")
        assert browser.js("document.querySelector('#h-a010 .pick-note').textContent") == \
            " picked take 3 (not recorded yet)"
        looked_again = browser.download("button.export-picks")
    assert json.loads(looked_again.read_text("utf-8"))["picks"] == {"a010": {"take": 3, "key": picked}}
    for exported in (as_it_was, looked_again):
        (out / "selects.json").unlink(missing_ok=True)
        result = cli("select", out, "--from", exported)
        assert result.exit_code == 0, result.output
        assert (_selects(out)["a010"]["take"], _selects(out)["a010"]["job_key"]) == (3, _key(out, "a010_t3"))


def test_deliver_sends_the_picked_image_from_the_take_that_holds_it(out: Path, tmp_path: Path) -> None:
    """selects.json still says take 2 (no idcli select ran since the render): deliver sends take 3, which holds the
    picked pixels, marked as the select and said, never take 2's render of seed 5 that the director never saw."""
    report = idcli.deliver(out, tmp_path / "d", credentials=None)
    [delivered] = [i for i in report.images if i.shot_id == "a010"]
    assert (delivered.take, delivered.selected, delivered.selection_stale) == (3, True, False)
    record = json.loads((tmp_path / "d" / delivered.sidecar).read_text("utf-8"))
    assert record["job_key"] == _selects(out)["a010"]["job_key"], record
    assert ("a010: the director's select: the image picked as take 2 is take 3 now (the same job: the shot's takes "
            "shifted); delivered take 3 (idcli select records the pick there)") in report.notes, report.notes
    assert not any("re-rendered after it was picked" in note for note in report.notes), report.notes
    listing = json.loads((tmp_path / "d" / "delivery.json").read_text("utf-8"))
    assert [(e["take"], e["selected"]) for e in listing["images"] if e["shot_id"] == "a010"] == [(3, True)], listing


def test_deliver_follows_a_moved_pick_back_when_the_seed_is_taken_out_again(out: Path, tmp_path: Path,
                                                                           tiny_engines: Any) -> None:
    """The pick moved to take 3 with the seed inserted (``select``), then the seed taken out again: seed 2's pixels
    are take 2 again (restored), and take 3, still holding them, is beyond the shot's takes. Deliver refused the whole
    delivery ("the director's select, take 3, is no longer in the shot list"), where ``review`` and ``select`` name
    take 2 as holding the picked image; it sends take 2, marked as the select and said, as for a re-rendered one."""
    assert cli("select", out, "a020=1").exit_code == 0  # a010's pick moves to take 3
    assert _selects(out)["a010"]["take"] == 3
    shots = tmp_path / "shots.yaml"
    shots.write_text(textwrap.dedent(SHOTS), "utf-8")  # seeds [1, 2] again
    report = _render(shots, out, tiny_engines)
    # seed 2's picked pixels, put back from .idcli/superseded where the seed's insertion moved them: not rendered
    assert {f"{j.shot_id}_t{j.take}": j.status for j in report.jobs}["a010_t2"] == "restored"
    picked = _selects(out)["a010"]["job_key"]
    assert _key(out, "a010_t2") == _key(out, "a010_t3") == picked
    delivered = idcli.deliver(out, tmp_path / "d", credentials=None)
    [image] = [i for i in delivered.images if i.shot_id == "a010"]
    assert (image.take, image.selected, image.selection_stale) == (2, True, False)
    assert ("a010: the director's select: the image picked as take 3 is take 2 now (the same job: the shot's takes "
            "shifted); delivered take 2 (idcli select records the pick there)") in delivered.notes, delivered.notes
    every = idcli.deliver(out, tmp_path / "all", credentials=None, all_takes=True)
    assert [(i.take, i.selected) for i in every.images if i.shot_id == "a010"] == [(1, False), (2, True)]


@pytest.mark.parametrize("deleted", ["image", "take"])
def test_a_pick_whose_take_lost_its_image_file_follows_the_take_holding_the_picked_image(out: Path, tmp_path: Path,
                                                                                        deleted: str) -> None:
    """The picked take's image file deleted (take 2's PNG; or its sidecar too, the take removed by hand), while take 3
    holds the image picked (the same job key). ``select`` moved the pick to take 3, but until it ran review, export
    and deliver showed no select (load_run ignored the pick of a take not rendered: review said "selection ignored",
    the animatic and deliver took take 1, unpicked). They now follow the pick to take 3, as for a re-rendered picked
    take, in the same words; after ``select`` every command takes take 3 with nothing to say. With the sidecar left,
    review and export skip it (exit 2, as before) and deliver refuses the folder, as before."""
    (out / "a010" / "a010_t2.png").unlink()
    if deleted == "take":
        (out / "a010" / "a010_t2.json").unlink()
    skipped = 1 if deleted == "image" else 0
    folder = str(out)
    held = "the image picked as take 2 is take 3 now (the same job: the shot's takes shifted)"
    before = _what_each_command_takes(out, tmp_path, "before", skipped)
    assert before == {
        "list": [f"a010=t2: no take of that number is rendered now; {held}; idcli select {folder} a010=3 picks it "
                 "there"],
        "review notes": [f"a010: the director's select, take 2, is not rendered now; {held}: shown as the select "
                         f"(idcli select {folder} a010=3 records it there)"],
        "selected shots": 1, "page": [3], "timeline": (3, True), "deliver": None if skipped else (3, True),
        "deliver notes": [] if skipped else [f"a010: the director's select: {held}; delivered take 3 (idcli select "
                                             "records the pick there)"]}
    assert _selects(out)["a010"]["take"] == 2  # reading commands write no pick
    result = cli("select", out, "a020=1")
    assert result.exit_code == 0, result.output
    assert _selects(out)["a010"]["take"] == 3
    after = _what_each_command_takes(out, tmp_path, "after", skipped)
    assert after == {"list": ["a010=t3: as rendered when picked"], "review notes": [], "selected shots": 2,
                     "page": [3], "timeline": (3, True), "deliver": None if skipped else (3, True),
                     "deliver notes": []}


def test_the_page_marks_a_pick_whose_take_lost_its_image_file_on_the_take_holding_it(out: Path, tmp_path: Path) -> None:
    """Take 2 (picked) removed by hand while take 3 holds the image picked: ``review --json`` counts the shot as
    selected and the page's index was written marking ✓t3, but the page carried no recorded select for the shot
    (``data-selected``), so its script took the shot for unpicked: it wiped the index's ✓t3 and counted 0 of 2 shots
    picked. The page now says what the review notes say, as for a re-rendered picked take."""
    for ext in ("png", "json"):
        (out / "a010" / f"a010_t2.{ext}").unlink()
    reviewed = cli("review", out, "--json")
    assert reviewed.exit_code == 0, reviewed.output
    assert json.loads(reviewed.stdout)["counts"]["selected"] == 1
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        browser.open((out / "review" / "index.html").as_uri())
        assert browser.js("document.querySelector('nav .navpick').textContent") == " \u2713t3"
        assert browser.js("document.querySelector('.pick-count').textContent") == "1 of 2 shots picked"
        assert browser.js("document.querySelector('#h-a010 .pick-note').textContent") == (
            " picked take 2: the image you picked is take 3 now (the shot's takes shifted); pick take 3 to keep it")


def test_deliver_names_the_pick_of_a_renamed_shot_whose_take_lost_its_image_file(out: Path, tmp_path: Path,
                                                                                 tiny_engines: Any) -> None:
    """a010 renamed a011 and rendered (its images reused), then a010's picked take 2 removed by hand while its take 3
    holds the image picked: review and export name the pick left behind (``a010=t2``), deliver said nothing of it
    (its list of picks left behind read only rendered picks), so the delivery went out without the word."""
    shots = tmp_path / "shots.yaml"
    shots.write_text(textwrap.dedent(SHOTS).replace("id: a010", "id: a011").replace("[1, 2]", "[1, 5, 2]"), "utf-8")
    _render(shots, out, tiny_engines)
    for ext in ("png", "json"):
        (out / "a010" / f"a010_t2.{ext}").unlink()
    reviewed = cli("review", out, "--json")
    assert reviewed.exit_code == 0, reviewed.output
    [said] = [n for n in json.loads(reviewed.stdout)["notes"] if "no longer in the shot list" in n]
    assert "a010=t2" in said, said
    delivered = idcli.deliver(out, tmp_path / "delivery", credentials=None)
    [gone] = [n for n in delivered.notes if "no longer in the shot list" in n]
    assert "a010=t2" in gone, delivered.notes
    asked = idcli.deliver(out, tmp_path / "asked", credentials=None, shots=["a011"])
    assert ("a011: no select under its new id; the director picked a010 take 2 before the shot was renamed, whose "
            "image is a011 take 3 now") in " ".join(asked.notes), asked.notes
