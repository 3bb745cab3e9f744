"""The naive baseline: one stock diffusers pipeline call per job at batch 1, the way example scripts run.

The pipeline is diffusers' own ``StableDiffusionPipeline`` / ``StableDiffusionXLPipeline`` made from
the engine's components (same weights, same sampler), and the FaceID adapter is driven the way the
diffusers IP-Adapter FaceID example does it: ``ip_adapter_image_embeds=[cat(zeros, embedding)]`` with
``set_ip_adapter_scale(strength)``, through diffusers' stock ``IPAdapterAttnProcessor2_0`` (idcli's
per-row processors are swapped out for the run and back afterwards). Nothing of idcli's speed work
is left on: the UNet runs its own (uncompiled) forward and the weights are in the default memory
layout for the run. Each image is saved as a PNG, as a script would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..render_request import RenderRequest
from .measure import ForwardTime, ForwardTimers


@dataclass
class BaselineRun:
    pipeline: str  # the diffusers class
    identity: str  # "faceid" (ip_adapter_image_embeds) or "text-only"
    jobs: int
    seconds: float
    forwards: ForwardTime


def stock_pipeline(engine: Any, sampler: str) -> Any:
    """A stock diffusers pipeline over the engine's components, with a fresh scheduler for ``sampler``.

    A new pipeline object sharing the modules: the engine's own ``pipe`` (its scheduler included) is
    left as it was, so a session's shared engine can be compared with the stock pipeline safely.
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from ..engine.samplers import make_scheduler

    pipe = engine.pipe
    scheduler = make_scheduler(sampler, pipe.scheduler.config)
    parts = {name: getattr(pipe, name) for name in ("vae", "text_encoder", "tokenizer", "unet")}
    if engine.is_sdxl:
        stock = StableDiffusionXLPipeline(
            **parts, text_encoder_2=pipe.text_encoder_2, tokenizer_2=pipe.tokenizer_2, scheduler=scheduler,
            force_zeros_for_empty_prompt=pipe.config.force_zeros_for_empty_prompt, add_watermarker=False)
    else:
        stock = StableDiffusionPipeline(**parts, scheduler=scheduler, safety_checker=None,
                                        feature_extractor=None, requires_safety_checker=False)
    stock.set_progress_bar_config(disable=True)
    return stock


def stock_render(engine: Any, request: RenderRequest, *, stock: Any = None, steps: int | None = None,
                 output_type: str = "pil") -> Any:
    """``request`` rendered by one stock pipeline call at batch 1, the way example scripts call it: the
    image (PIL, or an HxWx3 float array in [0, 1] for ``output_type="np"``).

    ``stock`` reuses a pipeline from :func:`stock_pipeline` (by default one is made for the request's
    sampler); ``steps`` overrides the request's. With a FaceID engine the identity goes in as in
    diffusers' IP-Adapter FaceID example; keep :func:`stock_ip_processors` open around the call.
    """
    import numpy as np
    import torch

    stock = stock if stock is not None else stock_pipeline(engine, request.sampler)
    kwargs: dict[str, Any] = {
        "prompt": request.prompt, "negative_prompt": request.negative_prompt or None,
        "height": request.height, "width": request.width,
        "num_inference_steps": request.steps if steps is None else steps, "guidance_scale": request.guidance,
        "generator": torch.Generator(engine.device).manual_seed(request.seed), "output_type": output_type}
    if engine.faceid is not None:
        # (negative zeros, embedding) under guidance. A job without an identity still passes embeddings
        # (the loaded adapter expects them), at scale 0.
        known = request.identity_embedding is not None
        values = request.identity_embedding if known else np.zeros(512, np.float32)
        embedding = torch.from_numpy(np.asarray(values, np.float32)).view(1, 1, -1)
        embeds = torch.cat([torch.zeros_like(embedding), embedding]) if request.guidance > 1 else embedding
        kwargs["ip_adapter_image_embeds"] = [embeds.to(engine.device, engine.torch_dtype)]
        stock.set_ip_adapter_scale(float(request.identity_strength) if known else 0.0)
    return stock(**kwargs).images[0]


@contextmanager
def stock_ip_processors(unet: Any) -> Iterator[None]:
    """diffusers' own IP-Adapter attention processors, holding the loaded adapter's identity weights,
    in place of idcli's row-scaled ones while the context is open."""
    import torch
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
    from torch import nn

    from ..engine.faceid import RowScaledIPAdapterProcessor
    from ..engine.faceid_layout import FACEID_NUM_TOKENS

    saved = dict(unet.attn_processors)
    stock: dict[str, Any] = {}
    for name, proc in saved.items():
        if isinstance(proc, RowScaledIPAdapterProcessor) and proc.to_k_ip is not None:
            with torch.device("meta"):  # its own projections are replaced at once: do not allocate them
                new = IPAdapterAttnProcessor2_0(proc.hidden_size, proc.cross_attention_dim,
                                                num_tokens=(FACEID_NUM_TOKENS,), scale=1.0)
            new.to_k_ip = nn.ModuleList([proc.to_k_ip])
            new.to_v_ip = nn.ModuleList([proc.to_v_ip])
            stock[name] = new
        else:
            stock[name] = proc
    unet.set_attn_processor(stock)
    try:
        yield
    finally:
        unet.set_attn_processor(dict(saved))  # set_attn_processor empties the dict it is given


@contextmanager
def default_layout(*modules: Any) -> Iterator[None]:
    """Weights in PyTorch's default (NCHW) layout while the context is open, as ``from_pretrained``
    gives them to a script; modules the engine put in channels-last get it back afterwards."""
    import torch

    changed = [m for m in modules if _channels_last(m)]
    for module in changed:
        module.to(memory_format=torch.contiguous_format)
    try:
        yield
    finally:
        for module in changed:
            module.to(memory_format=torch.channels_last)


def _channels_last(module: Any) -> bool:
    import torch

    for param in module.parameters():
        if param.ndim == 4 and param.shape[1] > 1 and param.shape[2] * param.shape[3] > 1:
            return param.is_contiguous(memory_format=torch.channels_last) and not param.is_contiguous()
    return False


@contextmanager
def stock_vae_dtype(engine: Any) -> Iterator[None]:
    """The VAE in the pipeline's dtype while the context is open, as ``from_pretrained(torch_dtype=...)`` gives
    it to a script. The engine keeps a float16 run's VAE in float32 (``force_upcast``); the stock pipelines
    expect it in float16 (SDXL's upcasts it for the decode itself and casts it back afterwards, SD1.5's
    decodes in float16) and would otherwise hand float16 latents to float32 weights. Put back afterwards."""
    vae = engine.pipe.vae
    if engine.vae_dtype == engine.torch_dtype:
        yield
        return
    vae.to(dtype=engine.torch_dtype)
    try:
        yield
    finally:
        vae.to(dtype=engine.vae_dtype)


@contextmanager
def plain_forward(module: Any) -> Iterator[None]:
    """The module's own ``forward`` while the context is open, not the engine's ``torch.compile``'d one:
    example scripts do not compile."""
    own = module.__dict__.pop("forward", None)
    try:
        yield
    finally:
        if own is not None:
            module.forward = own


def run_baseline(engine: Any, requests: list[RenderRequest], out_dir: Path, sync: Callable[[], None],
                 warmup: bool = True) -> BaselineRun:
    """Render ``requests`` one stock pipeline call each and save the PNGs into ``out_dir``; timed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stock = stock_pipeline(engine, requests[0].sampler)
    faceid = engine.faceid is not None
    unet = engine.pipe.unet
    # No inference_mode here: the stock pipelines' __call__ runs under torch.no_grad() by themselves.
    with plain_forward(unet), default_layout(unet, engine.pipe.vae), stock_vae_dtype(engine), \
            stock_ip_processors(unet) if faceid else nullcontext(), ForwardTimers(engine.pipe, sync) as timers:
        if warmup:  # one short call: first-call costs (kernel selection, allocator growth) are not the baseline's
            stock_render(engine, requests[0], stock=stock, steps=1)
        timers.reset()
        sync()
        start = time.perf_counter()
        for index, request in enumerate(requests):
            stock_render(engine, request, stock=stock).save(out_dir / f"{index:05d}.png")
        sync()
        seconds = time.perf_counter() - start
    return BaselineRun(type(stock).__name__, "faceid" if faceid else "text-only", len(requests), seconds, timers.time)
