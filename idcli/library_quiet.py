"""The notices of the libraries idcli drives, quieted while idcli's own calls run in them and put back after.

transformers, diffusers and huggingface_hub log warnings and draw progress bars meant for people who call them
directly, scikit-image warns about a deprecated call insightface's face alignment makes, and torch's legacy ONNX
exporter (the synthetic face pack's) about itself: none is for idcli's users, and the command line would show them
amid its own lines. They were quieted for the whole process and never
put back, so a pipeline that logs diffusers' or transformers' warnings of its own lost them after one
``idcli.render``. Here each setting is changed when the first idcli call that needs it starts and put back when the
last one ends, as it was found; a setting the host changed in the meantime keeps the host's newer value.

The settings are process-wide (a logger's level and filters, a library's progress-bar switch, ``warnings.filters``):
Python has no per-thread logging level. So while an idcli call runs in one thread, another thread's diffusers or
transformers warnings are quieted too; two threads calling idcli share one quieting, which stays until the later
of them ends, whatever the order they end in.

Used as decorators or ``with`` blocks around the code that calls into those libraries (loading, rendering,
detecting faces), not at the public entry points: an engine or face analyser kept between calls is quiet on every
call, whoever calls it, with nothing left switched on between calls.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from .package_imports import import_packages

PutBack = Callable[[], None]

_LOCK = threading.Lock()


class _Setting:
    """One process-wide setting idcli changes while any of its calls needs it.

    ``change`` makes the change and returns how to undo it (None where it found nothing to change)."""

    def __init__(self, change: Callable[[], PutBack | None]) -> None:
        self._change = change
        self._users = 0
        self._put_back: PutBack | None = None

    def enter(self) -> None:
        with _LOCK:
            if self._users == 0:
                self._put_back = self._change()
            self._users += 1

    def leave(self) -> None:
        with _LOCK:
            self._users -= 1
            if self._users == 0 and self._put_back is not None:
                put_back, self._put_back = self._put_back, None
                put_back()


@contextmanager
def _quieted(*settings: _Setting) -> Iterator[None]:
    entered: list[_Setting] = []
    try:
        for setting in settings:
            setting.enter()
            entered.append(setting)
        yield
    finally:
        for setting in reversed(entered):
            setting.leave()


def _logger_level(name: str, level: int) -> PutBack:
    logger = logging.getLogger(name)
    found = logger.level
    logger.setLevel(level)

    def put_back() -> None:
        if logger.level == level:  # else the host set it meanwhile: theirs stands
            logger.setLevel(found)

    return put_back


def _transformers_notices() -> PutBack:
    put_backs: list[PutBack] = []
    # transformers warns at import about optional torchvision image processors we never use. Its verbosity is
    # set as TRANSFORMERS_VERBOSITY=error would set it, where the variable would count (transformers not imported
    # yet, the variable not the user's), without setting it: os.environ is the calling pipeline's, and every
    # process it started afterwards inherited a transformers silenced.
    # Imported before (a shot list's tokenizer read first, as every command line render has it) it is quieted too:
    # else each load printed "The following layers were not sharded: …" of a plain text encoder, and a "LOAD REPORT"
    # table in colour codes before the render's refusal of a text encoder lacking weights, in idcli's own words.
    if "TRANSFORMERS_VERBOSITY" not in os.environ:
        import_packages("transformers")  # one thread at a time (package_imports.py)
        from transformers.utils import logging as transformers_logging

        transformers_logging.get_verbosity()  # it sets its logger's level once, on first use: before ours
        put_backs.append(_logger_level("transformers", logging.ERROR))
    # When transformers already was imported (a shot list's tokenizer, the run's early imports), its import-time
    # notices are quieted at their logger. diffusers' IP-Adapter loader imports CLIPImageProcessor, whose "requires
    # torchvision ... install torchvision" notice would send users to install a package that can replace their
    # torch build; idcli builds every pipeline with feature_extractor=None and never uses an image processor.
    put_backs.append(_logger_level("transformers.utils.import_utils", logging.ERROR))

    def put_back() -> None:
        for each in reversed(put_backs):
            each()

    return put_back


class _FetchErrorBeforeFallback:
    """Drops diffusers' "An error occurred while trying to fetch FOLDER/unet: Error no file named
    diffusion_pytorch_model.safetensors …", logged at error level for a component without a safetensors file before
    diffusers loads its pickle (``model.allow_pickle``: a render that succeeds) or raises that error (which idcli
    reports in its own words). Other records pass."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("An error occurred while trying to fetch")


def _diffusers_notices() -> PutBack:
    import_packages("diffusers")  # one thread at a time (package_imports.py)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.get_verbosity()  # it sets its logger's level once, on first use: before ours
    level_back = _logger_level("diffusers", logging.ERROR)
    # A logger's filters see only the records made at it (not its children's): the model loader's own logger.
    loader = logging.getLogger("diffusers.models.modeling_utils")
    dropper = _FetchErrorBeforeFallback()
    loader.addFilter(dropper)

    def put_back() -> None:
        loader.removeFilter(dropper)
        level_back()

    return put_back


class _OfflineByChoice:
    """Drops huggingface_hub's "Could not reach the Hub (... offline mode is enabled. To disable it, please unset
    the HF_HUB_OFFLINE environment variable). Using cached commit hash" when offline mode is what the user set:
    it tells them to undo the setting idcli documents, on every load from the cache. Other warnings pass."""

    def filter(self, record: Any) -> bool:
        from huggingface_hub import constants

        return not (constants.HF_HUB_OFFLINE and str(record.msg).startswith("Could not reach the Hub"))


def _offline_notice() -> PutBack:
    hub_api = logging.getLogger("huggingface_hub.hf_api")
    dropper = _OfflineByChoice()
    hub_api.addFilter(dropper)
    return lambda: hub_api.removeFilter(dropper)


def _transformers_progress_bars() -> PutBack | None:
    """transformers' own progress bars (saving and loading shards) would break idcli's display."""
    import_packages("transformers")  # one thread at a time (package_imports.py)
    from transformers.utils import logging as transformers_logging

    if not transformers_logging.is_progress_bar_enabled():
        return None
    # Turning transformers' bars off turns off every huggingface_hub bar too, dropping the host's per-group
    # choices (huggingface_hub.utils.disable_progress_bars(name)); those are put back as they were.
    hub_bars = importlib.import_module("huggingface_hub.utils.tqdm")
    hub_states = dict(hub_bars.progress_bar_states)
    transformers_logging.disable_progress_bar()

    def put_back() -> None:
        if transformers_logging.is_progress_bar_enabled():  # the host turned them on meanwhile
            return
        transformers_logging.enable_progress_bar()
        hub_bars.progress_bar_states.clear()
        hub_bars.progress_bar_states.update(hub_states)

    return put_back


def _diffusers_progress_bars() -> PutBack | None:
    """diffusers' own bar (``Loading pipeline components...``, drawn by every ``from_pretrained`` of a pipeline) would
    break idcli's display, and print under ``render --quiet``."""
    import_packages("diffusers")  # one thread at a time (package_imports.py)
    from diffusers.utils import logging as diffusers_logging

    if not diffusers_logging.is_progress_bar_enabled():
        return None
    diffusers_logging.disable_progress_bar()

    def put_back() -> None:
        if not diffusers_logging.is_progress_bar_enabled():  # else the host turned it on meanwhile: theirs stands
            diffusers_logging.enable_progress_bar()

    return put_back


def _hub_progress_bars() -> PutBack:
    from huggingface_hub.utils import disable_progress_bars

    hub_bars = importlib.import_module("huggingface_hub.utils.tqdm")
    found = dict(hub_bars.progress_bar_states)  # the global switch and each group's
    disable_progress_bars()
    expected = dict(hub_bars.progress_bar_states)

    def put_back() -> None:
        if hub_bars.progress_bar_states == expected:  # else the host changed them meanwhile: theirs stand
            hub_bars.progress_bar_states.clear()
            hub_bars.progress_bar_states.update(found)

    return put_back


def _ignored_warnings(*entries: tuple[str, type[Warning]]) -> Callable[[], PutBack]:
    """A change that puts an "ignore" entry for each (message pattern, category) at the front of the warnings filters.

    The entries are inserted as warnings.filterwarnings would make them, but not through it: filterwarnings first
    removes an equal entry, so a host that had one would lose it when ours is taken out. An "ignore" leaves no trace
    in the modules' warning registries, so taking it out needs no reset of them. Unlike a ``catch_warnings`` block,
    this neither swaps the filter list nor ``showwarning``: a host thread's own block, begun or ended meanwhile,
    stays as the host made it."""

    def change() -> PutBack:
        made = [("ignore", re.compile(pattern, re.I), category, None, 0) for pattern, category in entries]
        into = cast(list[Any], warnings.filters)  # a list (typeshed says Sequence)
        into[0:0] = made

        def put_back() -> None:
            # Out of the list they went into and of the current one (a catch_warnings block in another thread may
            # have swapped the list meanwhile): by identity, so an equal entry of the host's stays.
            now = cast(list[Any], warnings.filters)
            for filters in {id(into): into, id(now): now}.values():
                for entry in made:
                    for index, item in enumerate(filters):
                        if item is entry:
                            del filters[index]
                            break

        return put_back

    return change


# scikit-image deprecates the estimate() call insightface's alignment makes; not ours to change.
_alignment_deprecation = _ignored_warnings((r"`estimate` is deprecated", FutureWarning))
# torch's legacy (TorchScript) ONNX exporter, which the synthetic face pack uses on purpose (idcli/synthetic_faces.py:
# plain, deterministic graphs with dynamic H and W, whose bytes the pack's hash and so the identity keys depend on),
# says it is legacy, that a function it calls itself will be removed, and that it cannot constant-fold the step -1
# Slice behind the detector's edge padding. Avoiding the last would change the exported bytes.
_onnx_export_notices = _ignored_warnings(
    (r"Constant folding", UserWarning),
    (r"You are using the legacy TorchScript", DeprecationWarning),
    (r"The feature will be removed", DeprecationWarning),
)

# Ray Client warns that its connection timed out before raising; the executor's error says so in idcli's words.
_ray_client_timeout = _ignored_warnings((r"Ray Client connection", UserWarning))

# HF_HUB_DISABLE_PROGRESS_BARS=0 (or 1) has priority over code, and huggingface_hub warns whoever turns its bars off
# (or on) that it cannot: idcli does on every pipeline load (transformers' switch turns the hub's too) and put-back.
_hub_bars_env_priority = _ignored_warnings((r"Cannot (dis|en)able progress bars: environment variable", UserWarning))
# torch's weights-only reader notes a pickle protocol other than the 2 torch.save writes (a file pickled by other
# tools); plan and validate read an allowed adapter's shapes only, and the render says what matters in its words.
_pickle_protocol_note = _ignored_warnings((r"Detected pickle protocol", UserWarning))
# Pillow's TIFF directory reader (a TIFF's, and a JPEG's, PNG's or WebP's EXIF block) warns once per tag it skips, in
# lines naming its own source: a hostile TIFF of 65,535 such tags printed 129,072 lines. The reader's error, or the
# image read without those tags, is what idcli says.
_damaged_image_tags = _ignored_warnings(
    (r"(Possibly )?Corrupt EXIF data", UserWarning),
    (r"Tag data larger than file", UserWarning),
    (r"Tag offset too large", UserWarning),
    (r"Truncated File Read", UserWarning),
)


_TRANSFORMERS_NOTICES = _Setting(_transformers_notices)
_DIFFUSERS_NOTICES = _Setting(_diffusers_notices)
_OFFLINE_NOTICE = _Setting(_offline_notice)
_PROGRESS_BARS = _Setting(_transformers_progress_bars)
_HUB_PROGRESS_BARS = _Setting(_hub_progress_bars)
_DIFFUSERS_PROGRESS_BARS = _Setting(_diffusers_progress_bars)
_ALIGNMENT_DEPRECATION = _Setting(_alignment_deprecation)
_ONNX_EXPORT_NOTICES = _Setting(_onnx_export_notices)
_RAY_CLIENT_TIMEOUT = _Setting(_ray_client_timeout)
_PICKLE_PROTOCOL_NOTE = _Setting(_pickle_protocol_note)
_HUB_BARS_ENV_PRIORITY = _Setting(_hub_bars_env_priority)
_DAMAGED_IMAGE_TAGS = _Setting(_damaged_image_tags)


@contextmanager
def quiet_model_libraries() -> Iterator[None]:
    """While idcli builds, loads or runs a pipeline: transformers', diffusers' and huggingface_hub's notices that
    are not for idcli's users quieted, and their progress bars off (a pipeline loaded from a folder or the hub cache
    drew diffusers' and transformers' loading bars amid idcli's lines). A decorator or a ``with`` block."""
    with _quieted(_TRANSFORMERS_NOTICES, _DIFFUSERS_NOTICES, _OFFLINE_NOTICE, _HUB_BARS_ENV_PRIORITY, _PROGRESS_BARS,
                  _DIFFUSERS_PROGRESS_BARS):
        yield


@contextmanager
def quiet_model_loading() -> Iterator[None]:
    """``quiet_model_libraries``, while idcli loads or saves a transformers model (the FaceID-Plus image
    encoder)."""
    with quiet_model_libraries():
        yield


@contextmanager
def quiet_hub_progress_bars() -> Iterator[None]:
    """While idcli downloads without progress (``models fetch --json``, ``fetch(progress=False)``):
    huggingface_hub's progress bars off. With progress, the host's own switches are left as they are."""
    with _quieted(_HUB_BARS_ENV_PRIORITY, _HUB_PROGRESS_BARS):
        yield


@contextmanager
def quiet_face_alignment() -> Iterator[None]:
    """While insightface detects or aligns faces: scikit-image's deprecation warning about its call quieted."""
    with _quieted(_ALIGNMENT_DEPRECATION):
        yield


@contextmanager
def quiet_onnx_export() -> Iterator[None]:
    """While idcli exports the synthetic face pack with torch's legacy ONNX exporter: its notices quieted."""
    with _quieted(_ONNX_EXPORT_NOTICES):
        yield


@contextmanager
def quiet_ray_client_timeout() -> Iterator[None]:
    """While idcli connects to a Ray cluster: Ray Client's "connection timed out" warning quieted (the error idcli
    raises then says it)."""
    with _quieted(_RAY_CLIENT_TIMEOUT):
        yield


@contextmanager
def quiet_pickle_protocol_note() -> Iterator[None]:
    """While plan and validate read an allowed pickled adapter's shapes (adapter_pickle.py): torch's note on a pickle
    protocol other than 2 quieted."""
    with _quieted(_PICKLE_PROTOCOL_NOTE):
        yield


@contextmanager
def quiet_damaged_image_tags() -> Iterator[None]:
    """While idcli opens a selfie, plate or take (identity/images.py): Pillow's warning for each damaged TIFF or EXIF
    tag it skips quieted."""
    with _quieted(_DAMAGED_IMAGE_TAGS):
        yield
