"""How much fits in memory: images per batch for ``--batch-size auto``, images per VAE decode call, and what an
out-of-memory error looks like.

On a GPU the free memory is the device's (``free_device_memory``), and an out-of-memory error is an exception
the run catches (it halves the batch and tries again; a decode halves its chunk, engine/vae_codec.py). On a CPU
the kernel's out-of-memory killer ends the process instead, so the first guess must already fit. The CPU
estimate is of the activations a batch adds to the loaded model, per image:

    bytes = pixels x dtype bytes x (VAE_LIVE x c_vae + UNET_LIVE x rows x c_unet / s^2)

c_vae is the VAE decoder's widest full-resolution channel count (its first block), c_unet the UNet's
first block's channels on the latent grid (s = the VAE's downscale, 8), rows the UNet rows per image
(2 with guidance, 3 with dual-line). The decode at full resolution dominates. VAE_LIVE was measured on
the tiny presets (tiny-sd and tiny-sdxl at 1024x1024, float32, one thread: 350 and 270 MB more peak
resident memory per extra image, against 336 MB by the formula with 5 tensors live); UNET_LIVE is a
conservative guess (12 tensors). A batch may use half the memory the system reports available.
"""

from __future__ import annotations

from typing import Any

VAE_LIVE = 6  # full-resolution tensors of the widest channel count alive at once in a decode (measured ~5)
UNET_LIVE = 12
SHARE = 0.5  # of the available memory a batch may take: the estimate is rough, and a CPU OOM kills
CPU_MOST = 16  # beyond this a CPU gains nothing from batching, and waits longer for the first image
# Live memory of one image's VAE decode per megapixel of output, in a 2-byte dtype (bf16/fp16): about
# 6.4 GB for four SDXL 1024x1024 images in bf16 (issue 16's estimate). A float32 decode (the upcast VAE of
# fp16 runs) needs twice as much.
DECODE_BYTES_PER_MEGAPIXEL = 1.53e9
# Share of the free memory a batch or a decode chunk may plan to use: the rest absorbs fragmentation and
# the estimates' error.
MEMORY_HEADROOM = 0.8


def available_bytes() -> int | None:
    """Memory available to new allocations (Linux MemAvailable; elsewhere free pages), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import os

    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_image_bytes(pipe: Any, width: int, height: int, rows: int, dtype_bytes: int) -> float:
    """Estimated peak bytes one more image of ``width`` x ``height`` adds to a batch on the CPU."""
    vae_channels = int(pipe.vae.config.block_out_channels[0])
    scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    unet_channels = int(pipe.unet.config.block_out_channels[0])
    per_pixel = VAE_LIVE * vae_channels + UNET_LIVE * rows * unet_channels / scale**2
    return width * height * dtype_bytes * per_pixel


def cpu_batch_size(image_bytes: float, available: int | None) -> int:
    """Images per batch: as many as fit in ``SHARE`` of ``available``, 1 to ``CPU_MOST`` (4 when unknown)."""
    if available is None:
        return 4
    return max(1, min(CPU_MOST, int(available * SHARE // max(1.0, image_bytes))))


def decode_chunk_size(count: int, width: int, height: int, dtype_bytes: int, free_bytes: float) -> int:
    """Images per VAE decode call: as many as fit in ``free_bytes`` (at least 1, at most ``count``)."""
    per_image = DECODE_BYTES_PER_MEGAPIXEL * (width * height / 1e6) * dtype_bytes / 2
    return max(1, min(count, int(free_bytes * MEMORY_HEADROOM // per_image)))


def free_device_memory(device: Any) -> float:
    """Bytes a CUDA device can still give this process: free memory plus the allocator's reusable cache.

    ``torch.cuda.mem_get_info`` counts blocks the caching allocator holds but does not use as taken, so
    after the first batch it would report less room than there is.
    """
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


class DecodeChunkOutOfMemory(RuntimeError):
    """Out of memory decoding at the chunk the caller fixed (``VaeCodec.fixed_chunk``): a smaller chunk can move a
    decoded value by one 8-bit level, so the decode is not halved as a render's is; the caller says what to do."""

    def __init__(self, chunk: int) -> None:
        super().__init__(f"out of memory decoding {chunk} image{'s' if chunk != 1 else ''} per VAE call")
        self.chunk = chunk


def is_out_of_memory(exc: BaseException) -> bool:
    """An out-of-memory error the caller may back off from (a smaller batch, chunk or crop set); not
    ``DecodeChunkOutOfMemory``, whose chunk was asked for and must not be changed."""
    import torch

    if isinstance(exc, DecodeChunkOutOfMemory):
        return False
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
