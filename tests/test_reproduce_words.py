"""What `idcli reproduce` says of a take an outsider holds: signed with its sidecar lost, or its PNG's metadata edited
(the provenance trial of 2026-12-02; docs/provenance.md, `idcli reproduce`)."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import render_on_cpu
from typer.testing import CliRunner

from idcli.cli import app
from idcli.reproduce import reproduce

pytest.importorskip("c2pa")

SHOTS = """\
version: 1
project: reproduce-words
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.5, sampler: dpmpp-2m, takes: 1}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42]}
"""


def _with_text_chunk(png: bytes, key: str, value: str) -> bytes:
    """The PNG with one more tEXt chunk just before its IEND: other bytes, the same pixels (a metadata edit)."""
    body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


def test_a_signed_take_whose_sidecar_is_lost_is_not_said_to_carry_a_manifest_its_record_does_not_describe(
        write_shotlist: Any, tmp_path: Path, engine_factory: Any, signing_env: Any) -> None:
    """Failed before 2026-12-02: with the sidecar gone the record is the image's own `idcli` chunk, which never
    names a manifest, so every signed take alone got a note that reads as tampering."""
    [job] = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory, sign=True).jobs
    Path(job.sidecar).unlink()
    report = reproduce(job.image, engine_factory=engine_factory)
    assert report.identical, (report.status, report.notes)
    assert report.sidecar is None
    assert "signed: compared without its C2PA manifest (idcli verify checks the signature)" in report.notes
    assert not [n for n in report.notes if "does not describe" in n], report.notes


def test_an_image_edited_after_its_commit_shows_its_own_sha256_beside_the_recorded_one(
        write_shotlist: Any, tmp_path: Path, engine_factory: Any) -> None:
    """Failed before 2026-12-02: a take whose metadata was edited said `sha256 recorded X, re-rendered X` and then
    `pixels-identical`, which reads as a contradiction; the image's sha256 as it is now was nowhere."""
    [job] = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory).jobs
    image = Path(job.image)
    recorded = json.loads(Path(job.sidecar).read_text("utf-8"))["image"]["sha256"]
    edited = _with_text_chunk(image.read_bytes(), "Comment", "graded by hand")
    image.write_bytes(edited)
    now = hashlib.sha256(edited).hexdigest()

    report = reproduce(image, engine_factory=engine_factory)
    assert report.status == "pixels-identical" and report.sha256 == recorded
    assert report.image_sha256 == now != recorded
    assert report.as_dict()["image_sha256"] == now
    cli = CliRunner().invoke(app, ["reproduce", str(image)])
    assert cli.exit_code == 6, cli.output
    assert f"sha256 recorded {recorded}, re-rendered {recorded}, the image now {now}" in cli.output
    as_json = CliRunner().invoke(app, ["reproduce", str(image), "--json"])
    assert json.loads(as_json.output)["image_sha256"] == now, as_json.output
    assert json.loads(as_json.output)["recorded_sha256_from"] == "record", as_json.output


def test_a_signed_take_alone_edited_since_shows_its_sha256_as_the_images_not_as_recorded(
        write_shotlist: Any, tmp_path: Path, engine_factory: Any, signing_env: Any) -> None:
    """Failed before 2026-12-02: a signed take whose sidecar is lost has no recorded sha256 (its own chunk cannot
    hold it), so the one compared is the image's as it is now; its metadata edited, reproduce said `sha256 recorded
    Y, re-rendered X` of the edited image's Y, a record nobody made. It says what Y is (`recorded_sha256_from`)."""
    [job] = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory, sign=True).jobs
    recorded = json.loads(Path(job.sidecar).read_text("utf-8"))["c2pa"]["unsigned_sha256"]
    Path(job.sidecar).unlink()
    image = Path(job.image)
    image.write_bytes(_with_text_chunk(image.read_bytes(), "Comment", "graded by hand"))

    report = reproduce(image, engine_factory=engine_factory)
    assert report.status == "pixels-identical" and report.sha256 == recorded, (report.status, report.notes)
    now = report.image_sha256
    assert report.recorded_sha256 == now != recorded
    cli = CliRunner().invoke(app, ["reproduce", str(image)])
    assert cli.exit_code == 6, cli.output
    assert (f"  sha256 of the image as it is now {now} (no recorded one to compare with: its sidecar is gone), "
            f"re-rendered {recorded}\n") in cli.output, cli.output
    assert "sha256 recorded" not in cli.output, cli.output
    assert report.recorded_sha256_from == "image"
    as_json = json.loads(CliRunner().invoke(app, ["reproduce", str(image), "--json"]).output)
    assert as_json["recorded_sha256"] == now and as_json["recorded_sha256_from"] == "image", as_json
