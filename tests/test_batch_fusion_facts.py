"""What a dual-line image records of its fusion masks does not depend on its batch (docs/architecture.md, "Batch
composition"): a job whose fusion window closes early, batched with one whose window stays open longer, records the
masks it was fused with, as it does rendered alone, not masks its batch-mate's window went on accumulating."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import plan_on_cpu

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: fusion-facts
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 8, guidance: 4.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: early
    prompt: "close-up of {mara} at the dinner table, candle light"
    method_params: {fusion_end: 0.4}
  - id: late
    prompt: "{mara} and {theo} walk on a wet street at night"
"""

# The coverage is a mean rounded to 4 places; batched, the attention it is made from differs by float rounding only.
ROUNDING = 1e-3


def test_a_job_records_the_masks_it_was_fused_with_whatever_its_batch(write_shotlist, tiny_engines) -> None:
    plan = plan_on_cpu(write_shotlist(SHOTS))
    engine = tiny_engines("tiny-sd", plan.adapter)
    requests = [job.request for job in plan.jobs]
    alone = [engine.render([request], capture_masks=True)[0] for request in requests]
    together = engine.render(requests, capture_masks=True)
    early_window = alone[0].facts["fusion"]["window"]
    assert early_window[1] < alone[1].facts["fusion"]["window"][1]  # the early job's window closes first
    for single, batched in zip(alone, together, strict=True):
        one, both = single.facts["fusion"], batched.facts["fusion"]
        assert both["window"] == one["window"]
        assert both["mask_coverage"] == pytest.approx(one["mask_coverage"], abs=ROUNDING)
        for mine, theirs in zip(one["characters"], both["characters"], strict=True):
            assert theirs["mask_coverage"] == pytest.approx(mine["mask_coverage"], abs=ROUNDING), mine["name"]
        # --save-masks' frames after the window closed show the mask it was fused with, not a later one.
        for frame, batched_frame in zip(single.facts["mask_frames"], batched.facts["mask_frames"], strict=True):
            assert np.abs(frame["mask"] - batched_frame["mask"]).max() <= ROUNDING, frame["step"]

