"""`idcli models fetch`'s one-time conversion of a pickled adapter to safetensors (model_setup.convert_pickled_adapter)
on pickles a weights-only load reads but safetensors cannot write as they are: tensors sharing memory (tied weights,
a view inside another: ``torch.save`` keeps them shared), and a value that is no tensor. Each was a traceback from
the conversion; the first now converts, value for value, the second is refused naming the key. h94's published
files (two groups, ``image_proj`` and ``ip_adapter`` with the FaceID LoRA inside, docs/models.md) convert as before,
byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from idcli.errors import ModelUnavailableError
from idcli.model_setup import convert_pickled_adapter


def _published_layout() -> dict[str, dict[str, torch.Tensor]]:
    """A small checkpoint in h94's pickle layout: the projection, and per attention layer the LoRA (and on the cross-
    attention ones to_k_ip/to_v_ip) under ``ip_adapter``, numbered as diffusers numbers its processors; fp16, as
    published (the hub lists ``torch.HalfStorage`` among their pickle imports)."""
    generator = torch.Generator().manual_seed(0)

    def weight(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).half()

    ip_adapter = {}
    for layer in range(4):
        for proj in ("to_q", "to_k", "to_v", "to_out"):
            ip_adapter[f"{layer}.{proj}_lora.down.weight"] = weight(2, 8)
            ip_adapter[f"{layer}.{proj}_lora.up.weight"] = weight(8, 2)
        if layer % 2:
            ip_adapter[f"{layer}.to_k_ip.weight"] = weight(8, 6)
            ip_adapter[f"{layer}.to_v_ip.weight"] = weight(8, 6)
    return {"image_proj": {"proj.0.weight": weight(12, 4), "norm.weight": weight(6), "norm.bias": weight(6)},
            "ip_adapter": ip_adapter}


def _flat(nested: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{group}.{key}": value for group, entries in nested.items() for key, value in entries.items()}


def test_tensors_sharing_memory_convert_to_the_same_values(tmp_path: Path) -> None:
    """A pickle holding one tensor under two keys (tied weights) or a view inside another tensor loads weights-only
    with the memory still shared, and safetensors refuses to write overlapping tensors: the conversion ended in
    safetensors' RuntimeError ("Some tensors share memory"), a traceback from `models fetch`, for a file the render
    reads with allow_pickle. Each such tensor is now written as its own copy: the same values."""
    nested = _published_layout()
    entries = nested["ip_adapter"]
    entries["3.to_v_ip.weight"] = entries["1.to_v_ip.weight"]  # tied: one tensor, two keys
    whole = entries["1.to_k_ip.weight"]
    entries["3.to_k_ip.weight"] = whole[2:6]  # a view inside another tensor (4 of its 8 rows)
    torch.save(nested, tmp_path / "shared.bin")
    entry = convert_pickled_adapter(tmp_path / "shared.bin", tmp_path / "shared.safetensors")
    converted = load_file(tmp_path / "shared.safetensors")
    assert entry["tensors"] == len(converted) == len(_flat(nested))
    assert all(torch.equal(converted[key], value) and converted[key].dtype == torch.float16
               for key, value in _flat(nested).items())


def test_the_published_layout_converts_whole_and_as_before(tmp_path: Path) -> None:
    """Every key of both groups, the LoRA inside ``ip_adapter`` included, and no copy where nothing is shared: the
    converted bytes (whose sha256 keys the jobs) are those of safetensors writing the tensors as loaded."""
    from safetensors.torch import save

    from idcli.engine.faceid_layout import canonical_safetensors

    nested = _published_layout()
    torch.save(nested, tmp_path / "published.bin")
    convert_pickled_adapter(tmp_path / "published.bin", tmp_path / "published.safetensors")
    expected = canonical_safetensors(save(_flat(nested), metadata={"format": "pt",
                                                                   "idcli.converted_from": "published.bin"}))
    assert (tmp_path / "published.safetensors").read_bytes() == expected


@pytest.mark.parametrize(("value", "named"), [(1.0, "a float"), ({"nested": torch.zeros(1)}, "a dict")])
def test_a_value_that_is_no_tensor_is_refused_naming_it(tmp_path: Path, value: object, named: str) -> None:
    """A value other than a tensor in a group (a weights-only load reads numbers, strings and dicts too) met
    ``value.contiguous()`` before the check meant for it: AttributeError ('float' object has no attribute
    'contiguous'), a traceback. Refused now as the check meant, naming the key and what it holds; nothing written."""
    nested: dict[str, dict[str, object]] = {**_published_layout()}
    nested["ip_adapter"] = {**nested["ip_adapter"], "scale": value}
    torch.save(nested, tmp_path / "odd.bin")
    with pytest.raises(ModelUnavailableError) as info:
        convert_pickled_adapter(tmp_path / "odd.bin", tmp_path / "odd.safetensors")
    says = f"'{tmp_path / 'odd.bin'}' holds something other than tensors: ip_adapter.scale is {named}"
    assert says in str(info.value), str(info.value)
    assert not (tmp_path / "odd.safetensors").exists()
