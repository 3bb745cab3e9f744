"""Draw the plate shipped in recipes/plates (made by the project, free to redistribute).

A wide frame with two stylised people (the palette of tools/make_recipe_selfies.py, so that the
synthetic face pack detects both faces), standing before a wall with a window. Run from the
repository root: python tools/make_recipe_plate.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_recipe_selfies import PEOPLE, draw

WALL = (96, 110, 128)
SIZE = (760, 420)  # sides not multiples of 8 on purpose: plates come in any size
TILE = 250


def plate() -> Image.Image:
    scene = Image.new("RGB", SIZE, WALL)
    d = ImageDraw.Draw(scene)
    d.rectangle((320, 40, 440, 170), fill=(170, 190, 210))  # a window between the two people
    d.line((380, 40, 380, 170), fill=WALL, width=6)
    for name, x in (("mara", 40), ("theo", 460)):  # the plate's two people, not every person the selfies draw
        skin, hair, eyes, _background, width_ratio, style = PEOPLE[name]
        tile = draw(skin, hair, eyes, WALL, width_ratio, style, 0).resize((TILE, TILE), Image.Resampling.LANCZOS)
        scene.paste(tile, (x, SIZE[1] - TILE))
    return scene


def main() -> None:
    out = Path("recipes/plates")
    out.mkdir(parents=True, exist_ok=True)
    plate().save(out / "two_people.png", optimize=True)


if __name__ == "__main__":
    main()
