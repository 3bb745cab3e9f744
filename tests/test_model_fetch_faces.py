"""`idcli models fetch --accept-insightface-license`: the face-model pack, from a loopback server (issue 17).

The pack is a zip of the session's synthetic insightface models under buffalo_l's file names, served
by the hub emulator as a plain file (``{endpoint}/{repo}/resolve/main/buffalo_l.zip``), so the real
download, checks, extraction and insightface's own loading run offline.
"""

from __future__ import annotations

import functools
import io
import json
import socket
import zipfile
from pathlib import Path

import pytest
from hub_emulator import HubEmulator

from idcli.errors import InputError, ModelUnavailableError

RELEASES = "deepinsight/releases"
ZIP = "buffalo_l.zip"


def _pack_zip(models: Path, extra: dict[str, bytes] | None = None, prefix: str = "") -> bytes:
    """buffalo_l's layout: det_10g.onnx and w600k_r50.onnx (here the synthetic detector and recogniser)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(models / "det_synthetic.onnx", prefix + "det_10g.onnx")
        zipped.write(models / "w600k_synthetic.onnx", prefix + "w600k_r50.onnx")
        for name, data in (extra or {}).items():
            zipped.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home folder and no $IDCLI_FACE_MODELS: real presets read ~/.insightface/models/buffalo_l."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IDCLI_FACE_MODELS", raising=False)
    return tmp_path / "home"


def _serve(data: bytes, fault: str | None = None) -> HubEmulator:
    return HubEmulator({RELEASES: {ZIP: data}}, faults={ZIP: fault} if fault else None, lifetime=60)


def _base(hub: HubEmulator) -> str:
    return f"{hub.endpoint}/{RELEASES}/resolve/main"


def test_refused_without_the_licence_flag(home: Path, synthetic_face_models: Path) -> None:
    from idcli.face_pack import fetch_face_pack

    with _serve(_pack_zip(synthetic_face_models)) as hub:
        result = fetch_face_pack(accept_insightface_licence=False, base_url=_base(hub), progress=False)
        assert hub.requests == [], "nothing is downloaded without the flag"
    assert result["state"] == "licence not accepted" and not result["present"]
    assert "non-commercial research" in result["message"]
    # as Python names the arguments (the command's flags: test_models_fetch_cli_face_pack)
    assert "add accept_insightface_licence=True (model_setup.fetch, face_pack.fetch_face_pack) to fetch it" in \
        result["message"] and "(or pass face_models='DIR')" in result["message"]
    assert not (home / ".insightface").exists()


def test_the_old_spelling_accept_licence_still_works_and_warns(home: Path, synthetic_face_models: Path) -> None:
    """fetch_face_pack took accept_licence= where model_setup.fetch takes accept_insightface_licence=: one name now,
    the old one kept (same behaviour) with a DeprecationWarning naming the new, raised at the caller's line."""
    import warnings

    from idcli.face_pack import fetch_face_pack

    with _serve(_pack_zip(synthetic_face_models)) as hub:
        with pytest.warns(DeprecationWarning, match=r"accept_licence= is deprecated: use accept_insightface_licence=") \
                as said:
            refused = fetch_face_pack(accept_licence=False, base_url=_base(hub), progress=False)
        assert refused["state"] == "licence not accepted" and hub.requests == []
        assert [w.filename for w in said if w.category is DeprecationWarning] == [__file__]
        with pytest.raises(InputError, match="accept_insightface_licence= and accept_licence="):
            fetch_face_pack(accept_insightface_licence=True, accept_licence=True, base_url=_base(hub), progress=False)
        assert hub.requests == []
        with pytest.warns(DeprecationWarning, match="accept_insightface_licence"):
            fetched = fetch_face_pack(accept_licence=True, base_url=_base(hub), progress=False)
    assert fetched["state"] == "fetched"
    with warnings.catch_warnings(record=True) as caught:  # the new spelling warns of nothing
        warnings.simplefilter("always")
        assert fetch_face_pack(accept_insightface_licence=True, progress=False)["state"] == "present"
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning) and "accept" in str(w.message)]


def test_fetched_with_the_flag_where_real_presets_read_it(home: Path, synthetic_face_models: Path) -> None:
    from idcli.face_pack import RECORD, fetch_face_pack
    from idcli.hashing import sha256_bytes
    from idcli.identity.faces import FaceAnalyzer
    from idcli.identity.images import load_rgb
    from idcli.identity.resolve import face_models_for

    data = _pack_zip(synthetic_face_models, extra={"README.txt": b"licence text", "buffalo_l/notes.md": b"x"})
    with _serve(data) as hub:
        result = fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
    folder = home / ".insightface" / "models" / "buffalo_l"
    assert result["state"] == "fetched" and Path(result["folder"]) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["det_10g.onnx", RECORD, "w600k_r50.onnx"]
    assert sorted(result["skipped"]) == ["README.txt", "buffalo_l/notes.md"]
    record = json.loads((folder / RECORD).read_text())
    assert record["zip_sha256"] == sha256_bytes(data) == result["zip_sha256"]
    assert record["files"]["det_10g.onnx"] == sha256_bytes((synthetic_face_models / "det_synthetic.onnx").read_bytes())
    assert "non-commercial" in record["licence"]
    assert not list((home / ".insightface" / "models").glob(".buffalo_l*")), "no staging folder left"

    # The folder real presets read by default, loaded by insightface's own code: it finds the drawn face.
    models = face_models_for("sd15", None)
    assert models.folder == folder.resolve() and models.chosen_by == "default"
    assert set(models.files) == {"det_10g.onnx", "w600k_r50.onnx"}
    selfie = Path(__file__).resolve().parents[1] / "recipes" / "selfies" / "mara_1.jpg"
    faces = FaceAnalyzer(models).detect(load_rgb(selfie))
    assert len(faces) == 1 and faces[0].embedding.shape == (512,)

    # Present now: a second fetch downloads nothing and leaves the files alone.
    before = (folder / "det_10g.onnx").stat().st_mtime_ns
    with _serve(data) as hub:
        again = fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
        assert hub.requests == []
    assert again["state"] == "present" and again["fetched_by_idcli"]
    assert (folder / "det_10g.onnx").stat().st_mtime_ns == before


def test_a_nested_pack_and_an_explicit_folder(tmp_path: Path, synthetic_face_models: Path) -> None:
    """antelopev2-style zips put the files under '<pack>/'; --face-models DIR chooses the target."""
    from idcli.face_pack import fetch_face_pack
    from idcli.identity.faces import resolve_face_models

    target = tmp_path / "faces"
    with _serve(_pack_zip(synthetic_face_models, prefix="buffalo_l/")) as hub:
        fetch_face_pack(accept_insightface_licence=True, option=target, base_url=_base(hub), progress=False)
    assert set(resolve_face_models(target).files) == {"det_10g.onnx", "w600k_r50.onnx"}


@pytest.mark.parametrize("name", ["../evil.onnx", "/abs/evil.onnx", "buffalo_l/../../evil.onnx", "a\\..\\evil.onnx"])
def test_zip_slip_is_refused_and_nothing_is_installed(home: Path, synthetic_face_models: Path, name: str) -> None:
    from idcli.face_pack import fetch_face_pack

    data = _pack_zip(synthetic_face_models, extra={name: b"not a model"})
    with _serve(data) as hub, pytest.raises(ModelUnavailableError, match="outside the pack folder") as info:
        fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
    assert info.value.exit_code == 4
    assert not (home / ".insightface" / "models" / "buffalo_l").exists()
    assert not list(home.rglob("evil.onnx")) and not list(home.parent.rglob("evil.onnx"))
    assert not list((home / ".insightface" / "models").iterdir()), "no staging folder left"


def test_a_link_member_is_refused(home: Path, synthetic_face_models: Path) -> None:
    from idcli.face_pack import fetch_face_pack

    buffer = io.BytesIO(_pack_zip(synthetic_face_models))
    with zipfile.ZipFile(buffer, "a") as zipped:
        link = zipfile.ZipInfo("link.onnx")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as zip tools store one
        zipped.writestr(link, "/etc/passwd")
    with _serve(buffer.getvalue()) as hub, pytest.raises(ModelUnavailableError, match="link"):
        fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
    assert not (home / ".insightface" / "models" / "buffalo_l").exists()


def test_a_killed_installs_staging_folder_is_removed_by_the_next_fetch(home: Path, synthetic_face_models: Path) -> None:
    """The staging folder is named as atomic_write names its temporaries: one whose writer was killed is
    removed when the next fetch installs; one of a fetch still running is left to it."""
    import subprocess
    import sys

    from idcli import safeio
    from idcli.face_pack import fetch_face_pack

    models = home / ".insightface" / "models"
    models.mkdir(parents=True)
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True, check=True).stdout)
    killed = models / f".buffalo_l.{ended}-12345.0123abcd{safeio.TMP_SUFFIX}"
    killed.mkdir()
    (killed / "det_10g.onnx").write_bytes(b"half extracted")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = safeio.process_start(live.pid)
        tag = str(live.pid) if start is None else f"{live.pid}-{start}"
        running = models / f".buffalo_l.{tag}.89abcdef{safeio.TMP_SUFFIX}"
        running.mkdir()
        with _serve(_pack_zip(synthetic_face_models)) as hub:
            result = fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
            assert result["state"] == "fetched"
        assert sorted(p.name for p in models.iterdir()) == [running.name, "buffalo_l"]
    finally:
        live.kill()
        live.wait()


def test_interrupted_download_resumes_within_the_run(home: Path, synthetic_face_models: Path) -> None:
    from idcli.face_pack import fetch_face_pack

    data = _pack_zip(synthetic_face_models)
    with _serve(data, fault="drop-once") as hub:
        result = fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
        ranges = [r[2] for r in hub.requests if r[0] == "GET"]
    assert result["state"] == "fetched"
    assert ranges[0] is None and ranges[1] == f"bytes={len(data) // 2}-", ranges


def test_truncated_download_is_reported_then_resumed_by_the_next_run(home: Path, synthetic_face_models: Path) -> None:
    from idcli.face_pack import RETRIES, fetch_face_pack

    data = _pack_zip(synthetic_face_models)
    with _serve(data, fault="drop") as hub:
        with pytest.raises(ModelUnavailableError, match=r"ended early \(truncated.*run the same command again to "
                                                         "resume") as info:
            fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
        assert info.value.exit_code == 4
        assert len([r for r in hub.requests if r[0] == "GET"]) == RETRIES + 1
        assert not (home / ".insightface" / "models" / "buffalo_l").exists(), "nothing partial at the final path"
        kept = [r[2] for r in hub.requests if r[0] == "GET"][-1]
        hub.faults.clear()  # the network is back
        hub.requests.clear()
        result = fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
        resumed = [r[2] for r in hub.requests if r[0] == "GET"]
    assert result["state"] == "fetched" and len(resumed) == 1
    assert resumed[0] and kept, (resumed, kept)  # both asked for a range
    assert int(resumed[0].split("=")[1].rstrip("-")) > int(kept.split("=")[1].rstrip("-"))


def test_a_damaged_zip_or_a_wrong_hash_exits_4_and_is_not_kept(home: Path, synthetic_face_models: Path) -> None:
    from idcli.face_pack import fetch_face_pack
    from idcli.paths import state_dir

    data = _pack_zip(synthetic_face_models)
    # "short": a whole response of half the bytes (the server itself has a cut file): not a zip.
    with _serve(data, fault="short") as hub, pytest.raises(ModelUnavailableError, match="not a whole zip") as info:
        fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
    assert info.value.exit_code == 4 and "run the same command again" in str(info.value)
    assert not list((state_dir() / "models" / "downloads").iterdir()), "a damaged download is not resumed"

    # One byte changed inside a stored (uncompressed) member: its CRC-32 no longer holds.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zipped:
        zipped.write(synthetic_face_models / "det_synthetic.onnx", "det_10g.onnx")
        zipped.write(synthetic_face_models / "w600k_synthetic.onnx", "w600k_r50.onnx")
    flipped = bytearray(buffer.getvalue())
    flipped[200] ^= 0xFF
    with _serve(bytes(flipped)) as hub, pytest.raises(ModelUnavailableError, match=r"not a whole zip.*CRC-32"):
        fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
    assert not list(home.rglob("*.onnx")), "no file of a damaged pack is installed"

    with _serve(data) as hub, pytest.raises(ModelUnavailableError, match="not the expected"):
        fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), expected_sha256="0" * 64, progress=False)
    with pytest.raises(InputError, match="64 lower-case hex"):
        fetch_face_pack(accept_insightface_licence=True, expected_sha256="abc", progress=False)
    assert not (home / ".insightface" / "models" / "buffalo_l").exists()

    no_models = _pack_zip(synthetic_face_models)
    with zipfile.ZipFile(io.BytesIO(no_models)) as source:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as target:
            target.writestr("det_10g.onnx", source.read("det_10g.onnx"))
    with _serve(buffer.getvalue()) as hub, pytest.raises(ModelUnavailableError, match=r"has no w600k_r50\.onnx"):
        fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)


def test_no_network_is_said_plainly(home: Path) -> None:
    from idcli.face_pack import fetch_face_pack

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ModelUnavailableError, match=r"cannot reach .*no network\?.*IDCLI_INSIGHTFACE_URL") as info:
        fetch_face_pack(accept_insightface_licence=True, base_url=f"http://127.0.0.1:{port}/x", progress=False)
    assert info.value.exit_code == 4


def test_models_fetch_cli_face_pack(home: Path, synthetic_face_models: Path, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    from test_model_setup import FACEID, hub_repos, offline_hub, plusv2_bin
    from typer.testing import CliRunner

    from idcli import model_setup
    from idcli.cli import app

    offline_hub(monkeypatch, tmp_path / "hf")
    repos = hub_repos(plusv2_bin()[0])  # any IP-Adapter pickle converts; this one needs no UNet built
    repos[RELEASES] = {ZIP: _pack_zip(synthetic_face_models)}
    with HubEmulator(repos, lifetime=60) as hub:
        # The command's hub downloads go to the emulator (HF_ENDPOINT is read once, at import).
        monkeypatch.setattr("idcli.model_setup.fetch", functools.partial(model_setup.fetch, endpoint=hub.endpoint))
        monkeypatch.setenv("IDCLI_INSIGHTFACE_URL", _base(hub))
        refused = CliRunner().invoke(app, ["models", "fetch", "sd15", "--variant", "faceid"])
        assert refused.exit_code == 0, refused.output
        assert "non-commercial research" in refused.stderr and "--accept-insightface-license" in refused.stderr
        assert "(or pass --face-models DIR)" in " ".join(refused.stderr.split())
        assert not (home / ".insightface").exists()
        listed = json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).stdout)
        row = next(r for r in listed["presets"] if (r["preset"], r["variant"]) == ("sd15", "faceid"))
        assert not row["ready"] and all(n["present"] for n in row["needs"]), "ready needs the face models too"
        assert listed["face_models"]["present"] is False and "non-commercial" in listed["face_models"]["licence"]
        # The text said "missing files" of a preset whose hub files were all present: it names the face models
        # and the command that fetches them (the --json row says the same: not ready, every need present,
        # face_models.present false).
        text = " ".join(CliRunner().invoke(app, ["models", "list"]).output.split())
        assert ("sd15 (faceid): not ready: the face models are missing (below); `idcli models fetch sd15 --variant "
                "faceid --accept-insightface-license` fetches them") in text, text
        assert "sd15 (faceid): missing files" not in text, text

        fetched = CliRunner().invoke(app, ["models", "fetch", "sd15", "--variant", "faceid",
                                           "--accept-insightface-license", "--json"])
    assert fetched.exit_code == 0, fetched.output
    doc = json.loads(fetched.stdout)
    assert doc["face_models"]["state"] == "fetched" and doc["fetched"][1]["repo_id"] == FACEID
    listed = json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).stdout)
    row = next(r for r in listed["presets"] if (r["preset"], r["variant"]) == ("sd15", "faceid"))
    assert row["ready"] is True and listed["face_models"]["fetched_by_idcli"] is True
    assert listed["face_models"]["size_bytes"] == sum(
        p.stat().st_size for p in (home / ".insightface" / "models" / "buffalo_l").glob("*.onnx"))


def test_models_list_and_fetch_name_the_face_model_folder_used_not_buffalo_l(
        home: Path, synthetic_face_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`models list --face-models /models/antelopev2` printed "face models (buffalo_l, --face-models)" and its JSON
    `face_models.pack` said "buffalo_l", as did `models fetch`'s "face models (buffalo_l): present in …": the pack
    idcli would fetch, not the one the folder holds. A folder of the user's own is now named by its folder; one idcli
    fetched, by the pack its fetch record names; an empty one, by the pack a fetch would put there."""
    import shutil

    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.face_pack import fetch_face_pack, pack_status

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    antelope = tmp_path / "models" / "antelopev2"
    shutil.copytree(synthetic_face_models, antelope)
    result = CliRunner().invoke(app, ["models", "list", "--face-models", str(antelope)])
    assert result.exit_code == 0, result.output
    assert f"face models (antelopev2, --face-models): {antelope}: present" in result.output, result.output
    assert pack_status(antelope)["pack"] == "antelopev2"
    # `models fetch` prints "face models ({pack}): {state} in {folder}" from this
    assert fetch_face_pack(accept_insightface_licence=True, option=antelope)["pack"] == "antelopev2"
    assert pack_status(tmp_path / "empty")["pack"] == "buffalo_l"  # what a fetch would put there
    with _serve(_pack_zip(synthetic_face_models)) as hub:
        fetch_face_pack(accept_insightface_licence=True, option=tmp_path / "faces", base_url=_base(hub), progress=False)
    assert pack_status(tmp_path / "faces")["pack"] == "buffalo_l"  # as its fetch record says


def test_a_broken_face_model_folder_is_not_present_to_models_list_or_fetch(
        home: Path, synthetic_face_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`models list` called the face models present, and every preset with its hub files `ready`, whenever the folder
    held any `.onnx` file: a detector alone or a cut recogniser read as a pack the render then refused; `models
    fetch --accept-insightface-license` called such a folder present and fetched nothing. The line now says what
    the render would refuse (face_pack_check, the graphs parsed, not run), `ready` is false, and fetch installs the
    pack over it (without the licence flag it names the problem and fetches nothing)."""
    import shutil

    from typer.testing import CliRunner

    from idcli.cli import app
    from idcli.face_pack import fetch_face_pack, pack_status
    from idcli.model_setup import list_models

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = home / ".insightface" / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    shutil.copy(synthetic_face_models / "det_synthetic.onnx", folder / "det_10g.onnx")  # the recogniser left behind
    status = pack_status()
    assert status["present"] and status["problem"].startswith("no ArcFace recognition model"), status
    assert not any(row["ready"] for row in list_models())
    text = " ".join(CliRunner().invoke(app, ["models", "list"]).output.split())
    assert f"{folder}: not usable: no ArcFace recognition model" in text and f"{folder}: present" not in text, text
    assert "to fetch: idcli models fetch sd15|sdxl --accept-insightface-license" in text, text
    listed = json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).stdout)
    assert listed["face_models"]["problem"].startswith("no ArcFace recognition model"), listed["face_models"]

    with _serve(_pack_zip(synthetic_face_models)) as hub:
        refused = fetch_face_pack(accept_insightface_licence=False, base_url=_base(hub), progress=False)
        assert hub.requests == []
        assert refused["state"] == "licence not accepted", refused
        assert refused["message"].startswith(f"the face models in {folder} are not usable: no ArcFace"), refused
        fetched = fetch_face_pack(accept_insightface_licence=True, base_url=_base(hub), progress=False)
    assert fetched["state"] == "fetched" and fetched["problem"] is None, fetched
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["det_10g.onnx", "w600k_r50.onnx"]

    cut = tmp_path / "cut"  # a recogniser whose copy was cut: the render would refuse it too
    shutil.copytree(synthetic_face_models, cut)
    data = (cut / "w600k_synthetic.onnx").read_bytes()
    (cut / "w600k_synthetic.onnx").write_bytes(data[:len(data) // 2])
    assert "w600k_synthetic.onnx is damaged or truncated" in pack_status(cut)["problem"]
    assert not any(row["ready"] for row in list_models(face_models=str(cut)))
    assert pack_status(synthetic_face_models)["problem"] is None  # a whole pack reads as before


def test_the_fetch_command_said_for_a_given_face_model_folder_fetches_into_it(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `--face-models DIR` naming a folder without a pack, `models list` said "to fetch: idcli models fetch
    sd15|sdxl --accept-insightface-license" and a render said the same command: run as given, it fetched into
    ~/.insightface, not DIR, and the next render failed the same way. The command named now carries
    `--face-models DIR` (quoted for the shell); with $IDCLI_FACE_MODELS or the default, fetch finds the folder
    itself and the command stays as it was."""
    import shlex

    from typer.testing import CliRunner

    from idcli.cli import app

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("IDCLI_FACE_MODELS", raising=False)
    given = tmp_path / "studio faces" / "buffalo_l"
    fetch = f"idcli models fetch sd15|sdxl --accept-insightface-license --face-models {shlex.quote(str(given))}"
    text = " ".join(CliRunner().invoke(app, ["models", "list", "--face-models", str(given)]).output.split())
    assert f"to fetch: {fetch}" in text, text
    listed = json.loads(CliRunner().invoke(app, ["models", "list", "--face-models", str(given), "--json"]).stdout)
    assert listed["face_models"]["fetch"] == fetch, listed["face_models"]
    assert json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).stdout)["face_models"]["fetch"] == \
        "idcli models fetch sd15|sdxl --accept-insightface-license"

    from idcli.errors import ModelUnavailableError
    from idcli.identity.faces import resolve_face_models

    with pytest.raises(ModelUnavailableError) as raised:
        resolve_face_models(str(given))
    said = " ".join(str(raised.value).split())
    assert ("'idcli models fetch PRESET --accept-insightface-license --face-models "
            f"{shlex.quote(str(given))}' fetches buffalo_l once") in said, said
    monkeypatch.setenv("IDCLI_FACE_MODELS", str(given))
    with pytest.raises(ModelUnavailableError) as raised:
        resolve_face_models(None)
    assert "'idcli models fetch PRESET --accept-insightface-license' fetches" in " ".join(str(raised.value).split())


def test_the_fetch_command_for_a_face_model_folder_named_not_in_utf8_pastes_into_bash(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `--face-models DIR` of the fetch command was quoted with shlex.quote: a folder named in Latin-1
    (``caf\\xe9``, an old share's) came out as Python's escape ``\\udce9``, a JSON ``\\udce9`` no UTF-8 reader
    decodes, and the command named another folder. It is quoted as every suggested path is (idcli/shell_words.py):
    bash given the printed word receives the folder's bytes."""
    import os
    import shutil
    import subprocess

    from typer.testing import CliRunner

    from idcli.cli import app

    if shutil.which("bash") is None:
        pytest.skip("the quoting is bash's")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("IDCLI_FACE_MODELS", raising=False)
    given = tmp_path / os.fsdecode(b"caf\xe9 faces") / "buffalo_l"
    listed = json.loads(CliRunner().invoke(app, ["models", "list", "--face-models", str(given), "--json"]).stdout)
    word = listed["face_models"]["fetch"].split(" --face-models ", 1)[1]
    received = subprocess.run([b"bash", b"-c", b"printf %s " + word.encode("utf-8")], capture_output=True,
                              check=True).stdout
    assert received == os.fsencode(given), word
