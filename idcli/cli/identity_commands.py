"""The identity commands: ``encode-identity`` and the ``identity`` group (``identity show``).

Owns encoding selfies into an identity pack (with its per-selfie report and the FaceID-Plus v2 options that choose
which CLIP features the pack stores) and summarising a pack; the work is idcli/identity/.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError, ModelUnavailableError
from .help_text import PlainHelpTyper
from .options import FaceModelsOpt, JsonOpt, app, given_path, written_file
from .output import emit, emit_json, guarded, ok, print_note

identity_app = PlainHelpTyper(help="Inspect identity packs.", no_args_is_help=True, add_completion=False,
                           rich_markup_mode=None)
app.add_typer(identity_app, name="identity")


@app.command("encode-identity")
def encode_identity(
    selfies: Annotated[list[Path], typer.Argument(parser=given_path,
                                                  help="One or more selfies of the same person.", show_default=False,
                                                  metavar="SELFIE")],
    name: Annotated[str, typer.Option("--name", help="Character name.", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", parser=written_file,
                                                help="Pack file [default: NAME.idpack].")] = None,
    face_models: FaceModelsOpt = None,
    face: Annotated[int | None, typer.Option("--face", help="Which face when a selfie shows several "
                                                            "(0 = largest; the output lists them).")] = None,
    # FaceID-Plus v2 (issue 17): the pack also carries the CLIP features its renders read (docs/identity.md).
    variant: Annotated[str, typer.Option(
        "--variant", help="faceid (the ArcFace embedding only) or faceid-plusv2: also store the CLIP face "
        "features of the kept crops for --preset's image encoder, so that renders of the pack need neither the "
        "selfies nor the encoder.")] = "faceid",
    plus_presets: Annotated[list[str] | None, typer.Option(
        "--preset", help="With --variant faceid-plusv2: the preset the pack will render with (its image encoder, "
        "as model.adapter resolves it). Repeatable.", show_default=False, metavar="PRESET")] = None,
    image_encoder: Annotated[str | None, typer.Option(
        "--image-encoder", help="With --variant faceid-plusv2: the image encoder the shot list names in "
        "model.adapter.image_encoder (hub id or local folder) [default: the preset's].", show_default=False)]
    = None,
    image_encoder_subfolder: Annotated[str, typer.Option(
        "--image-encoder-subfolder", help="model.adapter.image_encoder_subfolder, with --image-encoder.")] = "",
    force: Annotated[bool, typer.Option("--force", help="Replace the pack if the -o file exists (shot lists "
                                                        "that name it render with the new one).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Encode selfies into an identity pack (detection, quality gate, alignment, ArcFace, aggregation)."""
    from ..identity.build import build_identity
    from ..identity.faces import resolve_face_models
    from ..identity.pack import PackExistsError
    from ..identity.resolve import shared_analyzer
    from ..shotlist import check_safe_id

    def body() -> None:
        try:
            check_safe_id(name, "--name")
        except ValueError as exc:
            raise InputError(str(exc)) from None
        out = output or Path(f"{name}.idpack")
        if not force and (out.exists() or out.is_symlink()):
            raise PackExistsError(out)  # before any selfie is read; the write checks again
        with _encoder_fix_for_this_command(plus_presets or []):
            clip_adapters = _pack_clip_adapters(variant, plus_presets or [], image_encoder, image_encoder_subfolder)
        missing = [selfie for selfie in selfies if not selfie.exists()]
        if missing:  # a mistyped path, named before the face models are looked for (exit 4 where none are set up)
            from ..safeio import missing_reason

            raise InputError(f"{missing[0]}: {missing_reason(missing[0])}", file=missing[0])
        models = resolve_face_models(face_models)
        analyzer = shared_analyzer(models)

        def report(item: Any) -> None:
            if as_json:
                return
            print(f"  {item.path}: face {item.quality.face_px:.0f} px, score {item.quality.det_score:.2f}, "
                  f"sharpness {item.quality.sharpness:.0f}, yaw {item.quality.yaw:+.0f}°", file=sys.stderr)
            if len(item.faces) > 1:
                for found in item.faces:
                    mark = "→" if found["index"] == item.face_index else " "
                    print(f"    {mark} face {found['index']}: box {found['bbox']} score {found['score']}",
                          file=sys.stderr)
                print("    (largest first; pick another with --face N)", file=sys.stderr)

        with _encoder_fix_for_this_command(plus_presets or []):
            result = build_identity(name, list(selfies), analyzer, out, face_index=face, on_selfie=report,
                                    clip_adapters=clip_adapters, overwrite=force)
        agg = result.aggregate.record()
        if as_json:
            emit_json(ok(**{**result.pack.meta, "pack": str(out), "sha256": result.pack.sha256,
                            "embedding_sha256": result.pack.embedding_sha256}))
            return
        for item in agg["rejected"]:
            print(f"  rejected {item['path']}: {item['reason']}", file=sys.stderr)
        sims = f"mean cosine {agg['mean_cosine']}, min {agg['min_cosine']}" if agg["mean_cosine"] is not None else \
            "one selfie"
        emit(f"{out}: identity '{name}' from {len(agg['kept'])} of {len(selfies)} selfies ({sims})")
        for entry in result.pack.meta.get("clip_features", []):
            print(f"  CLIP features {entry['shape']} for image encoder {json.dumps(entry['image_encoder'])}",
                  file=sys.stderr)
        if models.synthetic:
            print_note("synthetic random-weight face models — the identity is for testing only")

    guarded(body, as_json)


@contextlib.contextmanager
def _encoder_fix_for_this_command(presets: list[str]) -> Iterator[None]:
    """A missing or incomplete image encoder names the shot list's fields as the fix; here the fix is an option."""
    try:
        yield
    except ModelUnavailableError as exc:
        if "image encoder" not in str(exc):
            raise
        preset = presets[0] if presets else "PRESET"
        raise ModelUnavailableError(f"{exc}\n  with encode-identity: give --image-encoder (a hub id, or a folder "
                                    f"with config.json and model.safetensors), or run `idcli models fetch {preset} "
                                    "--variant faceid-plusv2` first") from None


def _pack_clip_adapters(variant: str, presets: list[str], image_encoder: str | None, subfolder: str) -> list[Any]:
    """encode-identity's --variant/--preset/--image-encoder as the FaceID-Plus v2 adapters to store features for."""
    from ..adapters import FACEID, PLUSV2
    from ..identity.clip_features import plus_adapter_for
    from ..presets import PRESETS

    if variant not in (FACEID, PLUSV2):
        raise InputError(f"--variant '{variant}': allowed are {FACEID}, {PLUSV2}")
    if variant == FACEID:
        if presets or image_encoder:
            raise InputError(f"--preset and --image-encoder choose the CLIP features of --variant {PLUSV2}; "
                             f"add --variant {PLUSV2}, or leave them out for a FaceID pack")
        return []
    if not presets:
        raise InputError(f"--variant {PLUSV2} needs --preset (the preset the pack will render with, e.g. "
                         f"--preset sd15): its image encoder is what the features are computed with")
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise InputError(f"--preset {', '.join(unknown)}: allowed are {', '.join(PRESETS)}")
    return [plus_adapter_for(p, image_encoder, subfolder) for p in presets]


@identity_app.command("show")
def identity_show(
    pack: Annotated[Path, typer.Argument(parser=given_path,
                                         help="Identity pack file.", show_default=False, metavar="PACK")],
    contact_sheet: Annotated[Path | None, typer.Option("--contact-sheet", parser=given_path,
                                                       help="Write a PNG of the aligned crops.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise an identity pack; optionally write a contact sheet of its aligned face crops."""
    from ..identity.build import contact_sheet as write_sheet
    from ..identity.pack import read_pack

    def body() -> None:
        data = read_pack(pack)
        if contact_sheet is not None:
            write_sheet(data, contact_sheet)
        meta = data.meta
        if as_json:
            emit_json(ok(**{**meta, "pack": str(pack), "sha256": data.sha256}))
            return
        agg = meta.get("aggregation", {})
        # emit: a received pack's name and selfie paths are any text, printed with control characters escaped
        emit(f"identity '{data.name}'  (pack schema {meta.get('schema')}, {meta.get('tool', {}).get('version')}, "
             f"created {meta.get('created')})")
        emit(f"  pack sha256       {data.sha256}")
        emit(f"  embedding sha256  {data.embedding_sha256}")
        models = meta.get("face_models", {})
        kind = "SYNTHETIC random weights" if models.get("synthetic") else str(models.get("hash", ""))[:30]
        emit(f"  face models       {models.get('folder')} ({kind})")
        emit(f"  aggregation       {agg.get('method')}: mean cosine {agg.get('mean_cosine')}, "
             f"min {agg.get('min_cosine')}, threshold {agg.get('threshold')}")
        for i, selfie in enumerate(meta.get("selfies", [])):
            q = selfie.get("quality", {})
            state = "used" if selfie.get("used") else "REJECTED"
            emit(f"  [{i}] {selfie.get('file')}: {state}, face {q.get('face_px', 0):.0f} px, score "
                 f"{q.get('det_score', 0):.2f}, weight {q.get('weight', 0):.3f}, "
                 f"sha256 {str(selfie.get('sha256', ''))[:12]}")
        from ..identity.clip_features import pack_clip_entries

        for entry in pack_clip_entries(meta):  # FaceID-Plus v2 features (encode-identity --variant faceid-plusv2)
            encoder = json.dumps(entry.get("image_encoder"))
            emit(f"  CLIP features     {entry.get('shape')} for image encoder {encoder}")
        if contact_sheet is not None:
            emit(f"  contact sheet     {contact_sheet}")

    guarded(body, as_json)

