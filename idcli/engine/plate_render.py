"""Plate jobs in the engine: every face of a plate is one crop ("unit") in the UNet batch.

The geometry and pixel arithmetic (crop box, feathered mask, latent mask, composite) are in
``engine/plates.py``; this module runs them around the denoising loop (docs/plates.md, "In the engine"):

1. ``PlateBatch.prepare``: each plate request with K faces becomes K units, each a one-line dual-line
   request at the working size: the semantic row is the shot prompt (no identity), the identity row is the
   face's character's line (its prompt, embedding and strength). Each crop is encoded with the VAE (the
   latent mean: no sampling) into ``z_0``; its noise ``ε`` comes from the job's own seed, one draw per
   face in face order, so a crop never depends on what else is in the batch.
2. ``begin``: the schedule runs from ``start_index(steps, strength)`` on, as diffusers' img2img slices it
   (``timesteps[start * order:]`` and ``set_begin_index`` where the scheduler has one, so multistep and
   second-order schedulers start there cleanly); the crop starts at ``add_noise(z_0, ε, t_start)``.
3. ``masks``: the identity line's fusion mask is the face's latent mask, fixed over the whole schedule
   (no attention probe).
4. ``keep_known``: after every scheduler step the latents outside the mask go back on ``z_0`` noised to
   the next evaluation's level (after the last step: ``z_0`` itself), as diffusers' inpaint pipeline
   blends. The noise levels are worked out before the loop as ``add_noise``'s two linear coefficients,
   so the loop reads no timestep back from the device.
5. ``reassemble``: each decoded crop is composited into its plate's own pixels through the feathered mask.

Nothing here reads a file: the plate arrives as pixels in the request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ..render_request import IdentityLine, PlateRequest, RenderRequest
from .plates import blend_known, composite, crop_pixels, face_mask, latent_mask, plate_mask, start_index

# Samplers that can start part-way through their schedule (all of engine/samplers.py's): diffusers' through
# set_begin_index, the midpoint sampler by re-planning its first evaluation onto a grid level (midpoint.py).
PLATE_SAMPLERS = ("ddim", "euler", "heun", "dpmpp-2m", "midpoint")


def _plate_of(request: RenderRequest) -> PlateRequest:
    """The plate of a request in a plate batch (each has one: the engine sends only plate requests here)."""
    if request.plate is None:
        raise ValueError("a plate batch holds a request without a plate")
    return request.plate


def check_plate_request(request: RenderRequest, vae_scale: int = 8) -> None:
    """A plate request the engine can render, or a ValueError saying what is wrong with it."""
    plate = request.plate
    assert plate is not None
    if request.width != request.height or request.width % vae_scale:
        raise ValueError(f"a plate job's working size must be square and a multiple of {vae_scale}, "
                         f"not {request.width}x{request.height}")
    if request.sampler not in PLATE_SAMPLERS:
        raise ValueError(f"plate jobs cannot use sampler {request.sampler!r}: it cannot start part-way through "
                         f"its schedule; use one of {', '.join(PLATE_SAMPLERS)}")
    if not plate.faces:
        raise ValueError("a plate job needs at least one face")
    if not 0.0 < plate.strength <= 1.0:
        raise ValueError(f"plate strength {plate.strength} is outside (0, 1]")
    width, height = plate.size
    for face in plate.faces:
        x, y, w, h = face.crop_box
        if w != h or w < 8 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise ValueError(f"face {face.character!r}: crop box {list(face.crop_box)} is not a square of at least "
                             f"8 pixels inside the {width}x{height} plate (engine/plates.crop_box makes one)")


@dataclasses.dataclass(frozen=True)
class CropUnit:
    """One face of one plate job, as one image of the UNet batch."""

    job: int  # index of its plate request in the batch
    face: int  # index of the face in that plate's faces
    request: RenderRequest  # the crop as a one-character request at the working size
    pixel_mask: np.ndarray  # the feathered face mask in crop pixels (side x side)
    latent_mask: Any  # torch (1, 1, s, s), 0/1: the cells re-generated (the identity line's fusion mask)


def unit_request(request: RenderRequest, line: IdentityLine | None) -> RenderRequest:
    """One face's crop as a request of its own: a one-line dual-line job whose semantic row is the shot's
    prompt and whose identity row is the face's character's line (text-only when it has none).

    Prepended references are cut to the whole job's count, so every row of a batch holds as many."""
    semantic = request.semantic_prompt or request.prompt
    common: dict[str, Any] = {"plate": None, "prompt": semantic, "subject_spans": ()}
    if line is None or line.embedding is None:
        return dataclasses.replace(request, method="text", identity_embedding=None, identity_strength=0.0,
                                   identity_references=None, lines=(), subject="", semantic_prompt=None,
                                   **common)
    references = line.references
    if references is not None:
        references = np.asarray(references, np.float32)[:max(0, request.identity_count() - 1)]
    line = dataclasses.replace(line, spans=(), references=references)
    return dataclasses.replace(request, method="dual-line", lines=(line,), identity_embedding=line.embedding,
                               identity_strength=line.strength, identity_references=references,
                               subject=line.name, semantic_prompt=semantic, **common)


def crops_in(request: RenderRequest) -> int:
    """Images of the UNet batch one request costs: its faces for a plate job, else 1."""
    return len(request.plate.faces) if request.plate is not None else 1


class PlateBatch:
    """The crops of a batch of plate requests: their rows, start latents, masks, per-step blend, composite."""

    def __init__(self, requests: list[RenderRequest], units: list[CropUnit], z0: Any, noise: Any,
                 dtype: Any) -> None:
        self.requests = requests
        self.units = units
        self.z0 = z0  # (n, c, s, s) on the device, float32 (the known latents are made in float32)
        self.noise = noise  # (n, c, s, s), the same
        self.dtype = dtype  # the latents' dtype in the loop
        self.masks = None  # (n, 1, s, s) in the latents' dtype, for the blend
        self._coefficients: Any = None  # (evaluations + 1, 2): add_noise = a z0 + b eps at each level
        self.start = start_index(requests[0].steps, _plate_of(requests[0]).strength)
        self.evaluations = 0

    @property
    def unit_requests(self) -> list[RenderRequest]:
        return [u.request for u in self.units]

    @classmethod
    def prepare(cls, requests: list[RenderRequest], encode: Callable[[list[np.ndarray]], Any],
                latent_channels: int, vae_scale: int, device: Any, dtype: Any) -> PlateBatch:
        """Units, crop latents (``encode``: uint8 RGB crops -> scaled latents) and noise for ``requests``."""
        import torch

        side = requests[0].width
        latent_side = side // vae_scale
        units: list[CropUnit] = []
        latents, noises = [], []
        encoded: dict[tuple[Any, ...], Any] = {}  # takes of one plate share their crops' latents
        for j, request in enumerate(requests):
            check_plate_request(request, vae_scale)
            plate = _plate_of(request)
            lines = {line.name: line for line in request.identity_lines()}
            generator = torch.Generator("cpu").manual_seed(request.seed)
            key = (plate.sha256, tuple(face.crop_box for face in plate.faces), side)
            if key not in encoded:
                encoded[key] = encode([crop_pixels(plate.pixels, face.crop_box, side) for face in plate.faces])
            latents.append(encoded[key])
            for f, face in enumerate(plate.faces):
                # One CPU generator per job, one draw per face in face order: the first face's noise is the
                # text-to-image noise of the same seed, and no face's depends on the batch.
                noises.append(torch.randn((1, latent_channels, latent_side, latent_side), generator=generator,
                                          dtype=torch.float32))
                pixel_mask = face_mask(face.box, face.crop_box, plate.size)
                units.append(CropUnit(j, f, unit_request(request, lines.get(face.character)), pixel_mask,
                                      latent_mask(pixel_mask, latent_side)))
        z0 = torch.cat(latents).to(device, torch.float32)
        noise = torch.cat(noises).to(device, torch.float32)
        return cls(requests, units, z0, noise, dtype)

    def subset(self, indices: range) -> PlateBatch:
        """The same batch restricted to some of its crops (out-of-memory back-off): same latents and noise."""
        chosen = list(indices)
        return PlateBatch(self.requests, [self.units[k] for k in chosen], self.z0[chosen[0]:chosen[-1] + 1],
                          self.noise[chosen[0]:chosen[-1] + 1], self.dtype)

    # -- the loop's pieces --------------------------------------------------------------------------

    def begin(self, scheduler: Any) -> Any:
        """The timesteps the crops run: the last ``strength`` of the schedule, counted as img2img counts it.

        ``scheduler`` has its timesteps set; it is told where it begins. Also readies ``start_latents`` and
        ``keep_known`` (their noise levels) for this schedule."""
        import torch

        first = self.start * scheduler.order
        if hasattr(scheduler, "set_begin_index"):
            # Before the slice: the midpoint sampler re-plans its first evaluation there (midpoint.py).
            scheduler.set_begin_index(first)
        timesteps = scheduler.timesteps[first:]
        self.evaluations = len(timesteps)
        # add_noise is linear in (z0, eps): its two coefficients at each evaluation's timestep (and 1, 0 after
        # the last), read from a twin scheduler with no begin index, which finds each timestep's noise level
        # in its own schedule; so the loop only multiplies.
        twin = type(scheduler).from_config(scheduler.config)
        twin.set_timesteps(self.requests[0].steps, device="cpu")
        ones, zeros = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
        rows = []
        for t in timesteps.cpu():
            t = t.reshape(1)
            rows.append([float(twin.add_noise(ones, zeros, t).flatten()[0]),
                         float(twin.add_noise(zeros, ones, t).flatten()[0])])
        rows.append([1.0, 0.0])
        device = self.z0.device
        self._coefficients = torch.tensor(rows, dtype=torch.float32).to(device)[:, :, None, None, None]
        self.masks = torch.cat([u.latent_mask for u in self.units]).to(device, self.dtype)
        return timesteps

    def start_latents(self) -> Any:
        """Each crop's ``add_noise(z_0, ε, t_start)``."""
        return self._known(0)

    def fusion_masks(self) -> list[Any]:
        """Per unit, its fixed fusion mask (1, 1, s, s) on the device, float32."""
        return [u.latent_mask.to(self.z0.device) for u in self.units]

    def _known(self, index: int) -> Any:
        a, b = self._coefficients[index]
        # In float32 whatever the loop's dtype: bfloat16 coefficients would be off by up to 0.4 %.
        return (a * self.z0 + b * self.noise).to(self.dtype)

    def keep_known(self, latents: Any, step: int) -> Any:
        """After loop step ``step``: outside the face masks, the plate's latents at the next level."""
        # The known latents are already noised, so blend_known takes them as they are (timestep None).
        return blend_known(latents, self.masks, self._known(step + 1), None, None, add_noise=None)

    # -- after the loop ----------------------------------------------------------------------------

    def reassemble(self, decoded: list[np.ndarray], capture: bool) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """Per plate request: the plate with its faces composited in (float32 RGB, plate size) and its facts.

        The image is ``uint8 / 255``, so rounding it back to 8 bits (``RenderResult.pixels``) gives the
        composite exactly: every pixel outside the union of the feathered masks is the plate's own.
        The image is RGB; the commit (executors/output.with_plate_alpha) puts an RGBA plate's own alpha back.
        """
        out = []
        for j, request in enumerate(self.requests):
            plate = _plate_of(request)
            own = [(k, u) for k, u in enumerate(self.units) if u.job == j]
            faces = [((decoded[k] * 255).round().astype(np.uint8), u.pixel_mask, plate.faces[u.face].crop_box)
                     for k, u in own]
            pixels = composite(plate.pixels, faces)[:, :, :3]
            facts: dict[str, Any] = {"plate": {
                "faces": [{"character": plate.faces[u.face].character, "box": list(plate.faces[u.face].box),
                           "crop_box": list(plate.faces[u.face].crop_box),
                           "mask_coverage": round(float(u.latent_mask.mean()), 4)} for _k, u in own],
                "start_step": self.start, "evaluations": self.evaluations, "strength": plate.strength}}
            if capture:
                facts["plate_mask"] = plate_mask(plate.size, [(u.pixel_mask, plate.faces[u.face].crop_box)
                                                              for _k, u in own])
            # Divided in place: one plate-sized float32 array (400 MB at 8K), not two; the same values.
            image = pixels.astype(np.float32)
            image /= np.float32(255)
            out.append((image, facts))
        return out


class FixedMask:
    """A fusion mask that does not follow attention: a plate face's latent mask, the same at every step.

    Stands where ``fusion.FusionMask`` stands in the loop (``update``, ``mask``, ``attention``)."""

    def __init__(self, mask: Any) -> None:
        self.mask = mask
        self.attention = mask

    def update(self, _attention: Any) -> Any:
        return self.mask
