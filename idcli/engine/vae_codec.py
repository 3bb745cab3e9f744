"""The VAE between pixels and latents: plate crops encoded to the latents they start from, and a batch's latents
decoded to images, in chunks that fit the device's free memory (or, for ``idcli reproduce``, in the chunk a take's
record names: ``fixed_chunk``).

Both scale as the pipeline does (SDXL's latents mean and standard deviation when its config has them, else
its scaling factor), so ``encode`` is the inverse of ``decode``'s scaling. The VAE runs in its own dtype: a
float16 run's VAE is float32 when its config asks for an upcast decode (the engine decides, engine/core.py).
"""

from __future__ import annotations

from typing import Any

from ..profile_ranges import VAE_DECODE, ranged
from .memory import DecodeChunkOutOfMemory, decode_chunk_size, free_device_memory, is_out_of_memory


class VaeCodec:
    """One loaded VAE on one device, in ``dtype``."""

    def __init__(self, vae: Any, device: Any, dtype: Any) -> None:
        self.vae = vae
        self.device = device
        self.dtype = dtype
        self.scale = 2 ** (len(vae.config.block_out_channels) - 1)  # pixels per latent, each side
        # Images per VAE decode call in the last decode (sized from free memory on a GPU, halved on out of
        # memory; the whole batch on a CPU): idcli bench reports it.
        self.last_chunk: int | None = None
        # Images per decode call asked for by the caller (``idcli reproduce``: the take's ``executor.decode_chunk``),
        # on any device, at most the batch; None: sized from the free memory as above.
        self.fixed_chunk: int | None = None

    def encode(self, images: list[Any]) -> Any:
        """Scaled latents of uint8 RGB images (plate crops): the VAE's latent mean, no sampling, so the same
        crop always gives the same latents; the inverse of ``decode``'s scaling."""
        import numpy as np
        import torch

        vae = self.vae
        cfg = vae.config
        # As diffusers' image processor normalises: [0, 255] -> [0, 1] -> [-1, 1].
        pixels = torch.from_numpy(np.stack(images).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        pixels = (2.0 * pixels - 1.0).to(self.device, self.dtype)
        if self.device.type == "cuda":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        latents = vae.encode(pixels).latent_dist.mean
        mean = getattr(cfg, "latents_mean", None)
        std = getattr(cfg, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, cfg.latent_channels, 1, 1)
            latents = (latents - torch.tensor(mean).view(shape).to(latents)) * cfg.scaling_factor \
                / torch.tensor(std).view(shape).to(latents)
        else:
            latents = latents * cfg.scaling_factor
        return latents.float()

    @ranged(VAE_DECODE)
    def decode(self, latents: Any) -> list[Any]:
        """Images (float32 arrays, height x width x 3, values in [0, 1]) of a batch's latents, in order."""
        import torch

        vae = self.vae
        cfg = vae.config
        latents = latents.to(self.dtype)
        mean = getattr(cfg, "latents_mean", None)
        std = getattr(cfg, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, cfg.latent_channels, 1, 1)
            mean_t = torch.tensor(mean).view(shape).to(latents)
            std_t = torch.tensor(std).view(shape).to(latents)
            latents = latents * std_t / cfg.scaling_factor + mean_t
        else:
            latents = latents / cfg.scaling_factor
        # Decoding is per image (group norms and attention never mix samples), so on a GPU it runs in
        # chunks sized from the free memory: a full-resolution decode of a large batch needs more memory than
        # its denoising. Out of memory halves the chunk and decodes again; the latents are never re-denoised.
        # Every image of a batch is decoded in calls of one chunk, the one its record names: a call of another size
        # can move a value by one 8-bit level, and idcli reproduce decodes in the recorded chunk. So out of memory
        # after some calls succeeded (free memory shrank mid-decode) decodes the batch again from its first image.
        chunk = len(latents)
        if self.fixed_chunk is not None:
            chunk = max(1, min(self.fixed_chunk, len(latents)))
        elif self.device.type == "cuda":
            height, width = latents.shape[2] * self.scale, latents.shape[3] * self.scale
            dtype_bytes = torch.finfo(self.dtype).bits // 8
            chunk = decode_chunk_size(len(latents), width, height, dtype_bytes, free_device_memory(self.device))
        out: list[Any] = []
        while len(out) < len(latents):
            start = len(out)
            try:
                images = vae.decode(latents[start:start + chunk], return_dict=False)[0]
            except Exception as exc:
                if self.fixed_chunk is not None and is_out_of_memory(exc):
                    raise DecodeChunkOutOfMemory(chunk) from exc
                if not is_out_of_memory(exc) or chunk == 1:
                    raise
                chunk = (chunk + 1) // 2
                out.clear()
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            self.last_chunk = chunk
            out.extend((images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy())
        return out
