"""Review's LittleCMS transform (idcli/display_colour.py) is built once per profile in a process, not per take: a
200-take review of one plate's takes built the same Display P3 → sRGB transform 200 times (docs/performance.md,
"Converting a tagged take to sRGB for review"). The cache is bounded, keyed by the profile's bytes, and changes no
converted value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from colour_profiles import ADOBE_RGB, DISPLAY_P3, icc_rgb_profile
from PIL import Image

from idcli import display_colour
from idcli.display_colour import to_srgb


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The profiles a transform is built from, in order, with the process's cache emptied before and after."""
    built: list[bytes] = []
    build = display_colour.transform_to_srgb

    def counting(profile: bytes, mode: str = "RGB") -> Any:
        built.append(profile)
        return build(profile, mode)

    monkeypatch.setattr(display_colour, "transform_to_srgb", counting)
    display_colour.clear_transform_cache()
    yield built
    display_colour.clear_transform_cache()


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 40, 3), dtype=np.uint8)


def test_one_profiles_transform_is_built_once_for_many_takes(builds: list[bytes]) -> None:
    uncached = [display_colour.transform_to_srgb(DISPLAY_P3).apply(Image.fromarray(_pixels(seed), "RGB"))
                for seed in range(3)]
    builds.clear()
    converted = [to_srgb(_pixels(seed), DISPLAY_P3) for seed in range(3)]
    assert builds == [DISPLAY_P3]  # three takes, one transform
    assert all(np.array_equal(c, np.asarray(u)) for c, u in zip(converted, uncached, strict=True))
    # Equal bytes are the same profile (the key is their hash), however the caller came by them.
    to_srgb(_pixels(4), bytes(bytearray(DISPLAY_P3)))
    assert builds == [DISPLAY_P3]
    to_srgb(_pixels(5), ADOBE_RGB)
    assert builds == [DISPLAY_P3, ADOBE_RGB]


def test_a_refused_profile_is_remembered_and_still_leaves_the_pixels_as_they_are(builds: list[bytes]) -> None:
    pixels = _pixels(0)
    broken = b"not a profile" * 20
    assert to_srgb(pixels, broken) is pixels
    assert to_srgb(pixels, broken) is pixels
    assert builds == [broken]


def test_the_cache_is_bounded_and_drops_the_least_recently_used(builds: list[bytes]) -> None:
    size = display_colour.TRANSFORM_CACHE_SIZE
    profiles = [icc_rgb_profile(f"profile {k}", (0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419),
                                (0.1571, 0.0666, 0.7841), 2.0 + k / 64) for k in range(size + 1)]
    for profile in profiles[:size]:
        to_srgb(_pixels(0), profile)
    to_srgb(_pixels(0), profiles[0])  # used again: the most recent now
    to_srgb(_pixels(0), profiles[size])  # one more than the cache holds: profiles[1] goes
    builds.clear()
    to_srgb(_pixels(0), profiles[0])
    assert builds == []
    to_srgb(_pixels(0), profiles[1])
    assert builds == [profiles[1]]
