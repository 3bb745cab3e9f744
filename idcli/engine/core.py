"""The generation engine: batches of jobs in, images and per-job facts out. No file I/O.

The denoising loop is written out here over the pipeline's own components (text encoders, UNet,
scheduler, VAE) instead of calling ``pipeline.__call__``, for two reasons: every sample gets its own
initial noise from its own seed (so batch composition never changes an image), and later methods
(dual-line fusion) need to act between the noise prediction and the scheduler step. A test checks
that this loop reproduces the stock pipeline's image for the same seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..models import ModelIdentity
from ..plan import RenderRequest
from ..runtime import Runtime


@dataclass
class RenderResult:
    image: Any  # numpy float32 array, height x width x 3, values in [0, 1]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def pixels(self) -> Any:
        """The 8-bit image, rounded as diffusers' image processor rounds."""
        return (self.image * 255).round().astype("uint8")


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Engine:
    """Loads a model once and renders batches of requests on one device."""

    def __init__(self, identity: ModelIdentity, runtime: Runtime, adapter: Any = None) -> None:
        import torch

        from .build import build_pipeline

        self.identity = identity
        self.runtime = runtime
        self.torch_dtype = getattr(torch, runtime.dtype)
        self.device = torch.device(runtime.device)
        pipe = build_pipeline(identity, self.torch_dtype)
        pipe.to(self.device)
        if identity.source == "builtin" and self.torch_dtype != torch.float32:
            pipe.to(dtype=self.torch_dtype)  # loaded pipelines already got torch_dtype
        pipe.set_progress_bar_config(disable=True)
        # float16 SDXL VAEs overflow; the published configs ask for a float32 decode.
        self.vae_dtype = self.torch_dtype
        if self.torch_dtype == torch.float16 and getattr(pipe.vae.config, "force_upcast", False):
            pipe.vae.to(dtype=torch.float32)
            self.vae_dtype = torch.float32
        self.pipe = pipe
        self.faceid: Any = None  # FaceIDState once an identity adapter is loaded
        self.adapter_record: dict[str, Any] | None = None
        if adapter is not None:
            self._load_adapter(adapter)
        self.is_sdxl = identity.architecture == "sdxl"
        self.latent_channels = pipe.unet.config.in_channels
        self.vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)

    # -- public ---------------------------------------------------------------------------------

    def render(self, requests: list[RenderRequest]) -> list[RenderResult]:
        """Render one batch; requests must share ``batch_signature``."""
        import torch

        if not requests:
            return []
        signature = requests[0].batch_signature()
        if any(r.batch_signature() != signature for r in requests):
            raise ValueError("a batch must share size, steps, guidance and sampler")
        started = time.perf_counter()
        with torch.inference_mode():
            latents = self._denoise(requests)
            pixels = self._decode(latents)
        seconds = time.perf_counter() - started
        return [RenderResult(p, {"batch_seconds": seconds}) for p in pixels]

    def suggest_batch_size(self, request: RenderRequest) -> int:
        """A first batch size for ``--batch-size auto``; out-of-memory errors halve it."""
        import torch

        if self.device.type != "cuda":
            return 4  # the CPU gains little from larger batches and pays in memory
        free, _total = torch.cuda.mem_get_info(self.device)
        # Activation memory grows with pixels; ~0.45 GB per megapixel per image (bf16, CFG, SDPA).
        per_image = 0.45e9 * (request.width * request.height) / 1e6 * (2 if request.guidance > 1 else 1)
        return max(1, min(64, int(free * 0.8 // per_image)))

    def _load_adapter(self, adapter: Any) -> None:
        """IP-Adapter FaceID through diffusers' own load_ip_adapter, then our per-row processors."""
        from ..adapters import RANDOM_ADAPTER_SEED
        from ..hashing import sha256_file
        from ..paths import state_dir
        from .faceid import load_faceid_adapter, write_random_faceid_adapter

        if adapter.source == "builtin":
            # The tiny presets' adapter: random weights in the published layout, written once to the
            # state folder and loaded through the same path as a downloaded one.
            folder = state_dir() / "adapters" / self.identity.preset
            weight = folder / adapter.weight_name
            if not weight.is_file():
                write_random_faceid_adapter(self.pipe.unet, weight, seed=RANDOM_ADAPTER_SEED)
            state = load_faceid_adapter(self.pipe, str(folder), adapter.weight_name)
            file_hash = sha256_file(weight)
        else:
            extra = {"revision": adapter.revision} if adapter.source == "hub" and adapter.revision else {}
            state = load_faceid_adapter(self.pipe, adapter.id, adapter.weight_name, adapter.subfolder,
                                        allow_pickle=adapter.allow_pickle, **extra)
            file_hash = adapter.content_hash
        self.pipe.unet.to(self.device, self.torch_dtype)
        self.faceid = state
        self.adapter_record = {**adapter.record(), "weight_sha256": file_hash}

    # -- steps ----------------------------------------------------------------------------------

    def _initial_noise(self, requests: list[RenderRequest]) -> Any:
        import torch

        r0 = requests[0]
        shape = (1, self.latent_channels, r0.height // self.vae_scale, r0.width // self.vae_scale)
        # One CPU generator per job, drawn in float32: the same seed gives the same noise on every
        # device and in every batch.
        noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(r.seed), dtype=torch.float32)
                 for r in requests]
        return torch.cat(noise).to(self.device, self.torch_dtype)

    def _encode_text(self, texts: list[str]) -> tuple[Any, Any]:
        """Embeddings (and SDXL pooled embeddings) for each text, each row independent of the others."""
        pipe = self.pipe
        if self.is_sdxl:
            embeds, _, pooled, _ = pipe.encode_prompt(
                prompt=texts, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False)
            if pipe.config.force_zeros_for_empty_prompt:
                # The stock SDXL pipeline uses zeros, not the encoding of "", for an empty negative prompt.
                empty = [i for i, t in enumerate(texts) if t == ""]
                if empty:
                    embeds[empty] = 0
                    pooled[empty] = 0
            return embeds, pooled
        embeds, _ = pipe.encode_prompt(texts, self.device, 1, False)
        return embeds, None

    def _denoise(self, requests: list[RenderRequest]) -> Any:
        import torch

        from .samplers import make_scheduler

        r0 = requests[0]
        n = len(requests)
        cfg = r0.guidance > 1.0
        texts = [r.prompt for r in requests]
        negatives = [r.negative_prompt for r in requests]
        # Unconditional rows first, as the stock pipelines order them.
        embeds, pooled = self._encode_text((negatives + texts) if cfg else texts)
        embeds = embeds.to(self.torch_dtype)
        added: dict[str, Any] | None = None
        if self.is_sdxl:
            time_ids = torch.tensor([[r0.height, r0.width, 0, 0, r0.height, r0.width]], device=self.device,
                                    dtype=self.torch_dtype).repeat(embeds.shape[0], 1)
            added = {"text_embeds": pooled.to(self.torch_dtype), "time_ids": time_ids}

        if self.faceid is not None:
            added = self._identity_kwargs(requests, cfg, added)

        scheduler = make_scheduler(r0.sampler, self.pipe.scheduler.config)
        scheduler.set_timesteps(r0.steps, device=self.device)
        latents = self._initial_noise(requests) * scheduler.init_noise_sigma
        unet = self.pipe.unet
        for t in scheduler.timesteps:
            model_in = torch.cat([latents, latents]) if cfg else latents
            model_in = scheduler.scale_model_input(model_in, t)
            eps = unet(model_in, t, encoder_hidden_states=embeds, added_cond_kwargs=added,
                       return_dict=False)[0]
            if cfg:
                eps_uncond, eps_text = eps[:n], eps[n:]
                eps = eps_uncond + r0.guidance * (eps_text - eps_uncond)
            latents = scheduler.step(eps, t, latents, return_dict=False)[0]
        return latents

    def _identity_kwargs(self, requests: list[RenderRequest], cfg: bool, added: dict[str, Any] | None
                         ) -> dict[str, Any]:
        """One identity embedding and one strength per UNet row, never shared across the batch.

        Unconditional rows get a zero embedding at the row's strength, as the stock FaceID pipeline
        does; rows of jobs without an identity get strength 0, which is exactly text-only.
        """
        import numpy as np
        import torch

        from .faceid import faceid_unet_kwargs

        zeros = np.zeros(512, dtype=np.float32)
        cond = [r.identity_embedding if r.identity_embedding is not None else zeros for r in requests]
        strength = [float(r.identity_strength) if r.identity_embedding is not None else 0.0 for r in requests]
        rows = ([zeros] * len(requests) + cond) if cfg else cond
        scales = (strength + strength) if cfg else strength
        self.faceid.row_scale = torch.tensor(scales, dtype=torch.float32).view(-1, 1, 1)
        embeds = torch.from_numpy(np.stack(rows).astype(np.float32))
        return faceid_unet_kwargs(embeds, added, dtype=self.torch_dtype, device=self.device)["added_cond_kwargs"]

    def _decode(self, latents: Any) -> list[Any]:
        import torch

        vae = self.pipe.vae
        cfg = vae.config
        latents = latents.to(self.vae_dtype)
        mean = getattr(cfg, "latents_mean", None)
        std = getattr(cfg, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, cfg.latent_channels, 1, 1)
            mean_t = torch.tensor(mean).view(shape).to(latents)
            std_t = torch.tensor(std).view(shape).to(latents)
            latents = latents * std_t / cfg.scaling_factor + mean_t
        else:
            latents = latents / cfg.scaling_factor
        images = vae.decode(latents, return_dict=False)[0]
        images = (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        return list(images)
