"""Cost of the per-row FaceID LoRA: UNet forwards of bench-sd15 (SD1.5 architecture, random weights).

    PYTHONPATH=. OMP_NUM_THREADS=2 python tools/measure_faceid_lora.py [--size 256] [--rows 2] [--repeats 3]

Compares one UNet forward (float32, CPU) with no adapter, with the adapter and its LoRA at strength 0
(a text-only batch: LoRA skipped), at strength 1 (LoRA applied to every row), and with an adapter
without a LoRA at strength 1. Prints the median seconds of each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from idcli.engine.build import build_random_pipeline
from idcli.engine.faceid import faceid_unet_kwargs
from idcli.engine.faceid_layout import FACEID_EMBED_DIM, write_random_faceid_adapter
from idcli.engine.faceid_loading import load_faceid_adapter, unload_faceid_adapter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="bench-sd15")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pipe = build_random_pipeline(args.preset)
    unet = pipe.unet
    g = torch.Generator().manual_seed(0)
    latent = args.size // 8
    sample = torch.randn(args.rows, 4, latent, latent, generator=g)
    text = torch.randn(args.rows, 77, unet.config.cross_attention_dim, generator=g)
    embeds = torch.nn.functional.normalize(torch.randn(args.rows, FACEID_EMBED_DIM, generator=g), dim=-1)

    def timed(kwargs: dict) -> float:
        times = []
        with torch.inference_mode():
            for _ in range(args.repeats + 1):  # the first call warms up
                start = time.perf_counter()
                unet(sample, 500, encoder_hidden_states=text, return_dict=False, **kwargs)
                times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    results = {"no adapter": timed({})}
    with tempfile.TemporaryDirectory() as folder:
        for lora in (True, False):
            name = f"faceid-{lora}.safetensors"
            write_random_faceid_adapter(unet, Path(folder) / name, seed=1, lora=lora)
            state = load_faceid_adapter(pipe, folder, name)
            label = "adapter + LoRA" if lora else "adapter, no LoRA"
            if lora:
                state.row_scale = 0.0
                results[f"{label}, strength 0"] = timed(faceid_unet_kwargs(embeds))
            state.row_scale = 1.0
            results[f"{label}, strength 1"] = timed(faceid_unet_kwargs(embeds))
            unload_faceid_adapter(pipe)
    print(f"{args.preset}, {args.size}x{args.size}, {args.rows} rows, float32 CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats}")
    for label, seconds in results.items():
        print(f"  {label:<32} {seconds:.3f} s")


if __name__ == "__main__":
    main()
