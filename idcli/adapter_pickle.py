"""An allowed pickled adapter's keys and shapes, read before any work, so that plan and validate check it as they
check a ``.safetensors`` header (and, the same way, the key names of a base model's UNet saved only as a pickle, for
adapter_fit's count of its attention layers).

h94 publishes every FaceID file as a pickle (``ip-adapter-faceid_sd15.bin``, ``…-plusv2_sdxl.bin``), and that is the
file ComfyUI users and clones of the hub repository hold; the shot list loads it with ``model.allow_pickle: true``.
Its keys were read only by the render, so a Plus v2 file given for ``variant: faceid`` (or the reverse), the other
base model's file or a file that is no adapter passed ``validate`` and ``plan`` and was refused after every selfie
was encoded and the base model loaded. Where the shot list allows the pickle, it is read here the way the render
reads it (``torch.load(weights_only=True)``, which refuses anything but tensors) and memory-mapped, so no weight is
read: only the pickle's small structure record. Anything that read cannot say (a legacy non-zip ``torch.save``, which
cannot be memory-mapped; a damaged file; something else than h94's two groups) is left to the render, which says
what it is in its own words. Without ``allow_pickle`` nothing is unpickled (adapters.refuse_unallowed_pickle).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .adapter_fit import check_shapes_fit
from .adapter_keys import LOADER_GROUP, TRAINING_GROUP
from .adapter_layout import check_adapter_shapes
from .library_quiet import quiet_pickle_protocol_note
from .models import ModelIdentity

# torch reads a pickle record (a torch zip's data.pkl) whole into memory, and twice over for a long string in it: a
# record deflated to a few hundred kilobytes took 570 MB to validate, one of a few megabytes would take gigabytes.
# h94's records are small (about 80 KB for Plus v2 SDXL's 800 tensors): a larger one is left to the render.
MAX_RECORD_BYTES = 16 * 2**20


def record_too_large(file: Path) -> bool:
    """Whether a torch zip's pickle record unpacks past ``MAX_RECORD_BYTES``, from the zip's directory alone (nothing
    unpacked); False for a file that is no zip (torch's memory-mapped read refuses it on its own)."""
    try:
        with zipfile.ZipFile(file) as archive:
            return any(entry.filename.endswith("data.pkl") and entry.file_size > MAX_RECORD_BYTES
                       for entry in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _mapped_load(file: Path) -> object | None:
    """A torch pickle loaded weights-only and memory-mapped (its tensors not read: only the pickle record is); None
    when it cannot be read so or its record is past ``MAX_RECORD_BYTES``."""
    import torch

    if record_too_large(file):
        return None
    try:
        with quiet_pickle_protocol_note():  # filter entries of its own: no process-wide warnings state swapped
            return torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # torch's weights-only unpickler fails on a malformed record with any error (an assert too)
        return None


def pickle_shapes(file: Path) -> dict[str, tuple[int, ...]] | None:
    """Each tensor's shape in a pickled IP-Adapter checkpoint as h94 saves one (``{"image_proj": {…}, "ip_adapter":
    {…}}``, or with IP-Adapter's training script's name for the second group, ``adapter_modules``, as ComfyUI takes it),
    keyed ``image_proj.…`` / ``ip_adapter.…`` (``adapter_modules.…``) as a safetensors file is; None when it cannot be
    read memory-mapped and weights-only, its record is past ``MAX_RECORD_BYTES``, or it is not laid out so."""
    import torch

    loaded = _mapped_load(file)
    if not isinstance(loaded, dict):
        return None
    shapes: dict[str, tuple[int, ...]] = {}
    groups = [group for group in (LOADER_GROUP, TRAINING_GROUP) if group in loaded] or [LOADER_GROUP]
    for group in ("image_proj", *groups):  # both adapter groups: check_adapter_shapes refuses the file naming them
        entries = loaded.get(group)
        if not isinstance(entries, dict):
            return None
        for key, value in entries.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                return None
            shapes[f"{group}.{key}"] = tuple(int(n) for n in value.shape)
    return shapes


def pickled_weight_names(file: Path) -> list[str] | None:
    """The tensor names of a model's pickled weights as diffusers saves them without safetensors (a flat state dict,
    ``unet/diffusion_pytorch_model.bin``), read as ``pickle_shapes`` reads an adapter's: weights-only and
    memory-mapped, so no weight is read (for adapter_fit's count of a UNet's attention layers, only where the shot
    list allows pickles). None when it cannot be read so or is not a flat state dict."""
    import torch

    loaded = _mapped_load(file)
    if not isinstance(loaded, dict) or not all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                               for key, value in loaded.items()):
        return None
    return list(loaded)


def check_allowed_pickle(file: Path, plus: bool, model: ModelIdentity, allow_pickle: bool) -> None:
    """Refuse an allowed pickled adapter of the wrong kind (FaceID vs FaceID-Plus, no adapter at all) or made for
    another base model, in the render's words; a ``.safetensors`` file, a pickle not allowed or one whose shapes
    cannot be read here are left as they were."""
    if not allow_pickle or file.name.endswith(".safetensors"):
        return
    shapes = pickle_shapes(file)
    if shapes is None:
        return
    check_adapter_shapes(file, shapes, plus)
    check_shapes_fit(file, shapes, model, "FaceID-Plus v2" if plus else "FaceID")
