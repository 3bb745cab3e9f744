"""Write a feature film's previs shot list at full size, for measuring idcli at film scale.

python tools/make_film_shotlist.py OUT_DIR [--shots 3000] [--characters 45] [--plates 20] [--size 64x64]

Writes OUT_DIR/film.yaml, OUT_DIR/selfies/ (two drawn selfies per character, the faces the tiny presets'
synthetic face pack detects, drawn as tools/make_recipe_selfies.py draws them) and OUT_DIR/plates/ (the
recipe's two-person plate). The shot list uses the tiny-sd preset: scenes of 20-40 shots, 1-4 takes per
shot, one shot in five a two-shot, every expression family, framings as scripts write them, durations, and
`--plates` plate shots. Everything is derived from the shot's index, so the same arguments write the same
file (docs/performance.md, "At film scale").
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from make_recipe_selfies import draw

EXPRESSIONS = ["worry", "joy", "hope", "fear", "anger", "grief", "surprise", "dread", "relief", "neutral"]
FRAMINGS = ["close-up", "MS", "wide", "full-body", "medium shot", None]
PLACES = ["a wet neon street at night", "a small bar, warm light", "a lighthouse gallery at dusk",
          "a hospital corridor", "a moving train", "a kitchen at dawn", "a rooftop in the rain"]


def not_skin(rng: random.Random) -> tuple[int, int, int]:
    """A colour well outside the synthetic detector's skin band (hair, eyes, background)."""
    while True:
        r, g, b = rng.randint(10, 230), rng.randint(10, 230), rng.randint(10, 230)
        if not (15 <= r - g <= 86 and 2 <= g - b <= 66):
            return r, g, b


def character_look(index: int) -> tuple:
    """A distinct drawn person per index, skin inside the synthetic detector's skin band."""
    rng = random.Random(index)
    r = rng.randint(160, 230)
    g = r - rng.randint(38, 55)
    skin = (r, g, g - rng.randint(25, 40))
    return skin, not_skin(rng), not_skin(rng), not_skin(rng), rng.uniform(0.55, 0.62), rng.choice(["long", "short"])


def write_film(out: Path, shots: int, characters: int, plates: int, size: str) -> Path:
    (out / "selfies").mkdir(parents=True, exist_ok=True)
    (out / "plates").mkdir(parents=True, exist_ok=True)
    plate_source = Path(__file__).resolve().parent.parent / "recipes" / "plates" / "two_people.png"
    shutil.copyfile(plate_source, out / "plates" / "two_people.png")
    names = [f"c{i:02d}" for i in range(characters)]
    lines = ["version: 1", "project: film", "model: {preset: tiny-sd}",
             f"defaults: {{size: {size}, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 2}}", "characters:"]
    for i, name in enumerate(names):
        selfies = []
        for variant in (0, 1):
            path = out / "selfies" / f"{name}_{variant + 1}.jpg"
            if not path.exists():
                draw(*character_look(i), variant).save(path, quality=90)
            selfies.append(f"selfies/{path.name}")
        lines += [f"  {name}:", f"    selfies: [{', '.join(selfies)}]", f"    description: person number {i}"]
    lines.append("shots:")
    rng = random.Random(2026)
    scene, shot_in_scene, scene_length = 1, 0, rng.randint(20, 40)
    plate_every = max(1, shots // plates) if plates else 0
    for index in range(shots):
        if shot_in_scene == scene_length:
            scene, shot_in_scene, scene_length = scene + 1, 0, rng.randint(20, 40)
        shot_in_scene += 1
        shot_id = f"sc{scene:03d}_sh{shot_in_scene * 10:04d}"
        first, second = rng.sample(names, 2)
        place = rng.choice(PLACES)
        expression = rng.choice(EXPRESSIONS)
        lines.append(f"  - id: {shot_id}")
        if plate_every and index % plate_every == plate_every - 1:
            lines += [f'    prompt: "{{{first}}} and {{{second}}} stand before a window in a grey room"',
                      "    plate: plates/two_people.png", f"    expression: {expression}", "    takes: 1"]
            continue
        if index % 5 == 4:
            lines += [f'    prompt: "{{{first}}} and {{{second}}} talk in {place}, film still"',
                      f"    expressions: {{{first}: {expression}, {second}: {rng.choice(EXPRESSIONS)}}}"]
        else:
            lines += [f'    prompt: "{{{first}}} in {place}, cinematic"', f"    expression: {expression}"]
        framing = rng.choice(FRAMINGS)
        if framing:
            lines.append(f"    framing: {framing}")
        takes = rng.choice([1, 2, 2, 3, 4])
        if takes != 2:
            lines.append(f"    takes: {takes}")
        if index % 7 == 0:
            lines.append(f"    duration: {rng.choice([1.5, 2, 4, 6])}")
    path = out / "film.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shots", type=int, default=3000)
    parser.add_argument("--characters", type=int, default=45)
    parser.add_argument("--plates", type=int, default=20)
    parser.add_argument("--size", default="64x64")
    args = parser.parse_args()
    print(write_film(args.out, args.shots, args.characters, args.plates, args.size))


if __name__ == "__main__":
    main()
