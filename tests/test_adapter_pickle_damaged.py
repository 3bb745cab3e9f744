"""A damaged allowed pickle (`model.allow_pickle: true`) that torch's weights-only unpickler fails on with something
other than an UnpicklingError: plan and validate read its shapes (idcli/adapter_pickle.py) and the render loads it
(engine/faceid_loading.py). torch's weights-only unpickler raises AssertionError, IndexError or TypeError for a
malformed ``data.pkl`` inside an otherwise good torch zip, which both let through as a traceback; and it reads the
record whole into memory, however far a small deflated one unpacks."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from idcli.adapter_pickle import pickle_shapes
from idcli.engine.faceid_loading import read_faceid_checkpoint
from idcli.errors import ModelUnavailableError

# The data.pkl of a torch zip, each malformed so: a persistent id that is no tuple (AssertionError), APPENDS with no
# mark before it (IndexError), a list used as a dict key (TypeError).
BROKEN_RECORDS = {"persistent id not a tuple": b"\x80\x02K\x05Q.",
                  "appends without a mark": b"\x80\x02]q\x00h\x00h\x00e.",
                  "unhashable key": b"\x80\x02}]]s."}


def _torch_zip_with_record(target: Path, record: bytes) -> Path:
    """A file as torch.save writes it (a zip), its pickle record replaced by ``record``."""
    import torch

    saved = io.BytesIO()
    torch.save({"image_proj": {"norm.weight": torch.zeros(4)}, "ip_adapter": {}}, saved)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        for item in source.infolist():
            copy.writestr(item, record if item.filename.endswith("/data.pkl") else source.read(item.filename))
    target.write_bytes(out.getvalue())
    return target


@pytest.mark.parametrize("record", BROKEN_RECORDS.values(), ids=BROKEN_RECORDS.keys())
def test_a_damaged_pickle_is_left_to_the_render_and_the_render_says_damaged(tmp_path: Path, record: bytes) -> None:
    file = _torch_zip_with_record(tmp_path / "ip-adapter-faceid_sd15.bin", record)
    assert pickle_shapes(file) is None  # plan and validate: left to the render, as a cut file is
    with pytest.raises(ModelUnavailableError, match="the file is damaged, truncated") as caught:
        read_faceid_checkpoint(file, allow_pickle=True)
    assert file.name in str(caught.value)


def test_a_pickle_record_that_unpacks_to_gigabytes_is_not_read_at_plan_time(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reads a zip's pickle record whole into memory: a record deflated to a few hundred kilobytes (a long
    string in it) took 570 MB to validate, and one of a few megabytes would take gigabytes. h94's are about 80 KB:
    one past 16 MB unpacked (the zip's directory says so) is left to the render, torch not called."""
    import torch

    from idcli.adapter_pickle import MAX_RECORD_BYTES

    length = MAX_RECORD_BYTES + 1
    record = b"\x80\x02\x8d" + length.to_bytes(8, "little") + b"a" * length + b"."  # one long string
    file = tmp_path / "ip-adapter-faceid_sd15.bin"
    saved = io.BytesIO()
    torch.save({"image_proj": {}, "ip_adapter": {}}, saved)
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as source, zipfile.ZipFile(file, "w") as copy:
        for item in source.infolist():
            if item.filename.endswith("/data.pkl"):
                copy.writestr(item.filename, record, compress_type=zipfile.ZIP_DEFLATED)
            else:
                copy.writestr(item, source.read(item.filename))
    assert file.stat().st_size < length // 100
    loads: list[object] = []
    real_load = torch.load

    def counted_load(*args: object, **kwargs: object) -> object:
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", counted_load)
    assert pickle_shapes(file) is None
    assert loads == [], "the record was unpacked"
