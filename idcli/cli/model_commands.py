"""The ``models`` group (issue 17): what real presets need, and fetching it.

Owns ``models list`` (presets' files, face models, given folders, with sizes and licences) and ``models fetch``
(through huggingface_hub, and the insightface pack behind its licence flag): their options and printing; the work
is idcli/model_setup.py, idcli/face_pack.py and idcli/model_folders.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .help_text import PlainHelpTyper
from .options import FaceModelsOpt, JsonOpt, app, given_path, given_text_path
from .output import emit, emit_json, guarded, ok, print_note

models_app = PlainHelpTyper(help="List and fetch the weights real presets need (through huggingface_hub).",
                         no_args_is_help=True, add_completion=False, rich_markup_mode=None)
app.add_typer(models_app, name="models")


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"


ModelsDirOpt = Annotated[list[Path] | None, typer.Option(
    "--models-dir", parser=given_path,
    help="Also list what this folder (and two levels below it) holds: diffusers pipelines, "
    "IP-Adapter files, CLIP image encoders, insightface packs. Repeatable.", show_default=False, metavar="DIR")]
ModelsShotlistOpt = Annotated[Path | None, typer.Option(
    "--shotlist", parser=given_path,
    help="Also list the model and adapter this shot list renders with (local folders or hub ids).",
    show_default=False, metavar="FILE")]
AcceptFaceLicenceOpt = Annotated[bool, typer.Option(
    "--accept-insightface-license", help="Also fetch the insightface buffalo_l face-model pack into the folder "
    "idcli reads (--face-models, else $IDCLI_FACE_MODELS, else ~/.insightface/models/buffalo_l). Its "
    "pretrained models are licensed for non-commercial research only: this flag says your use is allowed.")]
FetchFaceModelsOpt = Annotated[str | None, typer.Option(
    "--face-models", parser=given_text_path,
    help="Where --accept-insightface-license puts the face-model pack [default: "
    "$IDCLI_FACE_MODELS, else ~/.insightface/models/buffalo_l, where real presets read it].", show_default=False,
    metavar="DIR")]
FacePackShaOpt = Annotated[str | None, typer.Option(
    "--face-pack-sha256", help="Refuse the downloaded face-model zip unless it has this sha256 (insightface "
    "publishes none; idcli records the one it got in the pack's idcli-fetch.json).", show_default=False,
    metavar="HEX")]


def _need_line(need: dict[str, Any]) -> str:
    what = need["repo_id"] + (f" / {need['filename']}" if need["filename"] else "") + (
        f" / {need['subfolder']}" if need.get("subfolder") else "")
    state = "present" if need["present"] else "missing"
    if need.get("not_converted"):
        state += " (a pickle, not converted yet)"
    return f"  {need['role']:<22} {what}: {state}, {_size(need['size_bytes'])}; licence: {need['licence']}"


def _row_state(row: dict[str, Any], faces: dict[str, Any]) -> str:
    if row["ready"]:
        return "ready"
    if not all(need["present"] for need in row["needs"]):
        return "missing files"
    # Every hub file is on disk, so what keeps the preset from rendering is the cached pickle a render refuses
    # (converting needs no network: the cache has it) or the face models (missing, or a pack the render would
    # refuse): "missing files" sent users looking for hub files they had.
    command = f"idcli models fetch {row['preset']} --variant {row['variant']}"
    if faces["present"] and faces["problem"] is None:
        return f"not ready: `{command}` converts the cached pickle to safetensors once (offline too)"
    from ..identity.faces import fetch_command

    unconverted = any(need.get("not_converted") for need in row["needs"])
    fetch = fetch_command(Path(faces["folder"]), faces["chosen_by"], f"{row['preset']} --variant {row['variant']}")
    what = "not usable" if faces["problem"] else "missing"
    return (f"not ready: the face models are {what} (below); `{fetch}` fetches them"
            + (" and converts the cached pickle to safetensors" if unconverted else ""))


@models_app.command("list")
def models_list(models_dir: ModelsDirOpt = None, shotlist: ModelsShotlistOpt = None,
                face_models: FaceModelsOpt = None, as_json: JsonOpt = False) -> None:
    """What each real preset and adapter variant needs, whether it is in the Hugging Face cache, sizes, licences;
    the face models; and what given folders hold (--models-dir, --shotlist)."""
    from ..face_pack import pack_status
    from ..model_folders import given_folders
    from ..model_setup import list_models

    def body() -> None:
        rows = list_models(face_models=face_models)
        faces = rows[0]["face_models"] if rows else pack_status(face_models)  # its graphs parsed once
        given = given_folders(models_dir, shotlist)
        if as_json:
            emit_json(ok(presets=[{k: v for k, v in r.items() if k != "face_models"} for r in rows],
                         face_models=faces, given=given))
            return
        for row in rows:
            emit(f"{row['preset']} ({row['variant']}): {_row_state(row, faces)}")
            for need in row["needs"]:
                emit(_need_line(need))
        usable = faces["present"] and faces["problem"] is None
        state = f"not usable: {faces['problem']}" if faces["problem"] else "present" if usable else "missing"
        emit(f"face models ({faces['pack']}, {faces['chosen_by']}): {faces['folder']}: {state}, "
             f"{_size(faces['size_bytes'])}; licence: {faces['licence']}"
             + ("" if usable else f"\n  to fetch: {faces['fetch']}"))
        if given or models_dir or shotlist:
            emit("given folders:" + ("" if given else " nothing recognised"))
        for item in given:
            where = item["path"] or item["repo_id"]
            state = "present" if item["present"] else "missing"
            detail = f" ({item['detail']})" if item["detail"] else ""
            emit(f"  {item['kind']}: {where}{detail}: {state}, {_size(item['size_bytes'])}; licence: "
                 f"{item['licence']}  [{item['source']}]")

    guarded(body, as_json)


@models_app.command("fetch")
def models_fetch(
    preset: Annotated[str, typer.Argument(help="A real preset (sd15, sdxl).", show_default=False,
                                          metavar="PRESET")],
    variant: Annotated[str, typer.Option("--variant", help="Identity adapter variant: faceid-plusv2 (what real "
                                         "presets render with; adds the CLIP ViT-H image encoder) or faceid.")
                       ] = "faceid-plusv2",
    accept_insightface_license: AcceptFaceLicenceOpt = False,
    face_models: FetchFaceModelsOpt = None,
    face_pack_sha256: FacePackShaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a preset's base model and adapter into the Hugging Face cache (a pickled adapter is converted
    once to safetensors); with --accept-insightface-license also the buffalo_l face-model pack."""
    from ..model_setup import fetch

    def body() -> None:
        result = fetch(preset, variant, progress=not as_json, accept_insightface_licence=accept_insightface_license,
                       face_models=face_models, face_pack_sha256=face_pack_sha256)
        if as_json:
            emit_json(ok(**result))
            return
        for item in result["fetched"]:
            emit(f"{item['role']}: {item['repo_id']} -> {item['path']}")
            if "converted" in item:
                conv = item["converted"]
                emit(f"  converted to safetensors (weights-only load): {conv['path']}\n"
                     f"  source sha256 {conv['source_sha256']}\n  file sha256   {conv['sha256']}")
        faces = result["face_models"]
        if faces["state"] == "licence not accepted":
            print_note(faces["message"])
        else:
            emit(f"face models ({faces['pack']}): {faces['state']} in {faces['folder']}"
                 + (f"\n  zip sha256 {faces['zip_sha256']}" if faces.get("zip_sha256") else "")
                 + (f"\n  skipped (not .onnx): {', '.join(faces['skipped'])}" if faces.get("skipped") else ""))
            print_note(f"licence: {faces['licence']}")
            if faces.get("problem"):  # the folder's other files still make it one the render refuses
                print_note(f"the face models in {faces['folder']} are not usable: {faces['problem']}")

    guarded(body, as_json)

