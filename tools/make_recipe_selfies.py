"""Draw the stylised selfies shipped in recipes/selfies (made by the project, free to redistribute).

Run from the repository root: python tools/make_recipe_selfies.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

PEOPLE = {
    # name: (skin, hair, eyes, background, face width ratio, hair style)
    "mara": ((224, 182, 150), (120, 40, 30), (60, 90, 60), (90, 120, 160), 0.58, "long"),
    "theo": ((170, 120, 90), (30, 25, 20), (50, 35, 25), (160, 140, 110), 0.62, "short"),
    "ines": ((205, 160, 125), (215, 185, 100), (70, 100, 140), (120, 150, 110), 0.56, "long"),
}


def draw(skin, hair, eyes, background, width_ratio, style, variant: int) -> Image.Image:
    size = 512
    img = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(img)
    cx, cy = size // 2 + variant * 6, size // 2 + 10
    fw, fh = int(size * width_ratio / 2), int(size * 0.36)
    if style == "long":
        d.rounded_rectangle((cx - fw - 30, cy - fh - 30, cx + fw + 30, cy + fh + 120), 80, fill=hair)
    d.rectangle((cx - 45, cy + fh - 20, cx + 45, size), fill=skin)  # neck
    d.ellipse((cx - fw, cy - fh, cx + fw, cy + fh), fill=skin)
    d.chord((cx - fw - 6, cy - fh - 20, cx + fw + 6, cy + (10 if style == "short" else -30)), 180, 360, fill=hair)
    for side in (-1, 1):
        ex = cx + side * int(fw * 0.42)
        ey = cy - int(fh * 0.12)
        d.ellipse((ex - 26, ey - 13, ex + 26, ey + 13), fill=(245, 245, 240))
        d.ellipse((ex - 11, ey - 11, ex + 11, ey + 11), fill=eyes)
        d.ellipse((ex - 4, ey - 4, ex + 4, ey + 4), fill=(10, 10, 10))
        d.line((ex - 30, ey - 32 - variant * 3, ex + 30, ey - 36), fill=hair, width=8)  # brows
    d.polygon([(cx, cy - 5), (cx - 16, cy + 55), (cx + 16, cy + 55)], fill=tuple(max(0, c - 25) for c in skin))
    smile = 20 + variant * 8
    d.arc((cx - 55, cy + 60 - smile // 2, cx + 55, cy + 95 + smile // 2), 15, 165, fill=(150, 50, 50), width=7)
    return img.filter(ImageFilter.GaussianBlur(1.2))


def main() -> None:
    out = Path("recipes/selfies")
    out.mkdir(parents=True, exist_ok=True)
    for name, look in PEOPLE.items():
        for variant in (0, 1):
            draw(*look, variant).save(out / f"{name}_{variant + 1}.jpg", quality=90)


if __name__ == "__main__":
    main()
