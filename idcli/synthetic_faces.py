"""A synthetic, offline InsightFace model pack for tests (NO pretrained weights, nothing learned).

InsightFace's ``FaceAnalysis(name=..., root=...)`` loads every ``*.onnx`` file in ``<root>/models/<name>/``
and decides what each file *is* purely from its ONNX signature (``insightface/model_zoo/model_zoo.py``,
``ModelRouter.get_model``). This module writes a tiny pack whose files carry the published signatures of
the ``buffalo_l`` pack, so that tests can drive InsightFace's real loading, detection, alignment and
recognition code without network access or licensed weights:

``det_synthetic.onnx`` imitates SCRFD (``det_10g.onnx``)
    One input ``input.1`` of shape ``[1, 3, height, width]`` (height and width dynamic), float32 RGB
    normalised as ``(pixel - 127.5) / 128`` (InsightFace's ``SCRFD`` hard-codes that mean/std and feeds
    ``cv2.dnn.blobFromImage(..., swapRB=True)``). Nine rank-2 outputs, in this order: scores for strides
    8/16/32 (``[N_s, 1]``, already probabilities: InsightFace applies no sigmoid), box distances for
    strides 8/16/32 (``[N_s, 4]``: left, top, right, bottom from the anchor centre, in units of the
    stride) and keypoint offsets for strides 8/16/32 (``[N_s, 10]``: five (dx, dy) pairs from the anchor
    centre, in units of the stride). ``N_s = (H/s) * (W/s) * 2``: two anchors per location, rows ordered
    (y, x, anchor), anchor centres at ``(x*s, y*s)``. Nine outputs is what makes InsightFace pick strides
    (8, 16, 32), two anchors and ``use_kps=True``; >= 5 outputs is what routes a file to ``SCRFD`` at all.
    InsightFace 2.1 also builds one fixed-shape Session per ``det_size`` by rewriting the graph's input and
    output dimensions (``scrfd._static_scrfd_model``), which needs exactly this output order, rank-2 outputs
    and last dimensions 1/4/10. Detection sizes must be multiples of 32, as for the real model.

``w600k_synthetic.onnx`` imitates the ArcFace recogniser (``w600k_r50.onnx``)
    One input ``input.1`` of shape ``[batch, 3, 112, 112]``, one output of shape ``[batch, 512]``.
    A square input of at least 112 that is divisible by 16 (and not 96, 128-with-two-inputs or 192)
    routes to ``ArcFaceONNX``. ArcFace picks its normalisation by looking for nodes *named* ``Sub*`` and
    ``Mul*`` among the first eight graph nodes (MXNet-era models normalise inside the graph); the
    TorchScript exporter names every node after its scope with a leading slash (``/Slice``, ``/Mul``), so
    this model gets ``(pixel - 127.5) / 127.5``, RGB, like ``w600k_r50``, and undoes that inside the graph.

The weights are synthetic, and say so in ``PACK.json``:

* The detector is hand-designed, not trained and not random. It marks "skin-coloured" pixels (a fixed
  band of R-G and G-B chroma, the colours of the flat faces drawn by ``tools/make_recipe_selfies.py``),
  average-pools them per stride, and for two square windows per anchor (9 and 15 cells) measures the
  blob's area, centroid and second moments with fixed convolution kernels. A location scores high when
  one compact skin blob lies wholly inside its window (the border ring, with the image's edge extended
  outwards, is nearly skin-free), fills the window's centre and has its centroid within a cell of the
  anchor. The box comes from the blob's moments and the five keypoints sit at fixed fractions of that
  box (eyes, nose tip, mouth corners of the drawn faces), so every anchor that fires on a blob predicts
  about the same box and non-maximum suppression leaves one face per blob. It finds the drawn faces
  (several per image too) and nothing in uniform or noise images; any isolated compact skin-coloured
  blob counts as a face, so it is *not* a face detector for photographs.
* The recogniser is hand-designed too: a fixed colour "identity" read off the aligned 112 x 112 crop
  (``norm_crop`` puts the eyes at (38, 52) and (74, 52) for every face the detector finds). It averages the
  RGB colour of three fixed regions: a hair band at the top, the two cheeks (skin) and a surround (the
  side edges and bottom corners: hair for long hair styles, background for short ones). Each region's
  colour goes through seeded random Fourier features (``cos(W c + b)``, ``W ~ N(0, 1/sigma^2)``, so the
  dot product of two codes approximates the Gaussian kernel ``exp(-|c1 - c2|^2 / 2 sigma^2)``), the code
  is scaled to unit length, centred by subtracting a fixed reference (the mean code over plausible
  colours for that region: the detector's skin band for the cheeks, the whole RGB cube otherwise) and
  weighted; the concatenated 510 features are mapped to 512 dimensions by a fixed orthonormal matrix (a
  Hadamard matrix with seeded random row choice and column signs), which keeps every cosine. Cosine
  similarity is thus a weighted mean of per-region colour agreements: two photos of one drawn person
  score about 0.95-1.0, different drawn people about 0.0-0.2 (buffalo_l-like), look-alikes (same hair
  colour and style, close skin tone) more. Regions are means over boxes, so a pixel or two of alignment
  error changes little; brightness or white-balance changes are *not* tolerated as real ArcFace would.
  Eye colour is left out: the detected eye keypoints are only good to a few pixels, more than an iris.

Never ship or use this pack as a real identity model. Building needs ``torch`` and ``onnx``; loading it
needs ``insightface`` and ``onnxruntime``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import threading
from pathlib import Path
from typing import Any

# Temporaries are dot-names ending in .idcli-tmp: InsightFace globs *.onnx and never sees a half-written file.
from .hashing import sha256_bytes, sha256_file
from .safeio import atomic_write, fsync_dir, remove_dead_temporaries, temporary_path
from .torch_defaults import torch_defaults

PACK_NAME = "idcli-synthetic"
PACK_MARKER = "PACK.json"  # Not "manifest.json": that name opts a folder into InsightFace's manifest routing.
PACK_VERSION = 2  # Bump whenever the networks or their export change: older packs are then rebuilt.
DETECTOR_FILE = "det_synthetic.onnx"
RECOGNISER_FILE = "w600k_synthetic.onnx"
RECOGNISER_SEED = 20240611
OPSET = 17

STRIDES = (8, 16, 32)
WINDOWS = (9, 15)  # window side, in cells of the stride, for anchor 0 and anchor 1 of every location

# Skin membership: trapezoids over R-G and G-B in 0..255 units (ramp-up start, plateau start, plateau end,
# ramp-down end), and a ramp on R against dark pixels. Fitted to tools/make_recipe_selfies.py's palette.
SKIN_RG = (25.0, 33.0, 62.0, 76.0)
SKIN_GB = (12.0, 20.0, 45.0, 56.0)
SKIN_R = (70.0, 100.0)

# Box from the skin blob's moments, in standard deviations from the centroid (left/right, top, bottom).
# The drawn faces lose their forehead to hair and gain a neck, hence the asymmetric top and bottom.
BOX_X_SD = 1.95
BOX_TOP_SD = 2.5
BOX_BOTTOM_SD = 1.6

# Five keypoints as fractions of the box, InsightFace's order: left eye, right eye, nose, mouth left/right.
KEYPOINTS = ((0.29, 0.44), (0.71, 0.44), (0.5, 0.63), (0.325, 0.73), (0.675, 0.73))

# Recogniser regions of the aligned 112 x 112 crop, as (row start, row end, column start, column end) boxes,
# with the weight of each region in the embedding. Face width is normalised by the alignment (cheeks span
# about columns 7-105); the hair line sits near row 25-29 and the eyes near rows 50-57 for the drawn faces.
RECOGNISER_REGIONS = (
    ("hair", ((4, 16, 40, 72),), 1.0),
    ("skin", ((64, 80, 16, 28), (64, 80, 84, 96)), 0.7),  # skin tones vary less: weigh them less
    ("surround", ((40, 100, 0, 5), (40, 100, 107, 112), (104, 112, 0, 10), (104, 112, 102, 112)), 1.0),
)
RECOGNISER_FEATURES = 170  # random Fourier features per region: 3 x 170 = 510 <= 512, so projection keeps cosines
RECOGNISER_SIGMA = 25.0  # colour kernel width, 0..255 units: colours ~25 apart agree ~0.6, ~60 apart ~0.06
RECOGNISER_SCALE = 16.0  # output scale, for embedding norms in ArcFace's range (InsightFace normalises anyway)
EMBEDDING_SIZE = 512


def _trapezoid(torch: Any, v: Any, a: float, b: float, c: float, d: float) -> Any:
    rising = (v - a) * (1.0 / (b - a))
    falling = (d - v) * (1.0 / (d - c))
    return torch.clamp(torch.minimum(rising, falling), 0.0, 1.0)


def _detector_module(torch: Any) -> Any:
    nn = torch.nn
    functional = torch.nn.functional

    def window_kernels(k: int) -> Any:
        """Fixed K x K kernels: area, x, y, x^2, y^2, border ring, 3x3 centre (7 output channels)."""
        c = k // 2
        offsets = torch.arange(k, dtype=torch.float32) - c
        y, x = torch.meshgrid(offsets, offsets, indexing="ij")
        ones = torch.ones(k, k)
        ring = ones.clone()
        ring[1:-1, 1:-1] = 0.0
        centre = torch.zeros(k, k)
        centre[c - 1 : c + 2, c - 1 : c + 2] = 1.0
        return torch.stack([ones, x, y, x * x, y * y, ring, centre]).unsqueeze(1)

    class SyntheticScrfd(nn.Module):  # type: ignore[name-defined]  # torch is an argument here (Any to mypy)
        def __init__(self) -> None:
            super().__init__()
            for k in WINDOWS:
                self.register_buffer(f"window_{k}", window_kernels(k))
            self.register_buffer("keypoint_fractions", torch.tensor(KEYPOINTS, dtype=torch.float32))

        def skin(self, x: Any) -> Any:
            rgb = x * 128.0 + 127.5
            r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
            rg = _trapezoid(torch, r - g, *SKIN_RG)
            gb = _trapezoid(torch, g - b, *SKIN_GB)
            bright = torch.clamp((r - SKIN_R[0]) * (1.0 / (SKIN_R[1] - SKIN_R[0])), 0.0, 1.0)
            return rg * gb * bright

        def anchor(self, cells: Any, k: int) -> tuple[Any, Any, Any]:
            kernels = getattr(self, f"window_{k}")
            m = functional.conv2d(cells, kernels, padding=k // 2)
            area, mx, my, mxx, myy, centre = (m[:, i : i + 1] for i in (0, 1, 2, 3, 4, 6))
            # The ring sees the image's edge cells extended outwards (edge padding), so a blob that runs off
            # the image (a uniform skin-coloured picture) is never "wholly inside" a window larger than it.
            edged = functional.pad(cells, (k // 2,) * 4, mode="replicate")
            ring = functional.conv2d(edged, kernels[5:6])
            safe = area + 1e-3
            mu_x, mu_y = mx / safe, my / safe
            sd_x = torch.sqrt(torch.relu(mxx / safe - mu_x * mu_x) + 1e-3)
            sd_y = torch.sqrt(torch.relu(myy / safe - mu_y * mu_y) + 1e-3)
            fill = area * (1.0 / (k * k))
            ring_fill = ring * (1.0 / (4 * k - 4))
            centre_fill = centre * (1.0 / 9.0)
            # A filled ellipse has area pi * (2 sd_x) * (2 sd_y); separate blobs (faces side by side seen by
            # one large window) have much more spread than area, so they fail this and each face wins alone.
            compactness = area / (4.0 * math.pi * sd_x * sd_y + 1e-3)
            score = (
                torch.sigmoid(30.0 * (fill - 0.10))
                * torch.sigmoid(30.0 * (0.80 - fill))
                * torch.sigmoid(50.0 * (0.12 - ring_fill))
                * torch.sigmoid(15.0 * (centre_fill - 0.5))
                * torch.sigmoid(20.0 * (compactness - 0.7))
                * torch.sigmoid(8.0 * (1.0 - torch.abs(mu_x)))
                * torch.sigmoid(8.0 * (1.0 - torch.abs(mu_y)))
            )
            # Moments are about the cell centre; InsightFace's anchor centre is the cell's top-left corner.
            cx, cy = mu_x + 0.5, mu_y + 0.5
            x1, x2 = cx - BOX_X_SD * sd_x, cx + BOX_X_SD * sd_x
            y1, y2 = cy - BOX_TOP_SD * sd_y, cy + BOX_BOTTOM_SD * sd_y
            box = torch.cat([-x1, -y1, x2, y2], dim=1)
            fx = self.keypoint_fractions[:, 0].view(1, 5, 1, 1)
            fy = self.keypoint_fractions[:, 1].view(1, 5, 1, 1)
            kx = x1 + fx * (x2 - x1)
            ky = y1 + fy * (y2 - y1)
            kps = torch.stack([kx, ky], dim=2).flatten(1, 2)  # (1, 10, h, w): x0, y0, x1, y1, ...
            return score, box, kps

        def forward(self, x: Any) -> tuple[Any, ...]:
            skin = self.skin(x)
            scores: list[Any] = []
            boxes: list[Any] = []
            keypoints: list[Any] = []
            for stride in STRIDES:
                cells = functional.avg_pool2d(skin, stride, stride)
                per_anchor = [self.anchor(cells, k) for k in WINDOWS]
                for index, (out, width) in enumerate(((scores, 1), (boxes, 4), (keypoints, 10))):
                    # (1, C, h, w) per anchor -> (h, w, anchor, C) -> (h * w * anchors, C): SCRFD's row order.
                    maps = [a[index].permute(0, 2, 3, 1) for a in per_anchor]
                    out.append(torch.stack(maps, dim=3).reshape(-1, width))
            return (*scores, *boxes, *keypoints)

    return SyntheticScrfd().eval()


def _recogniser_module(torch: Any) -> Any:
    nn = torch.nn
    generator = torch.Generator().manual_seed(RECOGNISER_SEED)
    count, sigma = RECOGNISER_FEATURES, RECOGNISER_SIGMA

    def unit_codes(colours: Any, freq: Any, phase: Any) -> Any:
        codes = torch.cos(colours @ freq + phase)
        return codes / torch.sqrt((codes * codes).sum(dim=1, keepdim=True))

    def grid(*axes: Any) -> Any:
        return torch.stack([a.flatten() for a in torch.meshgrid(*axes, indexing="ij")], dim=1)

    # Reference colours the codes are centred on: the detector's skin band for skin, the RGB cube otherwise.
    levels = torch.linspace(0.0, 255.0, 8, dtype=torch.float64)
    cube = grid(levels, levels, levels)
    r, rg, gb = grid(
        torch.linspace(SKIN_R[1], 250.0, 8, dtype=torch.float64),
        torch.linspace(SKIN_RG[1], SKIN_RG[2], 4, dtype=torch.float64),
        torch.linspace(SKIN_GB[1], SKIN_GB[2], 4, dtype=torch.float64),
    ).unbind(1)
    skin = torch.stack([r, r - rg, r - rg - gb], dim=1)

    # Randomised Hadamard matrix: seeded choice of rows and column signs, rows orthonormal.
    hadamard = torch.ones(1, 1, dtype=torch.float64)
    while hadamard.shape[0] < EMBEDDING_SIZE:
        hadamard = torch.cat([torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)], 0)
    rows = torch.randperm(EMBEDDING_SIZE, generator=generator)[: count * len(RECOGNISER_REGIONS)]
    signs = torch.randint(0, 2, (EMBEDDING_SIZE,), generator=generator, dtype=torch.float64) * 2.0 - 1.0
    projection = hadamard[rows] * signs * (RECOGNISER_SCALE / math.sqrt(EMBEDDING_SIZE))
    # Region weights scale the rows of each region's block (the same as weighting the centred codes).
    weights = torch.tensor([w for _, _, w in RECOGNISER_REGIONS], dtype=torch.float64).repeat_interleave(count)
    projection = projection * weights[:, None]

    class SyntheticArcFace(nn.Module):  # type: ignore[name-defined]  # torch is an argument here (Any to mypy)
        def __init__(self) -> None:
            super().__init__()
            for index, (name, _, _) in enumerate(RECOGNISER_REGIONS):
                freq = torch.randn(3, count, generator=generator, dtype=torch.float64) / sigma
                phase = torch.rand(count, generator=generator, dtype=torch.float64) * (2.0 * math.pi)
                reference = unit_codes(skin if name == "skin" else cube, freq, phase).mean(dim=0)
                self.register_buffer(f"freq_{index}", freq.float())
                self.register_buffer(f"phase_{index}", phase.float())
                self.register_buffer(f"reference_{index}", reference.float())
            self.register_buffer("projection", projection.float())

        def forward(self, x: Any) -> Any:
            parts = []
            for index, (_, boxes, _) in enumerate(RECOGNISER_REGIONS):
                area = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in boxes)
                total = sum(x[:, :, r0:r1, c0:c1].sum(dim=(2, 3)) for r0, r1, c0, c1 in boxes)
                colour = total * (127.5 / area) + 127.5  # mean RGB in 0..255: undo InsightFace's normalisation
                codes = unit_codes(colour, getattr(self, f"freq_{index}"), getattr(self, f"phase_{index}"))
                parts.append(codes - getattr(self, f"reference_{index}"))
            return torch.cat(parts, dim=1) @ self.projection

    return SyntheticArcFace().eval()


def _export(torch: Any, module: Any, example: Any, outputs: dict[str, int], dynamic: dict) -> bytes:
    """Export ``module`` with the TorchScript exporter; ``outputs`` maps each output name to its last dimension."""
    import onnx

    from .library_quiet import quiet_onnx_export

    buffer = io.BytesIO()
    # dynamo=False is deliberate (plain, deterministic graphs with dynamic H and W); torch calls it legacy, and
    # notes it cannot constant-fold the step -1 Slice behind edge padding. Those notices are quieted by entries
    # of their own in the filters, not a catch_warnings block, which would swap the process-wide filters and
    # showwarning under a host's other threads.
    with torch.no_grad(), quiet_onnx_export():
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["input.1"],
            output_names=list(outputs),
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    model = onnx.load_model_from_string(buffer.getvalue())
    for value in model.graph.output:
        # Reshape(-1, n) leaves the last dimension symbolic; the published models state it.
        last = value.type.tensor_type.shape.dim[-1]
        last.ClearField("dim_param")
        last.dim_value = outputs[value.name]
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _pack_is_current(folder: Path) -> bool:
    try:
        marker = json.loads((folder / PACK_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("pack_version") != PACK_VERSION:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or set(files) != {DETECTOR_FILE, RECOGNISER_FILE}:
        return False
    try:
        return all(sha256_file(folder / name) == digest for name, digest in files.items())
    except OSError:
        return False


# torch's ONNX exporter keeps process-wide state (GLOBALS.in_onnx_export): two threads exporting at once (two plans
# using the synthetic pack for the first time) failed one of them with "GLOBALS.in_onnx_export must be ...".
_EXPORTING = threading.Lock()


@torch_defaults
def build_synthetic_face_pack(root: Path, name: str = PACK_NAME) -> Path:
    """Write the synthetic pack to ``root/models/<name>/`` and return that folder.

    Use it with ``FaceAnalysis(name=name, root=str(root), providers=["CPUExecutionProvider"])``.
    Idempotent: a folder whose ``PACK.json`` matches this format and the files' hashes is returned as is.
    One build at a time in a process (a thread that waited finds the pack built). The pack is written whole to a
    temporary folder beside it (a dot-name, which no loader looks in) and renamed into place, so another process
    finds no folder or a complete one; one that finished first keeps its pack, and this build uses it.
    """
    folder = Path(root) / "models" / name
    if _pack_is_current(folder):
        return folder
    with _EXPORTING:
        if _pack_is_current(folder):  # built by another thread while this one waited
            return folder
        return _build(folder, name)


def _build(folder: Path, name: str) -> Path:
    import torch

    scores = {f"score_{s}": 1 for s in STRIDES}
    boxes = {f"bbox_{s}": 4 for s in STRIDES}
    keypoints = {f"kps_{s}": 10 for s in STRIDES}
    detector_outputs = {**scores, **boxes, **keypoints}  # InsightFace reads outputs by position, in this order
    dynamic: dict[str, dict[int, str]] = {"input.1": {2: "height", 3: "width"}}
    dynamic.update({name: {0: f"anchors_{name.split('_')[1]}"} for name in detector_outputs})
    detector = _export(torch, _detector_module(torch), torch.zeros(1, 3, 320, 320), detector_outputs, dynamic)
    recogniser = _export(
        torch,
        _recogniser_module(torch),
        torch.zeros(1, 3, 112, 112),
        {"embedding": 512},
        {"input.1": {0: "batch"}, "embedding": {0: "batch"}},
    )
    marker = {
        "pack_version": PACK_VERSION,
        "name": name,
        "synthetic": True,
        "weights": (
            "synthetic: hand-set detector, hand-set recogniser (region colours, seeded random Fourier features"
            " and projection); no training, no real faces"
        ),
        "warning": "Not a face model. For offline tests of InsightFace's loading and inference code only.",
        "imitates": {
            DETECTOR_FILE: "SCRFD det_10g.onnx: input [1,3,H,W], 9 outputs (strides 8/16/32 x score, bbox, kps)",
            RECOGNISER_FILE: "ArcFace w600k_r50.onnx: input [N,3,112,112], one output [N,512]",
        },
        "recogniser_seed": RECOGNISER_SEED,
        "opset": OPSET,
        "built_with": {"torch": torch.__version__},
        "files": {
            DETECTOR_FILE: sha256_bytes(detector),
            RECOGNISER_FILE: sha256_bytes(recogniser),
        },
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(folder.parent)  # a build killed mid-write left its temporary folder here
    partial = temporary_path(folder)
    try:
        partial.mkdir()
        atomic_write(partial / DETECTOR_FILE, detector)
        atomic_write(partial / RECOGNISER_FILE, recogniser)
        atomic_write(partial / PACK_MARKER, (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        _rename_into_place(partial, folder)
    finally:
        _remove(partial)
    return folder


def _rename_into_place(partial: Path, folder: Path) -> None:
    """``partial`` renamed to ``folder``, unless another process put a complete pack there first (the same bytes:
    kept). What else is there (an older pack version, a damaged or half-built one) is moved aside and removed."""
    for _ in range(3):  # another process may be replacing the same old folder meanwhile
        try:
            os.rename(partial, folder)  # fails on a folder that is not empty, never merges into it
            fsync_dir(folder.parent)
            return
        except OSError:
            if _pack_is_current(folder):
                return
        aside = temporary_path(folder)
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, aside)
        _remove(aside)
    raise OSError(f"could not put the synthetic face pack in place at '{folder}'")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
