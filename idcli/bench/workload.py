"""What ``idcli bench`` renders: the preset an ``--arch`` names, and the shot list written for it.

No torch here. The shot list is an ordinary one, rendered by ``idcli.run.render`` like any other, so
the bench times the very path ``idcli render`` takes: validation, identities, planning, batching,
the engine, PNG encoding, sidecars and atomic writes.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..option_words import Option
from ..presets import get_preset

# --arch -> the preset rendered. sd15 and sdxl are the published architectures with random weights.
# The shot list itself names the arch (its schema lists only user-facing presets, and every arch is one);
# the bench preset replaces it at render time, exactly as ``--preset`` does.
ARCHS = {"sd15": "bench-sd15", "sdxl": "bench-sdxl", "tiny-sd": "tiny-sd", "tiny-sdxl": "tiny-sdxl"}
METHODS = ("single", "dual-line")
MAX_JOBS = 10_000
MAX_STEPS = 200

CHARACTER = "mara"
SELFIES = ("mara_1.jpg", "mara_2.jpg")
NEGATIVE_PROMPT = "blurry, deformed, extra fingers"
# Varied prompts, so text encoding is not one cached string; each names the character, so every job
# goes through the FaceID adapter.
_SCENES = (
    "stands on a wet neon street at night, rain, cinematic",
    "close-up, neon light on her face, rain drops",
    "walks towards a lonely lighthouse at dusk, wide shot",
    "waits in a small bar, warm light, film still",
    "runs across a bridge in the fog, medium shot",
    "sits by a window in the morning, soft light",
    "looks over the harbour at sunset, golden light",
    "turns in a dark corridor, dramatic rim light",
)


@dataclass(frozen=True)
class Workload:
    arch: str
    preset: str
    jobs: int
    width: int
    height: int
    steps: int
    guidance: float
    sampler: str
    method: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` as a shot list's ``size:`` allows it (sides multiples of 8, 64..4096, within the pixel budget)."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*", text)
    if not match:
        raise InputError(Option("size", text), ": give WIDTHxHEIGHT, e.g. 1024x1024")
    width, height = int(match.group(1)), int(match.group(2))
    check_size(width, height, text)
    return width, height


def check_size(width: int, height: int, given: str | tuple[int, int]) -> None:
    """Refuse a size a shot list would refuse, naming it as ``given`` (``--size``'s text or ``size=``'s tuple) and
    suggesting what the shot list suggests (shotlist.size_problem), in the same form."""
    from ..shotlist import size_problem

    problem = size_problem(width, height)
    if problem is None:
        return
    rule, lead, sizes = problem
    choices: list[Any] = []
    for size in sizes:
        w, h = (int(side) for side in size.split("x"))
        choices += [" or "] * bool(choices) + [Option("size", size if isinstance(given, str) else (w, h))]
    raise InputError(Option("size", given), f": {rule} ({lead}: ", *choices, ")")


def nearest_hint(word: str, allowed: Any) -> str:
    """`` (did you mean sd15?)`` for a mistyped choice, else nothing."""
    from ..suggest import closest

    near = closest(str(word), list(allowed), n=1)
    return f" (did you mean {near[0]}?)" if near else ""


def make_workload(arch: str, jobs: int, steps: int | None = None, size: tuple[int, int] | None = None,
                  method: str = "single") -> Workload:
    """The workload of one bench run; unset steps and size take the preset's defaults."""
    if arch not in ARCHS:
        raise InputError(Option("arch", arch), f": allowed: {', '.join(ARCHS)}{nearest_hint(arch, ARCHS)}")
    check_workload(jobs, steps, size, method)
    preset = get_preset(ARCHS[arch])
    width, height = size or preset.size
    # The preset's guidance, which is on (> 1) for every preset: two UNet rows per image, as in production.
    return Workload(arch, preset.name, jobs, width, height, steps or preset.steps, preset.guidance, preset.sampler,
                    method)


def check_workload(jobs: int, steps: int | None = None, size: tuple[int, int] | None = None,
                   method: str = "single") -> None:
    """Refuse what ``make_workload`` would refuse whatever the arch: ``idcli bench`` checks it before its default
    arch (auto) asks torch for a GPU, so a typo is refused in a moment, not after torch's import."""
    if not 1 <= jobs <= MAX_JOBS:
        raise InputError(Option("jobs", jobs), f": give 1..{MAX_JOBS}")
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise InputError(Option("steps", steps), f": give 1..{MAX_STEPS}")
    if method not in METHODS:
        raise InputError(Option("method", method), f": allowed: {', '.join(METHODS)}{nearest_hint(method, METHODS)}")
    if size is not None:
        check_size(size[0], size[1], size)


def recipe_selfies() -> Path:
    """The recipe selfies (recipes/selfies in the source tree), drawn by the project, free to use."""
    folder = Path(__file__).resolve().parents[2] / "recipes" / "selfies"
    missing = [name for name in SELFIES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"idcli bench needs the recipe selfies ({', '.join(SELFIES)}) in {folder}; "
                         "run it from a source checkout (pip install -e .)")
    return folder


def write_shotlist(workload: Workload, folder: Path, name: str = "shots.yaml", jobs: int | None = None,
                   steps: int | None = None) -> Path:
    """Write the bench's shot list (and a copy of the selfies beside it) into ``folder``.

    One shot per job, all of one size, steps, guidance and sampler, so the planner puts them in one
    batch group; ``jobs`` and ``steps`` override the workload's (the warm-up renders fewer, shorter jobs).
    """
    import yaml

    from ..store import atomic_write

    selfies = folder / "selfies"
    if not selfies.is_dir():
        shutil.copytree(recipe_selfies(), selfies)
    defaults: dict[str, Any] = {
        "size": f"{workload.width}x{workload.height}", "steps": steps or workload.steps,
        "guidance": workload.guidance, "sampler": workload.sampler, "negative_prompt": NEGATIVE_PROMPT, "takes": 1,
        "method": workload.method}  # written even for 'single': the schema's default method is another one
    doc = {
        "version": 1,
        "project": "bench",
        "model": {"preset": workload.arch},
        "defaults": defaults,
        "characters": {CHARACTER: {"selfies": [f"selfies/{s}" for s in SELFIES],
                                   "description": "a red-haired woman in a grey raincoat"}},
        "shots": [{"id": f"bench{i + 1:05d}", "prompt": f"{{{CHARACTER}}} {_SCENES[i % len(_SCENES)]}"}
                  for i in range(jobs or workload.jobs)],
    }
    path = folder / name
    # renamed into place (a link planted in a --keep folder after its check is replaced, not written through)
    atomic_write(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8"))
    return path
