"""Getting a diffusers pipeline: built with random weights from a preset's configs, or loaded from the hub or disk.

The only place that constructs pipelines. Real presets go through ``from_pretrained`` as a user's own
script would (hub id or local folder, safetensors only unless pickles are allowed), so the code path
tested on a saved tiny pipeline is the one that loads real weights; the weighted components are loaded
first, one by one with the same arguments, to read their loading info (missing weights are refused).

Random-weight presets come in two sizes: the tiny ones (each module's own initialisation, on the CPU
in float32) and the real-size bench ones (published SD1.5 / SDXL configs), whose parameters are made
on the meta device and drawn once, in the run's dtype, so that a 3.5-billion-parameter SDXL builds in
seconds rather than initialising every weight twice in float32.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError
from ..library_quiet import quiet_model_libraries
from ..models import ModelIdentity, weights_variant
from ..presets import PRESETS, TINY_INIT_SEED


def build_tiny_pipeline(preset_name: str) -> Any:
    """A tiny preset's pipeline (float32, CPU); kept for callers that predate the bench presets."""
    return build_random_pipeline(preset_name)


@quiet_model_libraries()
def build_random_pipeline(preset_name: str, torch_dtype: Any = None, device: Any = None) -> Any:
    """Random-weight pipeline from the preset's configs; identical weights on every call.

    Tiny presets ignore ``torch_dtype`` and ``device`` (float32 on the CPU; the engine moves them), so
    their weights never change. "fan-in" presets are drawn straight into ``torch_dtype`` (default
    float32) on ``device`` (default CPU); their values come from one seeded CPU generator, so they are
    the same on every device (up to the dtype).
    """
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    from .tokenizer import build_tiny_tokenizer

    preset = PRESETS[preset_name]
    cfg = preset.components
    max_length = cfg["text_encoder"]["max_position_embeddings"]
    tokenizer = build_tiny_tokenizer(max_length)
    if preset.weight_init == "torch":
        # A private generator (the stream torch.manual_seed(TINY_INIT_SEED) gives, so the weights are
        # those of every earlier version): building a preset neither depends on nor disturbs the
        # caller's seeds, nor another thread building at the same time.
        from .private_rng import private_generator

        with private_generator(TINY_INIT_SEED):
            modules = construct_modules(preset_name, tokenizer)
    elif preset.weight_init == "fan-in":
        with _parameters_on_meta():
            modules = construct_modules(preset_name, tokenizer)
        place = torch.device(device or "cpu")
        pool = _GaussianPool(TINY_INIT_SEED, place)
        for module in modules.values():
            if module is not None:
                _draw_parameters(module, pool, torch_dtype or torch.float32, place)
        del pool
    else:
        raise ValueError(f"preset '{preset_name}': unknown weight_init '{preset.weight_init}'")
    scheduler = DDIMScheduler(**cfg["scheduler"])
    for module in modules.values():
        if module is not None:
            module.eval()
    if preset.architecture == "sdxl":
        return StableDiffusionXLPipeline(
            vae=modules["vae"], text_encoder=modules["text_encoder"], text_encoder_2=modules["text_encoder_2"],
            tokenizer=tokenizer, tokenizer_2=build_tiny_tokenizer(max_length), unet=modules["unet"],
            scheduler=scheduler, force_zeros_for_empty_prompt=True)
    return StableDiffusionPipeline(
        vae=modules["vae"], text_encoder=modules["text_encoder"], tokenizer=tokenizer, unet=modules["unet"],
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@quiet_model_libraries()
def empty_components(preset_name: str) -> dict[str, Any]:
    """A random-weight preset's modules with every parameter on the meta device: shapes and parameter
    counts at no cost (nothing is allocated or initialised)."""
    from .tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(PRESETS[preset_name].components["text_encoder"]["max_position_embeddings"])
    with _parameters_on_meta():
        modules = construct_modules(preset_name, tokenizer)
    return {name: module for name, module in modules.items() if module is not None}


def construct_modules(preset_name: str, tokenizer: Any) -> dict[str, Any]:
    """The modules of a random-weight preset, in a fixed order (the tiny presets' RNG draws depend on it)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    preset = PRESETS[preset_name]
    cfg = preset.components
    # The tokenizer decides the special token ids; the vocabulary size is the config's when it gives
    # one (the bench presets keep the published 49408-row embedding table), else the tokenizer's.
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}

    def text_config(name: str) -> Any:
        return CLIPTextConfig(**{"vocab_size": len(tokenizer), **cfg[name], **special})

    modules: dict[str, Any] = {"unet": UNet2DConditionModel(**cfg["unet"]), "vae": AutoencoderKL(**cfg["vae"]),
                               "text_encoder": CLIPTextModel(text_config("text_encoder")), "text_encoder_2": None}
    if preset.architecture == "sdxl":
        modules["text_encoder_2"] = CLIPTextModelWithProjection(text_config("text_encoder_2"))
    return modules


_META = threading.local()  # per thread: is it inside _parameters_on_meta?
_META_LOCK = threading.Lock()
_META_USERS = 0  # threads inside _parameters_on_meta; the patch is installed while there are any
_REGISTER_PARAMETER = None


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Modules built inside get their parameters on the meta device, so their own initialisation costs
    nothing; buffers (CLIP's position ids) stay real. The trick of accelerate's
    ``init_empty_weights(include_buffers=False)``, without depending on accelerate. The patch acts only
    in the thread that entered the block: a tiny preset built at the same time in another thread gets
    real parameters."""
    import torch

    global _META_USERS, _REGISTER_PARAMETER
    with _META_LOCK:
        if _META_USERS == 0:
            register = torch.nn.Module.register_parameter
            _REGISTER_PARAMETER = register

            def on_meta(module: Any, name: str, param: Any) -> None:
                if getattr(_META, "active", False) and param is not None and not param.is_meta:
                    param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
                register(module, name, param)

            torch.nn.Module.register_parameter = on_meta  # type: ignore[method-assign, unused-ignore]
        _META_USERS += 1
    _META.active = True
    try:
        yield
    finally:
        _META.active = False
        with _META_LOCK:
            _META_USERS -= 1
            if _META_USERS == 0:
                torch.nn.Module.register_parameter = _REGISTER_PARAMETER  # type: ignore[method-assign, unused-ignore]


class _GaussianPool:
    """Standard-normal values for random weights, cheap on any device and the same on every device.

    One pool of 2**24 draws from a seeded CPU generator, moved to the device once; each tensor is a
    window of it at a seeded offset, so drawing a parameter costs one scaled copy instead of a serial
    CPU random kernel (SD1.5's 1.07 billion values: 22 s with the generator on this 2-core machine,
    10 s with the pool, most of it first touching the memory; on a GPU the copies take milliseconds).
    Within a tensor the values are independent draws; windows of different tensors may overlap, which
    a model built to be timed does not mind.
    """

    SIZE = 1 << 24

    def __init__(self, seed: int, device: Any) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(seed)
        self.values = torch.randn(self.SIZE, generator=self.generator).to(device)

    def take(self, shape: tuple[int, ...], std: float, dtype: Any) -> Any:
        import torch

        numel = math.prod(shape)
        if numel <= self.SIZE:
            start = int(torch.randint(0, self.SIZE - numel + 1, (1,), generator=self.generator))
            window = self.values[start:start + numel]
        else:  # only CLIP's token embedding tables are larger: their rows repeat every 2**24 values
            window = self.values.repeat(-(-numel // self.SIZE))[:numel]
        # One pass: scale and cast straight into the parameter's memory.
        return torch.mul(window.view(shape), std, out=torch.empty(shape, dtype=dtype, device=self.values.device))


def _draw_parameters(model: Any, pool: _GaussianPool, dtype: Any, device: Any) -> None:
    """Give every meta parameter of ``model`` random values in ``dtype`` on ``device``.

    Matrices and kernels: N(0, 1/(3 fan_in)), the variance of PyTorch's own Linear and Conv
    initialisation, which keeps activations finite through SDXL's 70 transformer blocks in bfloat16;
    embeddings N(0, 0.02) as CLIP's; 1-D weights (norm scales) 1 and biases 0. A parameter shared by
    two modules stays shared.
    """
    import torch
    from torch import nn

    drawn: dict[int, nn.Parameter] = {}
    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is None or not param.is_meta:
                continue
            if id(param) not in drawn:
                shape = tuple(param.shape)
                if len(shape) < 2:
                    fill = torch.ones if name == "weight" else torch.zeros
                    values = fill(shape, device=device, dtype=dtype)
                elif isinstance(module, nn.Embedding):
                    values = pool.take(shape, 0.02, dtype)
                else:
                    values = pool.take(shape, 1.0 / math.sqrt(3 * math.prod(shape[1:])), dtype)
                drawn[id(param)] = nn.Parameter(values, requires_grad=False)
            module._parameters[name] = drawn[id(param)]
    model.to(device)  # the buffers


def _how_to_get(identity: ModelIdentity) -> str:
    if identity.source == "local":
        return (f"the folder '{identity.id}' is not a complete diffusers model (model_index.json, "
                "unet/, vae/, text_encoder/ ... with .safetensors weights)")
    # `hf download`: huggingface_hub 1.x has no `huggingface-cli` any more (the advice named a missing command).
    fetch = (f"`idcli models fetch {identity.preset}`, or `hf download {identity.id}`"
             if identity.id == PRESETS[identity.preset].default_id else f"`hf download {identity.id}`")
    return (f"download it once on a machine with network access ({fetch}), then copy the Hugging Face cache here, "
            "or point model.id at a local diffusers folder; HF_HUB_OFFLINE=1 forbids network access")


# tokenizers' message for a BPE tokenizer given one of its two files (vocab.json, merges.txt) without the other.
_HALF_BPE = "`vocab` and `merges` must be both"


def _half_tokenizer(identity: ModelIdentity) -> str | None:
    """What a cached hub snapshot's tokenizer folder lacks when it holds vocab.json without merges.txt or the other
    way round and no tokenizer.json (a partial download), as "tokenizer/ has vocab.json but no merges.txt"; None
    when each has both or neither."""
    from ..model_setup import hub_file_cached

    assert identity.id is not None
    for name in ("tokenizer", "tokenizer_2"):
        if hub_file_cached(identity.id, f"{name}/tokenizer.json", identity.revision):
            continue
        has = [file for file in ("vocab.json", "merges.txt")
               if hub_file_cached(identity.id, f"{name}/{file}", identity.revision)]
        if len(has) == 1:
            return f"{name}/ has {has[0]} but no {'merges.txt' if has[0] == 'vocab.json' else 'vocab.json'}"
    return None


_STACKTRACE = re.compile(r"\s*Please check out the root cause in the stacktrace above\.?")
# diffusers' message for a weight file that exists but cannot be read (model_loading_utils.load_state_dict).
_DAMAGED = re.compile(r"Unable to load weights from checkpoint file for '([^']+)'")
# ... and for a component folder without the weight file it looks for (modeling_utils).
_NO_FILE = re.compile(r"no file named \S+ found in directory (.+?)\.?$")


def _variant_of_snapshot(exc: OSError) -> tuple[Path | None, str | None]:
    """The cached snapshot and the only variant its weights come in, read from diffusers' "no file named … found in
    directory SNAPSHOT/COMPONENT" error; (None, None) when the error is another one or the snapshot has
    full-precision weights."""
    missing = _NO_FILE.search(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    snapshot = Path(missing.group(1)).parent if missing else None
    if snapshot is None or not snapshot.is_dir():
        return None, None
    variant = weights_variant(snapshot)
    return (snapshot, variant) if variant else (None, None)


def _checked_components(folder: Path, variant: str | None, torch_dtype: Any, use_safetensors: bool | None,
                        skip: set[str]) -> dict[str, Any]:
    """The weighted components (UNet, VAE, text encoders) of a diffusers folder, a local one or a hub snapshot,
    loaded as the pipeline's ``from_pretrained`` loads them (the kwargs diffusers' ``load_sub_model`` passes) but with
    ``output_loading_info=True``, by name for the pipeline's ``from_pretrained``: a component whose weight files lack
    some of its weights is refused. diffusers and transformers leave such weights at their random initialisation, a
    warning the only word (which idcli quiets): each run a different image from no model. Weights the files hold
    that the component does not use are ignored, as both libraries ignore them. ``skip``: components not loaded.

    A component saved only as sharded pickles (``save_pretrained(safe_serialization=False, max_shard_size=…)``:
    ``diffusion_pytorch_model.bin.index.json`` and shards) loads weights-only with ``use_safetensors=False``: with
    pickles allowed (``use_safetensors=None``) diffusers looks for a sharded component's index by its safetensors
    name only and failed with "no file named diffusion_pytorch_model.bin"."""
    import inspect
    import json

    import diffusers
    import transformers
    from diffusers.pipelines.pipeline_loading_utils import _identify_model_variants
    from safetensors import SafetensorError

    from ..model_weight_keys import held_weights, refuse_damaged_safetensors, refuse_unheld_weights, safetensors_index

    try:
        index = json.loads((folder / "model_index.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}  # checked at plan time (models.check_local_folder): from_pretrained says what is wrong
    if not isinstance(index, dict):
        return {}
    # diffusers asks for the variant only of the components that have variant files (model_variants).
    variants = _identify_model_variants(folder=str(folder), variant=variant, config=index)
    shard_index = "diffusion_pytorch_model.bin.index.json" if variant is None \
        else f"diffusion_pytorch_model.bin.index.{variant}.json"  # diffusers' _add_variant: before the last suffix
    components: dict[str, Any] = {}
    for name, entry in index.items():
        part = folder / name
        if name in skip or not (isinstance(entry, list) and len(entry) == 2 and part.is_dir()):
            continue
        library = {"diffusers": diffusers, "transformers": transformers}.get(str(entry[0]))
        component_class: Any = getattr(library, str(entry[1]), None) if library is not None else None
        if inspect.isclass(component_class) and issubclass(component_class, diffusers.ModelMixin):
            kwargs: dict[str, Any] = {"torch_dtype": torch_dtype, "variant": variants.get(name),
                                      "use_safetensors": use_safetensors}
            if use_safetensors is None and (part / shard_index).is_file() \
                    and not any("safetensors" in p.name for p in part.iterdir()):
                _check_shard_index(folder, part / shard_index)
                kwargs["use_safetensors"] = False
                kwargs["variant"] = variant
                weights = part / shard_index
            else:
                weights = part
        elif inspect.isclass(component_class) and issubclass(component_class, transformers.PreTrainedModel):
            kwargs = {"dtype": torch_dtype, "use_safetensors": use_safetensors}
            if variants.get(name) is not None:
                kwargs["variant"] = variants[name]
            weights = part
        else:
            continue  # a tokenizer, a scheduler: no weights
        loader: Any = component_class  # a ModelMixin or PreTrainedModel subclass: both take output_loading_info
        try:
            component, loading = loader.from_pretrained(str(part), output_loading_info=True, **kwargs)
        except (OSError, SafetensorError):  # a file cut after plan, or plan skipped: named in plan's words
            if kwargs["use_safetensors"] is not False:
                refuse_damaged_safetensors(folder, part, kwargs.get("variant"),
                                           issubclass(component_class, diffusers.ModelMixin))
            raise
        # diffusers counts a sharded checkpoint's weights from its index: one no shard holds loads uninitialised.
        index_file = safetensors_index(part, kwargs.get("variant"), issubclass(component_class, diffusers.ModelMixin)) \
            if kwargs["use_safetensors"] is not False else None
        missing = sorted(loading.get("missing_keys") or ())
        if index_file is not None:
            refuse_unheld_weights(folder, index_file, name, component.state_dict())
            # and reports one its shards hold but it leaves out as missing, yet loads it: plan passes it too
            held = held_weights(index_file) or set()
            missing = [key for key in missing if key not in held]
        if missing:
            _refuse_missing(folder, name, weights, kwargs.get("variant"), missing)
        components[name] = component
    return components


def _refuse_missing(folder: Path, name: str, weights: Path, variant: str | None, missing: list[str]) -> None:
    """Exit 4 naming the component, its weight file (its folder when diffusers chose among several) or shard index,
    and how many weights it lacks."""
    files = sorted(p.name for p in weights.iterdir() if p.suffix in (".safetensors", ".bin")) \
        if weights.is_dir() else []
    if any(file.endswith(".safetensors") for file in files):  # what both libraries load first
        files = [file for file in files if file.endswith(".safetensors")]
    if variant is not None and any(f".{variant}." in file for file in files):
        files = [file for file in files if f".{variant}." in file]
    if weights.is_file():
        where = f"its shard index '{weights}' leaves"
    elif len(files) == 1:
        where = f"the weight file '{weights / files[0]}' leaves"
    else:
        where = f"the weight files in '{weights}' leave"
    from ..model_weight_keys import missing_weights_words

    raise ModelUnavailableError(missing_weights_words(folder, where, name, missing))


def _check_shard_index(folder: Path, index: Path) -> None:
    """Refuse a shard index diffusers would fail on in its own words (a JSON error naming no file) or with a
    traceback (a ``weight_map`` that is no mapping of tensor names to shard files; no ``metadata`` object, which
    diffusers reads unchecked and save_pretrained always writes: an index written by hand), or that names a shard
    outside its folder or not there: in plan's words (model_weight_keys.py)."""
    from ..model_weight_keys import refuse_damaged_index

    refuse_damaged_index(folder, index)


@quiet_model_libraries()
def load_pretrained_pipeline(identity: ModelIdentity, torch_dtype: Any) -> Any:
    """``from_pretrained`` for the real presets, with errors that say how to get the model."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if identity.architecture == "sdxl" else StableDiffusionPipeline
    source = identity.id
    assert source is not None
    # With pickles allowed, None lets diffusers prefer .safetensors and fall back to weights-only torch.load.
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "use_safetensors": None if identity.allow_pickle else True}
    if identity.source == "hub":
        kwargs["revision"] = identity.revision
    # The safety checker never runs and the feature extractor only feeds it (load_ip_adapter makes its own): neither
    # is loaded, so a folder without their subfolders (as people trim SD1.5 copies) loads.
    kwargs["feature_extractor"] = None
    if identity.architecture == "sd":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    from safetensors import SafetensorError

    if identity.source == "local":
        # A folder saved with save_pretrained(variant="fp16"): load its variant files (the dtype still decides the
        # compute precision). None for a folder with full-precision weights everywhere: loaded as before.
        kwargs["variant"] = weights_variant(Path(source))
    try:
        try:
            # Each weighted component is loaded here, its loading info read (one lacking weights is refused), and
            # handed to from_pretrained, which loads the rest (tokenizers, scheduler) as before. A hub model's
            # snapshot is found (or downloaded) as from_pretrained finds it.
            skip = {"safety_checker", "feature_extractor"} & set(kwargs)
            folder = Path(source) if identity.source == "local" else _hub_folder(
                cls, source, identity.revision, kwargs["use_safetensors"], skip)
            kwargs.update(_checked_components(folder, kwargs.get("variant"), torch_dtype, kwargs["use_safetensors"],
                                              skip=skip))
            pipe = cls.from_pretrained(source, **kwargs)
        except OSError as exc:
            # A cached hub snapshot holding only variant files (a download of "*.fp16.safetensors"). Not loaded
            # by its hub id: that key (id@revision) names the published full-precision weights, and rounded
            # copies under it would give one key two images. Its folder, keyed by its files, loads.
            snapshot, variant = _variant_of_snapshot(exc) if identity.source == "hub" else (None, None)
            if variant is None:
                raise
            raise ModelUnavailableError(
                f"cannot load model '{source}' by its hub id: the cached snapshot {snapshot} holds only "
                f"'{variant}' variant weights, and a hub id's job key names the full-precision ones. To render "
                f"from these files, set model.id to that folder (keyed by its files), or download the "
                "full-precision files") from None
    except (OSError, ValueError, EnvironmentError, SafetensorError) as exc:  # noqa: UP024 - hub errors are OSError
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # diffusers points at "the stacktrace above", which idcli does not print (IDCLI_DEBUG does).
        text = _STACKTRACE.sub("", text).rstrip(". ")
        damaged = _DAMAGED.search(text)
        if damaged:
            # A weight file that exists but does not load: truncated, corrupt, or a pickle holding more
            # than tensors (pickles load weights-only). Saying "allow pickles" or "incomplete folder" here
            # sent people the wrong way.
            weight = damaged.group(1)
            raise ModelUnavailableError(
                f"cannot load model '{source}' for preset '{identity.preset}': the weight file '{weight}' is "
                "damaged, truncated or not a plain weight file (pickles load weights-only, so one holding code "
                "or other objects is refused). To fix: download or save the model again "
                "(save_pretrained(..., safe_serialization=True))") from None
        if "contains custom code" in text or "is not one of the libraries Diffusers can load" in text:
            # A hub model whose model_index.json names code of its own (a local folder is refused at plan time).
            raise ModelUnavailableError(
                f"cannot load model '{source}' for preset '{identity.preset}': its model_index.json names custom "
                "code, which loading would run (diffusers' trust_remote_code); idcli never does. To fix: use a "
                "model whose components are diffusers and transformers classes") from None
        half = _half_tokenizer(identity) if identity.source == "hub" and _HALF_BPE in text else None
        if half is not None:
            # tokenizers' words name neither the folder nor the file; the hub snapshot is not read before loading
            # (a local folder's layout is checked at plan time: models.check_local_folder)
            raise ModelUnavailableError(
                f"cannot load model '{source}' for preset '{identity.preset}': its cached snapshot's {half} (a "
                f"partial download). To fix: {_how_to_get(identity)}") from None
        if "safetensors" in text.lower() and not identity.allow_pickle:
            text += ("; only .safetensors weights are loaded by default — set model.allow_pickle: true "
                     "to load pickle checkpoints (weights only)")
        raise ModelUnavailableError(
            f"cannot load model '{source}' for preset '{identity.preset}': {text}. "
            f"To fix: {_how_to_get(identity)}") from None
    _refuse_empty_tokenizers(pipe, identity)
    return pipe


# diffusers' words when use_safetensors=True finds a component with no safetensors weights (pipeline_loading_utils).
_NO_SAFETENSORS = "Could not find the necessary `safetensors` weights"


def _hub_folder(cls: Any, source: str, revision: str | None, use_safetensors: bool | None, skip: set[str]) -> Path:
    """The snapshot of a hub model, downloaded (or found in the cache) with the files a load reads.

    With pickles allowed (``use_safetensors=None``) diffusers' ``download`` fetches the pickles alone, every
    ``*.safetensors`` ignored, as soon as one component has no safetensors weights: a UNet published only as (sharded)
    pickles loaded, but the text encoder and VAE beside it, published as safetensors, were never downloaded
    ("no file named model.safetensors, or pytorch_model.bin"), while the same files in a local folder loaded. Each
    component then comes in the format a local folder's loads: its safetensors, or its pickles where it has none
    (two downloads, each given the other's components as passed, so that it leaves their folders alone).

    ``skip``, the components never loaded (the safety checker, the feature extractor), are given as passed to each
    download, as from_pretrained gives them: their files are neither downloaded nor asked to be safetensors (an SD1.5
    repository whose safety checker is published as a pickle only was refused without allow_pickle, and with it that
    1.2 GB pickle was downloaded)."""
    from huggingface_hub.utils import httpx

    from ..hub_reach import hub_problem

    try:
        return _downloaded_folder(cls, source, revision, use_safetensors, skip)
    except httpx.TransportError as exc:
        # Cut off after the one request was answered (and huggingface_hub's resumes): httpx's error, no OSError, so
        # no `except` of the load's caught it (an "internal error"). Nothing partial is kept (.incomplete removed).
        problem = hub_problem(exc, source, revision, downloading=True)
        if problem is None:
            raise
        cut = ModelUnavailableError(problem.refusal(f"cannot load model '{source}'"))
        cut.missing = True  # not (wholly) on this machine: a partial snapshot is no model (ray_worker.refusal)
        raise cut from None


def _downloaded_folder(cls: Any, source: str, revision: str | None, use_safetensors: bool | None,
                       skip: set[str]) -> Path:
    """``_hub_folder``'s work: the hub asked once where the cache lacks the model, then diffusers' download."""
    from ..hub_reach import ask_hub_once
    from ..model_setup import hub_snapshot

    if hub_snapshot(source, revision) is None:
        # Not cached, so the download must ask the hub: once first, as huggingface_hub would retry an unanswered
        # request for 25 s to minutes, and a gated or missing repository gets its own words (idcli/hub_reach.py). A
        # cached snapshot is left to diffusers, which loads it when the hub does not answer.
        problem = ask_hub_once(source, "model_index.json", revision)
        if problem is not None:
            missing = ModelUnavailableError(problem.refusal(f"cannot load model '{source}'", uncached=True))
            missing.missing = True
            raise missing
    passed = dict.fromkeys(skip)
    if use_safetensors is not None:
        return Path(cls.download(source, revision=revision, use_safetensors=use_safetensors, **passed))
    try:
        return Path(cls.download(source, revision=revision, use_safetensors=True, **passed))
    except EnvironmentError as exc:  # noqa: UP024 - diffusers raises EnvironmentError
        if _NO_SAFETENSORS not in str(exc):
            raise
    files = _repo_files(source, revision)
    folders = {file.split("/")[0] for file in files if file.count("/") == 1} - skip
    pickled = {name for name in folders
               if any(f.startswith(f"{name}/") and f.endswith(".bin") for f in files)
               and not any(f.startswith(f"{name}/") and f.endswith(".safetensors") for f in files)}
    cls.download(source, revision=revision, use_safetensors=None, **passed, **dict.fromkeys(folders - pickled))
    return Path(cls.download(source, revision=revision, use_safetensors=True, **passed, **dict.fromkeys(pickled)))


def _repo_files(source: str, revision: str | None) -> list[str]:
    """The file names of a hub repository at ``revision``: the hub's listing or, where the hub cannot be asked
    (HF_HUB_OFFLINE=1, no connection), the listing its first download cached, as diffusers' ``download`` reads them:
    offline, asking the hub refused a model whose files are all cached."""
    import requests
    from huggingface_hub import get_cached_repo_tree, model_info
    from huggingface_hub.errors import CachedRepoTreeNotFoundError
    from huggingface_hub.utils import HfHubHTTPError, OfflineModeIsEnabled, httpx  # the errors diffusers catches

    try:
        return [sibling.rfilename for sibling in model_info(source, revision=revision).siblings or []]
    except (HfHubHTTPError, OfflineModeIsEnabled, requests.ConnectionError, httpx.NetworkError) as exc:
        try:
            return [file.path for file in get_cached_repo_tree(source, revision=revision)]
        except CachedRepoTreeNotFoundError:
            raise exc from None


def _refuse_empty_tokenizers(pipe: Any, identity: ModelIdentity) -> None:
    """A tokenizer transformers built without its files (a hub snapshot missing them; a local folder's are checked
    at plan time, models.check_local_folder): without its vocabulary it encodes every word as the unknown token, so
    the images would follow no prompt; without its window size the encoding stopped on an internal OverflowError.
    Never used."""
    from ..prompt_tokens import MAX_WINDOW, read_from_its_files

    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is None or read_from_its_files(tokenizer):
            continue
        lacks = (["no vocabulary, only its special tokens"] if len(tokenizer) <= len(tokenizer.all_special_ids)
                 else []) + (["no window size"] if tokenizer.model_max_length > MAX_WINDOW else [])
        fix = (f"copy its {name}/ files again (tokenizer.json, or vocab.json and merges.txt, beside "
               "tokenizer_config.json)" if identity.source == "local" else _how_to_get(identity))
        raise ModelUnavailableError(
            f"cannot load model '{identity.id}' for preset '{identity.preset}': its {name} was built without its "
            f"files ({'; '.join(lacks)}), so it cannot encode the prompts. To fix: {fix}")


def build_pipeline(identity: ModelIdentity, torch_dtype: Any, device: Any = None) -> Any:
    """The pipeline of ``identity``. ``device`` only matters to the bench presets: their random weights
    are then made there directly, never held as a whole model on the CPU first (None: on the CPU, and
    the engine moves the pipeline)."""
    if identity.source == "builtin":
        return build_random_pipeline(identity.preset, torch_dtype, device)
    return load_pretrained_pipeline(identity, torch_dtype)
