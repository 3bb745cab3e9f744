"""``idcli deliver`` as a producer re-delivers and an outsider checks it: problems found using it (docs/delivery.md).

Real renders (tiny preset, CPU) into a project folder built as tests/test_delivery.py builds it.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from cli_helpers import render_on_cpu

# The fixture: a shot list in a folder that must not leave the studio (the signing CA's are in conftest.py).
from test_delivery import project  # noqa: F401

from idcli import delivery
from idcli.delivery import DeliveryError, deliver
from idcli.errors import InputError
from idcli.provenance import read_png_record
from idcli.review.selects import select
from idcli.verify import verify_folder


def _listing(dest: Path) -> list[dict]:
    return json.loads((dest / "delivery.json").read_text("utf-8"))["images"]


def test_a_changed_pick_leaves_one_selected_take_per_shot_in_the_listing(project, engine_factory) -> None:  # noqa: F811
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    select(out, ["sc01_sh020=2"])
    deliver(out, dest)
    select(out, ["sc01_sh020=1"])  # the director changes their mind; the producer delivers again
    deliver(out, dest)
    assert [(e["take"], e["selected"]) for e in _listing(dest)] == [(1, True), (2, False)]
    select(out, ["sc01_sh020=none"])
    deliver(out, dest, shots="sc01_sh020")
    assert [(e["take"], e["selected"]) for e in _listing(dest)] == [(1, False), (2, False)]


def test_a_take_whose_sidecar_was_edited_is_not_delivered_with_it(project, engine_factory) -> None:  # noqa: F811
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010"])
    sidecar = out / "sc01_sh010" / "sc01_sh010_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    record["prompt"] = "a prompt this image was never rendered from"
    sidecar.write_text(json.dumps(record), "utf-8")  # the image itself, and its hash, unchanged
    with pytest.raises(DeliveryError, match=r"sidecar .* its own record"):
        deliver(out, dest)
    assert not dest.exists()
    record["note"] = "added by hand"  # a field the image never said
    in_png = read_png_record((out / "sc01_sh010" / "sc01_sh010_t1.png").read_bytes())
    assert in_png is not None
    record["prompt"] = in_png["prompt"]
    sidecar.write_text(json.dumps(record), "utf-8")
    with pytest.raises(DeliveryError, match=r"sidecar .* its own record"):
        deliver(out, dest)
    del record["note"], record["software"]  # an older idcli's sidecar held fewer fields than its image: delivered
    sidecar.write_text(json.dumps(record), "utf-8")
    assert [i.image for i in deliver(out, dest).images] == ["sc01_sh010_take1.png"]


def test_verify_fails_a_copy_the_listing_does_not_name_or_names_otherwise(project, engine_factory) -> None:  # noqa: F811
    out, dest, other = project / "renders", project.parent / "d", project.parent / "other"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    deliver(out, dest, shots="sc01_sh020", all_takes=True)
    deliver(out, other, shots="sc01_sh010")
    for name in ("sc01_sh010_take1.png", "sc01_sh010_take1.json"):  # someone adds another delivery's copy
        shutil.copy(other / name, dest / name)
    checks = {c.image["path"]: c for c in verify_folder(dest).images}
    assert not checks["sc01_sh010_take1.png"].ok
    assert any("not listed in delivery.json" in p for p in checks["sc01_sh010_take1.png"].problems)
    (dest / "sc01_sh010_take1.png").unlink()
    (dest / "sc01_sh010_take1.json").unlink()
    listing = json.loads((dest / "delivery.json").read_text("utf-8"))
    listing["images"][1]["take"] = 3  # the listing edited: take 2's entry now claims another take
    (dest / "delivery.json").write_text(json.dumps(listing), "utf-8")
    checks = {c.image["path"]: c for c in verify_folder(dest).images}
    assert checks["sc01_sh020_take1.png"].ok and not checks["sc01_sh020_take2.png"].ok
    assert any("delivery.json says take 3" in p for p in checks["sc01_sh020_take2.png"].problems)


def test_two_deliveries_at_once_into_one_folder_both_stay_listed(project, engine_factory,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010", "sc01_sh020"])
    dest.mkdir()
    # The first delivery to read DEST's listing waits (at most a few seconds) for the second to read it too: without
    # one delivery at a time both read the empty listing and the later one's delivery.json drops the other's copy.
    entered: list[int] = []
    second_in, real = threading.Event(), delivery.read_listing

    def read_listing(*args, **kwargs):
        entered.append(1)
        if len(entered) == 1:
            second_in.wait(3)
        else:
            second_in.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery, "read_listing", read_listing)
    errors: list[BaseException] = []

    def run(shot: str) -> None:
        try:
            deliver(out, dest, shots=shot)
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(shot,)) for shot in ("sc01_sh010", "sc01_sh020")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert [e["image"] for e in _listing(dest)] == ["sc01_sh010_take1.png", "sc01_sh020_take1.png"]
    assert verify_folder(dest).failed == 0


def test_a_retake_delivered_again_is_refused_saying_the_client_has_another_render(project,  # noqa: F811
                                                                                     engine_factory) -> None:
    out, dest = project / "renders", project.parent / "d"
    shots = project / "shots.yaml"
    render_on_cpu(shots, out, engine_factory, only=["sc01_sh010"])
    deliver(out, dest)
    shots.write_text(shots.read_text("utf-8").replace("at night, rain", "at dawn, rain"), "utf-8")
    render_on_cpu(shots, out, engine_factory, only=["sc01_sh010"])  # the retake: take 1 rendered anew
    with pytest.raises(DeliveryError, match=r"sc01_sh010_take1\.png \(another render of sc01_sh010 take 1: re-"):
        deliver(out, dest)
    assert [i.status for i in deliver(out, dest, force=True).images] == ["replaced"]
    (dest / "sc01_sh010_take1.json").write_text("{}", "utf-8")  # a file there that is no delivered copy's sidecar
    with pytest.raises(DeliveryError, match=r"sc01_sh010_take1\.png \(not a delivered copy of this take\)"):
        deliver(out, dest)


def test_half_the_signing_credentials_name_delivers_own_way_out(project, engine_factory, signing_env,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, sign=True, only=["sc01_sh010"])
    monkeypatch.delenv("IDCLI_C2PA_KEY")  # the certificate set, the key forgotten
    with pytest.raises(InputError, match="IDCLI_C2PA_KEY is not") as caught:
        deliver(out, dest)
    assert "unsigned=True" in str(caught.value) and "sign=False" not in str(caught.value)  # deliver has no sign=
    assert caught.value.exit_code == 2 and not dest.exists()


def test_a_hand_edited_entry_without_its_take_is_not_listed_as_the_pick(project, engine_factory) -> None:  # noqa: F811
    # An entry kept from an earlier delivery says whether its take is its shot's pick now. One whose take was
    # edited away (no take, or not a number) names no take: it is no shot's pick, not "None is no pick either".
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh020"])
    deliver(out, dest, all_takes=True)
    listing = json.loads((dest / "delivery.json").read_text("utf-8"))
    assert [e["selected"] for e in listing["images"]] == [False, False]  # nothing picked
    del listing["images"][1]["take"]  # take 2's entry, edited by hand
    (dest / "delivery.json").write_text(json.dumps(listing), "utf-8")
    deliver(out, dest)  # no pick: the shot's take 1 (QA flagged none), take 2's entry kept as it was found
    kept = [e for e in _listing(dest) if e["image"] == "sc01_sh020_take2.png"]
    assert len(kept) == 1 and "take" not in kept[0]
    assert kept[0]["selected"] is False


def test_a_sidecar_edited_into_another_shape_is_refused_not_an_internal_error(project, engine_factory) -> None:  # noqa: F811
    # The edited-sidecar check reads the sidecar's record as reproduce does: a field of another shape (faces
    # that are no list) is an edit like any other, not a TypeError.
    out, dest = project / "renders", project.parent / "d"
    render_on_cpu(project / "shots.yaml", out, engine_factory, only=["sc01_sh010"])
    sidecar = out / "sc01_sh010" / "sc01_sh010_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    sidecar.write_text(json.dumps({**record, "plate": {"faces": 5}}), "utf-8")  # the image untouched
    with pytest.raises(DeliveryError, match=r"sc01_sh010_t1.json: this sidecar no longer says"):
        deliver(out, dest)
    assert not dest.exists()
