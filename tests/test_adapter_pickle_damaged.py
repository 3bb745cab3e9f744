"""A damaged allowed pickle (`model.allow_pickle: true`) that torch's weights-only unpickler fails on with something
other than an UnpicklingError: plan and validate read its shapes (idcli/adapter_pickle.py) and the render loads it
(engine/faceid_loading.py). torch's weights-only unpickler raises AssertionError, IndexError or TypeError for a
malformed ``data.pkl`` inside an otherwise good torch zip, which both let through as a traceback."""

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
