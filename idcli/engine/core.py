"""The generation engine: batches of jobs in, images and per-job facts out. No file I/O.

The denoising loop is written out here over the pipeline's own components (text encoders, UNet,
scheduler, VAE) instead of calling ``pipeline.__call__``, for two reasons: every sample gets its own
initial noise from its own seed (so batch composition never changes an image), and later methods
(dual-line fusion) need to act between the noise prediction and the scheduler step. A test checks
that this loop reproduces the stock pipeline's image for the same seed.

The Engine holds two helpers of its own: ``text`` (engine/text_encoding.py), the prompts' embeddings for the
rows, and ``codec`` (engine/vae_codec.py), plate crops' latents and the decode. How much fits in memory is
engine/memory.py's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..library_quiet import quiet_model_libraries
from ..method import FusionParams
from ..models import ModelIdentity
from ..profile_ranges import FUSION, UNET, phase, ranged
from ..render_request import RenderRequest
from ..runtime import Runtime
from ..torch_defaults import torch_defaults
from .memory import MEMORY_HEADROOM, free_device_memory, is_out_of_memory
from .text_encoding import TextEncoding
from .vae_codec import VaeCodec


@dataclass
class RenderResult:
    image: Any  # numpy float32 array, height x width x 3, values in [0, 1]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def pixels(self) -> Any:
        """The 8-bit image, rounded as diffusers' image processor rounds."""
        return (self.image * 255).round().astype("uint8")


class Engine:
    """Loads a model once and renders batches of requests on one device."""

    @quiet_model_libraries()  # the adapter's loading too, which imports transformers' image processors
    @torch_defaults  # float32 and the CPU, whatever the host set (torch_defaults.py)
    def __init__(self, identity: ModelIdentity, runtime: Runtime, adapter: Any = None) -> None:
        import torch

        from .build import build_pipeline

        self.identity = identity
        self.runtime = runtime
        self.torch_dtype = getattr(torch, runtime.dtype)
        self.device = torch.device(runtime.device)
        pipe = build_pipeline(identity, self.torch_dtype, self.device)
        pipe.to(self.device)
        if identity.source == "builtin" and self.torch_dtype != torch.float32:
            pipe.to(dtype=self.torch_dtype)  # loaded pipelines already got torch_dtype
        pipe.set_progress_bar_config(disable=True)
        # float16 SDXL VAEs overflow; the published configs ask for a float32 decode.
        self.vae_dtype = self.torch_dtype
        if self.torch_dtype == torch.float16 and getattr(pipe.vae.config, "force_upcast", False):
            pipe.vae.to(dtype=torch.float32)
            self.vae_dtype = torch.float32
        if self.device.type == "cuda":
            # NHWC lets cuDNN pick tensor-core convolution kernels without layout transposes.
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        self.pipe = pipe
        self.codec = VaeCodec(pipe.vae, self.device, self.vae_dtype)  # pixels <-> latents
        self.faceid: Any = None  # FaceIDState once an identity adapter is loaded
        self.plus: Any = None  # FaceID-Plus v2's projection (engine/faceid_plus.py): its CLIP rows are set per forward
        self.adapter_record: dict[str, Any] | None = None
        if adapter is not None:
            self._load_adapter(adapter)
        # What loading the adapter found to say (a pickle without its LoRA): handed to the run with the first batch.
        self.adapter_note: str | None = self.faceid.load_note if self.faceid is not None else None
        self.is_sdxl = identity.architecture == "sdxl"
        self.text = TextEncoding(pipe, self.device, self.torch_dtype, self.is_sdxl)  # prompts -> embeddings
        from .fusion import mark_attention_levels, probe_levels

        self.probe_levels = probe_levels(pipe.unet.config)
        mark_attention_levels(pipe.unet)
        # After the adapter: its processors are part of the compiled graph, one graph for every kind of
        # batch (engine/compiled.py). Its ``fallback`` says why, once torch gives up and it runs uncompiled.
        self.compiled: Any = None
        if runtime.compile:
            from .compiled import compile_unet

            self.compiled = compile_unet(pipe.unet)
        # Tests only: a function (evaluation index, request) -> mask replacing the computed fusion masks,
        # either one value for every character's line or a mapping character name -> value (others 0).
        self.mask_override: Any = None
        # Called after each model evaluation of a batch with (evaluations done, evaluations in all); set by
        # the run when its progress display wants step progress.
        self.on_step: Any = None
        self.latent_channels = pipe.unet.config.in_channels
        self.vae_scale = self.codec.scale

    # -- public ---------------------------------------------------------------------------------

    @property
    def last_decode_chunk(self) -> int | None:
        """Images per VAE decode call in the last decode (engine/vae_codec.py): idcli bench reports it."""
        return self.codec.last_chunk

    @contextlib.contextmanager
    def fixed_decode_chunk(self, chunk: int | None) -> Iterator[None]:
        """While the block runs, the VAE decodes ``chunk`` images (plate crops) per call, at most the batch, on any
        device, and out of memory at it raises ``DecodeChunkOutOfMemory`` (engine/vae_codec.py) instead of halving
        it: ``idcli reproduce`` decodes a take as its record says (None: as the device allows, as a render does)."""
        before = self.codec.fixed_chunk
        self.codec.fixed_chunk = chunk
        try:
            yield
        finally:
            self.codec.fixed_chunk = before

    @quiet_model_libraries()  # on every call: an engine kept between renders is quiet on each
    @torch_defaults
    def render(self, requests: list[RenderRequest], capture_masks: bool = False) -> list[RenderResult]:
        """Render one batch; requests must share ``batch_signature``.

        Each result's facts hold, for dual-line jobs, ``fusion`` (window, subject tokens, final mask
        coverage, in total and per character) and with ``capture_masks`` also ``mask_frames``: the
        mask (the sum of the characters'), each character's mask and a decoded preview at up to eight
        evaluations, for ``--save-masks``. A plate job (``request.plate``) runs each of its faces as one crop
        of the batch (engine/plate_render.py); its image has the plate's size, its facts hold ``plate``
        (per face its character, box, crop box and mask coverage; the start step and strength) and with
        ``capture_masks`` ``plate_mask``, the union of its face masks over the plate (float32, h x w). Every
        result's facts hold ``decode_chunk``: images (plate crops) per VAE decode call in its forward's decode.
        """
        import torch

        if not requests:
            return []
        signature = _without_plate(requests[0]).batch_signature()
        if any(_without_plate(r).batch_signature() != signature for r in requests):
            raise ValueError("a batch must share size, steps, guidance and sampler")
        windows = [self.text.request_windows(r) for r in requests]
        parts = [(r.batch_signature(), w) for r, w in zip(requests, windows, strict=True)]
        if len(set(parts)) > 1:
            # Rows of one forward share a sequence length, and filling a row up with empty windows would
            # change its image: jobs of different window counts (plans keep them apart; requests made by
            # hand may not) run as separate forwards. So do plate crops and text-to-image jobs, and crops
            # starting at different steps (the plan groups them apart too). ``batch_members`` says which ran
            # together.
            results: list[Any] = [None] * len(requests)
            for part in dict.fromkeys(parts):
                members = [i for i, p in enumerate(parts) if p == part]
                for i, result in zip(members, self.render([requests[i] for i in members], capture_masks),
                                     strict=True):
                    result.facts["batch_members"] = [members[j] for j in result.facts["batch_members"]]
                    results[i] = result
            return results
        started = time.perf_counter()
        compiled_before = self.compiled is not None and self.compiled.fallback is None
        with torch.inference_mode(), self._step_reports(requests[0]):
            plates = None
            if requests[0].plate is not None:
                from .plate_render import PlateBatch

                plates = PlateBatch.prepare(requests, self.codec.encode, self.latent_channels, self.vae_scale,
                                            self.device, self.torch_dtype)
                pixels = self._render_crops(plates, windows[0])
                facts: list[dict[str, Any]] = []
            else:
                with self._batch_state():
                    latents, facts = self._denoise(requests, capture=capture_masks)
                pixels = self.codec.decode(latents)
            # Images (plate crops) per VAE decode call, before the previews' decodes below: on a GPU it follows the
            # free memory, and a chunk of another size can move a decoded value by one 8-bit level (docs/provenance.md).
            decode_chunk = self.codec.last_chunk
            for fact in facts:
                frames = fact.pop("fusion_frames", None)
                if frames:
                    # Previews decode one frame at a time: they are for review, and rare.
                    fact["mask_frames"] = [
                        {"step": f["step"], "fused": f["fused"], "mask": f["mask"].numpy(),
                         "masks": [m.numpy() for m in f["masks"]], "names": f["names"],
                         "preview": self.codec.decode(f["x0"])[0]} for f in frames]
        if plates is not None:
            # Each plate's decoded crops composited into the plate's own pixels: one image per plate job.
            pixels, facts = (list(part) for part in zip(*plates.reassemble(pixels, capture_masks), strict=True))
        seconds = time.perf_counter() - started
        if compiled_before and self.compiled.fallback is not None:
            # --compile gave up during this batch: said once, by the executor that ran it (a run warning).
            facts[0]["compile_fallback"] = self.compiled.fallback
        if self.adapter_note is not None:
            # The first batch carries it (a run warning), said once by the executor that ran it, as the fallback is.
            facts[0]["adapter_note"], self.adapter_note = self.adapter_note, None
        members = list(range(len(requests)))  # indices into ``requests`` of the jobs in this forward
        return [RenderResult(p, {"batch_seconds": seconds, "batch_members": members, "decode_chunk": decode_chunk,
                                 **fact})
                for p, fact in zip(pixels, facts, strict=True)]

    def _render_crops(self, plates: Any, text_windows: int) -> list[Any]:
        """The decoded crops of a plate batch (engine/plate_render.py), in unit order.

        Out of memory with one plate job in the batch (the run halves batches of several jobs itself) runs
        its crops in halves, down to one crop: every crop is worked on its own, so the halves give the
        same images, and the back-off counts crops, not jobs.
        """
        import torch

        try:
            with self._batch_state():
                latents, _facts = self._denoise(plates.unit_requests, plates=plates, text_windows=text_windows)
            return self.codec.decode(latents)
        except Exception as exc:
            if not is_out_of_memory(exc) or len(plates.requests) > 1 or len(plates.units) == 1:
                raise
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        half = (len(plates.units) + 1) // 2
        return [*self._render_crops(plates.subset(range(half)), text_windows),
                *self._render_crops(plates.subset(range(half, len(plates.units))), text_windows)]

    @contextlib.contextmanager
    def _step_reports(self, request: RenderRequest) -> Iterator[None]:
        """Calls ``on_step`` after each UNet forward (one per model evaluation) while the block runs."""
        if self.on_step is None:
            yield
            return
        from .samplers import make_scheduler

        scheduler = make_scheduler(request.sampler, self.pipe.scheduler.config)
        scheduler.set_timesteps(request.steps)
        total = len(scheduler.timesteps)
        if request.plate is not None:  # plate crops run the end of the schedule only
            from .plates import start_index

            total -= start_index(request.steps, request.plate.strength) * scheduler.order
        done = 0
        report = self.on_step

        def counted(*_args: Any) -> None:
            nonlocal done
            done = min(total, done + 1)
            report(done, total)

        hook = self.pipe.unet.register_forward_hook(counted)
        try:
            yield
        finally:
            hook.remove()

    def suggest_batch_size(self, request: RenderRequest) -> int:
        """A first batch size for ``--batch-size auto``; out-of-memory errors halve it (on a GPU)."""
        import torch

        from .rows import rows_per_evaluation

        # Rows per image: 2 with CFG, plus dual-line's identity rows, one per character (engine/rows.py). A
        # plate job is one crop per face at the working size (each with CFG's rows, one identity line and
        # its own decode): its cost is its crops'.
        rows = rows_per_evaluation(request)
        crops = 1
        if request.plate is not None:
            from .plate_render import crops_in

            crops = crops_in(request)
            rows = (2 if request.guidance > 1.0 else 1) + 1
        if self.device.type != "cuda":
            # A CPU out of memory is killed, not told: the estimate must fit at the first try (memory.py).
            from .memory import available_bytes, cpu_batch_size, cpu_image_bytes

            per_cpu_image = crops * cpu_image_bytes(self.pipe, request.width, request.height, rows,
                                                    torch.finfo(self.torch_dtype).bits // 8)
            return cpu_batch_size(per_cpu_image, available_bytes())
        free = free_device_memory(self.device)
        # Activation memory grows with pixels; ~0.45 GB per megapixel per UNet row (bf16, SDPA).
        per_image = 0.45e9 * (request.width * request.height) / 1e6 * rows * crops
        return max(1, min(64, int(free * MEMORY_HEADROOM // per_image)))

    @contextlib.contextmanager
    def _batch_state(self) -> Iterator[None]:
        """Leave the FaceID processors as they were, whatever way a batch ends.

        The attention probe and the rows' strengths are set on the shared processor state during a batch;
        a forward that raises (out of memory, above all, which the run retries at half the batch) must not
        leave them attached to the next batch, whose rows are others.
        """
        state = self.faceid
        saved = None if state is None else state.row_scale
        try:
            yield
        finally:
            if state is not None:
                state.probe = None
                state.row_scale = saved

    def _load_adapter(self, adapter: Any) -> None:
        """IP-Adapter FaceID through diffusers' own load_ip_adapter, then our per-row processors."""
        from ..adapters import RANDOM_ADAPTER_SEED
        from ..hashing import sha256_file_cached
        from ..paths import state_dir
        from .faceid_layout import write_random_faceid_adapter
        from .faceid_loading import load_faceid_adapter

        if getattr(adapter, "is_plus", False):
            self._load_plus_adapter(adapter)
            return
        if adapter.source == "builtin":
            # The tiny presets' adapter: random weights in the published layout, written once to the
            # state folder and loaded through the same path as a downloaded one.
            folder = state_dir() / "adapters" / self.identity.preset
            weight = folder / adapter.weight_name
            if not weight.is_file():
                write_random_faceid_adapter(self.pipe.unet, weight, seed=RANDOM_ADAPTER_SEED)
            state = load_faceid_adapter(self.pipe, str(folder), adapter.weight_name)
            file_hash: str | None = sha256_file_cached(weight)  # bench-sdxl's is 1.4 GB: hashed once, not per start
        else:
            extra = {"revision": adapter.revision} if adapter.source == "hub" and adapter.revision else {}
            state = load_faceid_adapter(self.pipe, adapter.id, adapter.weight_name, adapter.subfolder,
                                        allow_pickle=adapter.allow_pickle, **extra)
            from ..adapters import resolved_weight_sha256

            file_hash = resolved_weight_sha256(adapter)  # a hub file is hashed once resolved
        self.pipe.unet.to(self.device, self.torch_dtype)
        state.place(self.device, self.torch_dtype)  # the rows' strengths are made there, before each forward
        self.faceid = state
        self.adapter_record = {**adapter.record(), "weight_sha256": file_hash}

    def _load_plus_adapter(self, adapter: Any) -> None:
        """FaceID-Plus v2 (engine/faceid_plus.py): the same per-row processors and LoRA, its own projection.
        The random-weight presets' adapter and image encoder are written once to the state folder."""
        from ..adapters import RANDOM_ADAPTER_SEED, resolved_weight_sha256
        from ..hashing import sha256_file_cached
        from ..paths import state_dir
        from ..presets import RANDOM_IMAGE_ENCODERS
        from .faceid_plus import (
            check_encoder_width,
            load_plusv2_adapter,
            random_image_encoder_folder,
            write_random_plusv2_adapter,
        )

        if adapter.source == "builtin":
            folder = state_dir() / "adapters" / self.identity.preset
            weight = folder / adapter.weight_name
            if not weight.is_file():
                hidden = RANDOM_IMAGE_ENCODERS[self.identity.preset]["hidden_size"]
                write_random_plusv2_adapter(self.pipe.unet, weight, hidden, seed=RANDOM_ADAPTER_SEED)
            random_image_encoder_folder(adapter)  # beside it, so the folder loads as diffusers' stock layout
            state, projection = load_plusv2_adapter(self.pipe, str(folder), adapter.weight_name,
                                                    shortcut_scale=adapter.shortcut_scale)
            file_hash: str | None = sha256_file_cached(weight)
        else:
            extra = {"revision": adapter.revision} if adapter.source == "hub" and adapter.revision else {}
            state, projection = load_plusv2_adapter(self.pipe, adapter.id, adapter.weight_name, adapter.subfolder,
                                                    allow_pickle=adapter.allow_pickle,
                                                    shortcut_scale=adapter.shortcut_scale, **extra)
            check_encoder_width(projection, adapter.image_encoder, adapter.weight_name)  # before any job fails on it
            file_hash = resolved_weight_sha256(adapter)
        self.pipe.unet.to(self.device, self.torch_dtype)
        state.place(self.device, self.torch_dtype)  # the rows' strengths are made there, before each forward
        self.faceid, self.plus = state, projection
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

    def _denoise(self, requests: list[RenderRequest], capture: bool = False, plates: Any = None,
                 text_windows: int = 1) -> tuple[Any, list[dict[str, Any]]]:
        """The latents of a batch, and per job what fusion did (masks and previews when ``capture``).

        The rows of each evaluation (engine/rows.py): the unconditional rows (CFG), one conditional row
        per job (the single-line prompt with the identity, the text-only prompt, or dual-line's semantic
        line without it), then one identity-line row per character of each dual-line job whose fusion
        window is open, all in one UNet forward.

        ``plates`` (engine/plate_render.PlateBatch): the jobs are plate crops, one per face, each a
        one-character dual-line job; they start part-way through the schedule from the plate's latents, fuse
        inside their fixed face masks at every step, and keep the plate's latents outside them. Their rows'
        texts are encoded in at least ``text_windows`` CLIP windows (their whole plate job's count).
        """
        import torch

        from .fusion import AttentionProbe, FusionMask, fuse, preview_frames
        from .plate_render import FixedMask
        from .rows import RowLayout
        from .samplers import make_scheduler

        # 1. Rows: every row this batch can use, and their prompts, identities and strengths.
        r0 = requests[0]
        n = len(requests)
        cfg = r0.guidance > 1.0
        layout = RowLayout(requests, cfg, self.faceid is not None)
        dual, entries, base = layout.dual, layout.entries, layout.base
        embeds, pooled = self.text.encode_unique(layout.texts, text_windows if plates is not None else 1)
        added_all: dict[str, Any] = {}
        if self.is_sdxl:
            added_all["text_embeds"] = pooled.to(self.torch_dtype)
            added_all["time_ids"] = torch.tensor([[r0.height, r0.width, 0, 0, r0.height, r0.width]],
                                                 device=self.device, dtype=self.torch_dtype).repeat(len(embeds), 1)
        scales = clip = None
        if self.faceid is not None:
            identities, scales = layout.identity_inputs()
            added_all["image_embeds"] = identities.to(self.device, self.torch_dtype)
        if self.plus is not None:
            # FaceID-Plus v2: each row's CLIP face features beside its embedding (zeros at strength 0).
            from .faceid_plus import clip_tokens, clip_width

            clip = layout.clip_inputs(clip_tokens(requests), clip_width(self.plus)).to(self.device, self.torch_dtype)

        # 2. Schedule and initial latents: noise from one generator per job; plate crops run the end of
        #    the schedule from their plate's latents noised to where it starts.
        scheduler = make_scheduler(r0.sampler, self.pipe.scheduler.config)
        scheduler.set_timesteps(r0.steps, device=self.device)
        if plates is None:
            loop_timesteps = scheduler.timesteps
            latents = self._initial_noise(requests) * scheduler.init_noise_sigma
        else:
            loop_timesteps = plates.begin(scheduler)
            latents = plates.start_latents()
        latent_hw = (latents.shape[2], latents.shape[3])
        evaluations = len(loop_timesteps)

        # 3. Fusion state: each job's window, one mask per identity line, and the attention probe on
        #    the semantic rows (one probe entry per line: that character's tokens). A plate crop fuses
        #    over its whole schedule inside its face mask, which no attention changes.
        masks: list[Any]  # a FusionMask per line, or a plate crop's FixedMask
        if plates is None:
            windows = {i: _fusion_of(requests[i]).window(evaluations) for i in dual}
            masks = [FusionMask(_fusion_of(requests[e.job]), latent_hw) for e in entries]
        else:
            windows = {i: (0, evaluations) for i in dual}
            face_masks = plates.fusion_masks()
            masks = [FixedMask(face_masks[e.job]) for e in entries]
        final: list[Any] = [m.mask for m in masks]  # each line's mask after exclusivity
        token_weights = self.text.subject_token_weights(layout.probe_views(), embeds.shape[1])
        frames = set(preview_frames(evaluations)) if capture and dual and plates is None else set()
        captured: dict[int, list[dict[str, Any]]] = {i: [] for i in dual}
        unet = self.pipe.unet
        probe: Any = None  # an AttentionProbe while some fusion window needs masks (probing below)
        if dual and plates is None:
            probe = AttentionProbe(layout.probe_rows(), token_weights, latent_hw, self.probe_levels)
        # After the last fusion window closes no mask is used again: the probe stops there.
        probe_until = max((end for _start, end in windows.values()), default=0)
        # The rows' inputs for each set of open windows the loop meets, built here: inside the loop nothing
        # is copied from the host or read back from the device.
        schedule = [tuple(i for i in dual if windows[i][0] <= step < windows[i][1]) for step in range(evaluations)]
        selections = layout.selections(schedule, embeds, added_all, scales, clip)
        # Each selection's strengths made on the device now, so that switching rows in the loop only assigns.
        prepared = ({key: self.faceid.prepare(sel.row_scale) for key, sel in selections.items()}
                    if self.faceid is not None else {})
        timesteps = [float(t) for t in loop_timesteps.cpu()]  # previews' x0 estimates, read once
        selected: Any = None  # the RowSelection of the windows open at this step (set at step 0)

        # 4. Denoising loop.
        for step, t in enumerate(loop_timesteps):
            # 4a. The rows of this evaluation: identity lines only for jobs inside their window.
            active = list(schedule[step])
            if selections[schedule[step]] is not selected:
                selected = selections[schedule[step]]
                if self.faceid is not None:
                    self.faceid.use(prepared[schedule[step]])
                if self.plus is not None:
                    self.plus.clip_embeds = selected.clip
            row_embeds, added, positions = selected.embeds, selected.added, selected.positions
            probing = probe is not None and step < probe_until
            if probing:
                probe.reset()
                self.faceid.probe = probe
            # 4b. One forward for every row; each line's latent is its job's.
            parts = [latents, latents] if cfg else [latents]
            if active:
                parts.append(latents.index_select(0, selected.line_index))
            model_in = scheduler.scale_model_input(torch.cat(parts), t)
            with phase(UNET):
                eps = unet(model_in, t, encoder_hidden_states=row_embeds, added_cond_kwargs=added,
                           return_dict=False)[0]
            uncond: Any = eps[:n] if cfg else None  # read only with CFG
            cond = eps[base - n:base]
            guided = uncond + r0.guidance * (cond - uncond) if cfg else cond
            # 4c. Fusion: each line's mask from the semantic line's attention (a plate crop's: its face
            #     mask), made exclusive, then eps = eps_sem + sum_c M_c (eps_id,c - eps_sem) inside the window.
            if dual:
                maps = probe.maps() if probing else None
                self.faceid.probe = None
                fused = list(guided.unbind(0))
                for i in dual:
                    own = layout.entries_of(i)
                    # A job's masks stop with its own window, as when it renders alone: the probe runs on while a
                    # batch-mate's window is open, and folding that in changed its recorded masks with its batch.
                    seen = maps if step < windows[i][1] else None
                    current = self._line_masks(step, requests[i], [entries[k].line.name for k in own],
                                               [masks[k] for k in own], seen, own, latent_hw)
                    for k, mask in zip(own, current, strict=True):
                        final[k] = mask
                    if i in active:
                        lines = []
                        for k in own:
                            row = eps[positions[k]]
                            lines.append(uncond[i] + r0.guidance * (row - uncond[i]) if cfg else row)
                        weights = [m[0].to(guided.device, guided.dtype) for m in current]
                        fused[i] = fuse(guided[i], lines, weights)
                    if step in frames:
                        x0 = self._x0_estimate(scheduler, model_in[i:i + 1], fused[i][None], timesteps[step])
                        total = current[0] if len(current) == 1 else torch.stack(current).sum(0)
                        captured[i].append({"step": step, "fused": i in active,
                                            "mask": total.reshape(latent_hw).float().cpu(),
                                            "masks": [m.reshape(latent_hw).float().cpu() for m in current],
                                            "names": [entries[k].line.name for k in own], "x0": x0})
                guided = torch.stack(fused)
            # 4d. Scheduler step.
            latents = scheduler.step(guided, t, latents, return_dict=False)[0]
            # 4e. Plate crops: outside the face masks, back on the plate's latents at the next level.
            if plates is not None:
                latents = plates.keep_known(latents, step)
        if self.faceid is not None:
            self.faceid.probe = None

        # 5. Per job, what fusion did (a plate crop's facts are its plate job's: plate_render.py).
        facts: list[dict[str, Any]] = [{} for _ in requests]
        for i in dual if plates is None else []:
            start, end = windows[i]
            own = layout.entries_of(i)
            tokens = [int(token_weights[k].sum()) for k in own]
            coverage = [round(float(final[k].mean()), 4) for k in own]
            total = final[own[0]] if len(own) == 1 else torch.stack([final[k] for k in own]).sum(0)
            facts[i]["fusion"] = {"evaluations": evaluations, "window": [start, end],
                                  "subject_tokens": sum(tokens), "mask_coverage": round(float(total.mean()), 4),
                                  "characters": [{"name": entries[k].line.name, "subject_tokens": tokens[j],
                                                  "mask_coverage": coverage[j]} for j, k in enumerate(own)]}
            if captured[i]:
                facts[i]["fusion_frames"] = captured[i]
        return latents, facts

    @ranged(FUSION)
    def _line_masks(self, step: int, request: RenderRequest, names: list[str], masks: list[Any], maps: Any,
                    probe_index: list[int], latent_hw: tuple[int, int]) -> list[Any]:
        """One job's masks M_c this evaluation: each line's mask updated from its attention map, made
        exclusive between the job's characters (the one-character mask unchanged), or forced by the hook."""
        from .fusion import exclusive_masks

        current = [mask.update(None if maps is None else maps[k:k + 1]) for mask, k in zip(masks, probe_index,
                                                                                              strict=True)]
        current = exclusive_masks(current, [mask.attention for mask in masks], _fusion_of(request).mask_exclusivity)
        return self._forced_masks(step, request, names, current, latent_hw)

    def _forced_masks(self, step: int, request: RenderRequest, names: list[str], masks: list[Any],
                      latent_hw: tuple[int, int]) -> list[Any]:
        """``mask_override`` (tests only) in place of the computed masks: a value for every line, or a
        mapping character name -> value (a character it leaves out gets 0)."""
        import torch

        if self.mask_override is None:
            return masks
        forced = self.mask_override(step, request)
        values = [forced.get(name, 0.0) for name in names] if isinstance(forced, dict) else [forced] * len(names)
        return [torch.as_tensor(v, dtype=torch.float32).expand(1, 1, *latent_hw) for v in values]

    def _x0_estimate(self, scheduler: Any, model_in: Any, eps: Any, t: float) -> Any:
        """The clean latent an epsilon prediction implies (previews for ``--save-masks`` only)."""
        import torch

        alphas = scheduler.alphas_cumprod
        index = int(min(len(alphas) - 1, max(0, round(t))))
        alpha = alphas[index].to(model_in.device, torch.float32)
        return ((model_in.float() - (1 - alpha).sqrt() * eps.float()) / alpha.sqrt()).to(model_in.dtype)


def _without_plate(request: RenderRequest) -> RenderRequest:
    """The request as text-to-image: what a batch must share whether or not its jobs are plates."""
    import dataclasses

    return request if request.plate is None else dataclasses.replace(request, plate=None)


def _fusion_of(request: RenderRequest) -> FusionParams:
    """A dual-line job's fusion parameters (plan gives every dual-line job its own)."""
    if request.fusion is None:
        raise ValueError(f"a dual-line job without fusion parameters (seed {request.seed})")
    return request.fusion
