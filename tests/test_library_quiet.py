"""idcli quiets transformers', diffusers' and huggingface_hub's notices, and scikit-image's warning about
insightface's alignment, while its own calls run, and puts the host's settings back after (idcli/library_quiet.py).
The whole render is tests/test_scripting.py's ``test_a_render_leaves_the_hosts_library_logging_...``."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator

import pytest
from diffusers.utils import logging as diffusers_logging

from idcli.library_quiet import quiet_face_alignment, quiet_model_libraries

ALIGNMENT_WARNING = "`estimate` is deprecated since version 0.26 and will be removed in version 2.2."


@pytest.fixture
def host_logs_diffusers_info() -> Iterator[None]:
    """A host that wants diffusers' notices down to INFO (put back to diffusers' default after the test)."""
    diffusers_logging.set_verbosity_info()
    yield
    diffusers_logging.set_verbosity_warning()


def test_an_engine_kept_between_renders_is_quiet_on_each_and_leaves_the_host_as_it_was(
        tiny_engines, host_logs_diffusers_info: None) -> None:
    """The quieting is not left switched on by building the engine: a kept engine (the session's, built before
    this test) quiets diffusers while each of its renders runs, and the host's level is back between them."""
    from idcli.render_request import RenderRequest

    engine = tiny_engines("tiny-sd")
    heard: list[int] = []
    engine.on_step = lambda _done, _total: heard.append(diffusers_logging.get_verbosity())
    try:
        for seed in (1, 2):
            engine.render([RenderRequest("a lighthouse in a storm", "", seed, 64, 64, 2, 4.0, "dpmpp-2m")])
            assert diffusers_logging.get_verbosity() == logging.INFO
    finally:
        engine.on_step = None
    assert heard and set(heard) == {logging.ERROR}, heard


def test_two_threads_share_one_quieting_which_the_later_to_end_puts_back(host_logs_diffusers_info: None) -> None:
    """Two idcli calls at once in two threads, the first to start ending first: the second still runs quiet, and
    when it ends the host's level is back (each putting back what it found would leave ERROR for good)."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def first() -> None:
        with quiet_model_libraries():
            first_in.set()
            second_in.wait(60)
        first_out.set()

    def second() -> None:
        first_in.wait(60)
        with quiet_model_libraries():
            second_in.set()
            first_out.wait(60)
            seen["while the second runs, the first ended"] = diffusers_logging.get_verbosity()

    threads = [threading.Thread(target=run) for run in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert first_out.is_set() and seen == {"while the second runs, the first ended": logging.ERROR}, seen
    assert diffusers_logging.get_verbosity() == logging.INFO


def test_a_setting_the_host_changes_during_a_call_stays_the_hosts(host_logs_diffusers_info: None) -> None:
    with quiet_model_libraries():
        assert diffusers_logging.get_verbosity() == logging.ERROR
        diffusers_logging.set_verbosity_debug()  # another thread of the host, say
    assert diffusers_logging.get_verbosity() == logging.DEBUG


def test_the_alignment_warning_is_quiet_only_inside_and_a_hosts_equal_filter_stays() -> None:
    """Taking idcli's filter out leaves the host's own entry, even one equal to it (warnings.filterwarnings would
    have removed that one when idcli's went in)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_face_alignment():
            warnings.warn(ALIGNMENT_WARNING, FutureWarning, stacklevel=1)
        warnings.warn(ALIGNMENT_WARNING, FutureWarning, stacklevel=1)
        warnings.filterwarnings("ignore", message=r"`estimate` is deprecated", category=FutureWarning)
        before = list(warnings.filters)
        with quiet_face_alignment():
            assert len(warnings.filters) == len(before) + 1
        assert len(warnings.filters) == len(before)
        assert all(now is then for now, then in zip(warnings.filters, before, strict=True))  # the host's own entry
    assert [str(w.message) for w in caught] == [ALIGNMENT_WARNING]


def test_ray_client_timeout_warning_is_quieted_by_entries_of_its_own() -> None:
    """Ray Client's "connection timed out" warning, which idcli's error says in its words, is quieted while idcli
    connects, then shown again; a host's "always" filter set before stays as it was."""
    from idcli.library_quiet import quiet_ray_client_timeout

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with quiet_ray_client_timeout():
            warnings.warn("Ray Client connection timed out. Ensure that the Ray Client port is open", UserWarning,
                          stacklevel=1)
        warnings.warn("Ray Client connection timed out (after)", UserWarning, stacklevel=1)
        assert list(warnings.filters) == before
    assert [str(each.message) for each in caught] == ["Ray Client connection timed out (after)"]


def test_idcli_swaps_no_process_wide_warnings_state() -> None:
    """``warnings.catch_warnings`` swaps the process's filters and ``showwarning`` for its block: a host thread's own
    block, begun or ended meanwhile, is undone. idcli quiets a library's warning by filter entries of its own
    (library_quiet.py), never by such a block, anywhere in the package."""
    import ast
    from pathlib import Path

    import idcli

    package = Path(idcli.__file__).parent
    found = [f"{source.relative_to(package)}:{node.lineno}" for source in sorted(package.rglob("*.py"))
             for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
             if isinstance(node, ast.Attribute) and node.attr == "catch_warnings"]
    assert not found, found


def test_reading_an_allowed_pickle_quiets_torchs_protocol_note_by_entries_of_its_own(tmp_path) -> None:
    """plan and validate read an allowed adapter's shapes with torch's weights-only reader, which notes a pickle
    protocol other than 2 (`torch.save(..., pickle_protocol=3)`, a file pickled by other tools): quieted while
    idcli reads, by filter entries of its own (adapter_pickle.py swapped the filters with a catch_warnings block),
    and the host's filters are as they were after."""
    import torch

    from idcli.adapter_pickle import pickle_shapes

    file = tmp_path / "ip-adapter-faceid_sd15.bin"
    torch.save({"image_proj": {"norm.weight": torch.zeros(4)}, "ip_adapter": {}}, file, pickle_protocol=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        assert pickle_shapes(file) == {"image_proj.norm.weight": (4,)}
        assert all(now is then for now, then in zip(warnings.filters, before, strict=True))
        torch.load(file, weights_only=True, mmap=True)  # the note idcli quiets, shown outside its read
    assert [str(w.message)[:29] for w in caught] == ["Detected pickle protocol 3 in"]


def test_a_host_that_forces_hub_bars_on_gets_no_warning_from_idclis_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """``HF_HUB_DISABLE_PROGRESS_BARS=0`` (the host wants huggingface_hub's bars whatever code says) makes
    huggingface_hub warn `Cannot disable progress bars: environment variable ... has priority` at every call that
    turns them off: idcli's own, on every pipeline load and render (transformers' switch turns off the hub's too), and
    ``models fetch --json``'s. That warning is for the code that asked, not for idcli's users: quieted inside idcli's
    calls by an entry of its own; the host's own call still warns."""
    import importlib

    from huggingface_hub.utils import disable_progress_bars

    from idcli.library_quiet import quiet_hub_progress_bars

    hub_bars = importlib.import_module("huggingface_hub.utils.tqdm")
    monkeypatch.setattr(hub_bars, "HF_HUB_DISABLE_PROGRESS_BARS", False)  # what the variable set to 0 makes it
    states = dict(hub_bars.progress_bar_states)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with quiet_model_libraries():
            pass
        with quiet_hub_progress_bars():
            pass
        assert all(now is then for now, then in zip(warnings.filters, before, strict=True))
        assert hub_bars.progress_bar_states == states
        disable_progress_bars()  # the host's own call
    assert [str(w.message)[:29] for w in caught] == ["Cannot disable progress bars:"]
