"""Draws the app icon: a brushed steel plate with a scratch, under a magnifying glass.

    python scripts/make_icons.py   ->  resources/icons/inspector.png (256 px) and inspector.ico

The generated files are committed; run this again only to change the icon. Needs Pillow only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZE = 256
SCALE = 4  # drawn 4x larger and shrunk, for smooth edges
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def steel_plate(n: int) -> Image.Image:
    """Brushed-metal texture: horizontal streaks over a light-to-dark diagonal gradient."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    base = 190 - 70 * (0.6 * yy + 0.4 * xx)
    streaks = rng.normal(0, 1, (n, 1)).repeat(n, axis=1)
    streaks = np.asarray(Image.fromarray(((streaks + 4) * 30).clip(0, 255).astype(np.uint8))
                         .filter(ImageFilter.GaussianBlur(radius=(n / 200, 0))), np.float32)
    grey = np.clip(base + (streaks - 120) * 0.18, 0, 255)
    rgb = np.stack([grey * 0.97, grey, grey * 1.04], axis=2).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def draw(size: int = SIZE) -> Image.Image:
    n = size * SCALE
    s = n / 256  # coordinates below are for a 256 px icon

    def box(*v):
        return [x * s for x in v]

    icon = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    # the plate: a rounded square of brushed steel with a dark rim
    mask = Image.new("L", (n, n), 0)
    ImageDraw.Draw(mask).rounded_rectangle(box(12, 12, 244, 244), radius=36 * s, fill=255)
    icon.paste(steel_plate(n), (0, 0), mask)
    d = ImageDraw.Draw(icon)
    d.rounded_rectangle(box(12, 12, 244, 244), radius=36 * s, outline=(52, 60, 72, 255),
                        width=int(8 * s))
    # a defect: a dark scratch across the plate
    d.line(box(44, 78, 96, 60, 150, 70), fill=(58, 56, 60, 255), width=int(7 * s), joint="curve")
    # the magnifying glass: a tinted lens showing the scratch enlarged, then rim and handle
    cx, cy, r = 150 * s, 138 * s, 62 * s
    lens = Image.new("L", (n, n), 0)
    ImageDraw.Draw(lens).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    tint = Image.new("RGBA", (n, n), (120, 190, 255, 90))
    icon.alpha_composite(Image.composite(tint, Image.new("RGBA", (n, n), (0, 0, 0, 0)), lens))
    crack = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    ImageDraw.Draw(crack).line(box(100, 150, 140, 124, 198, 132), fill=(200, 40, 40, 255),
                               width=int(12 * s), joint="curve")
    icon.alpha_composite(Image.composite(crack, Image.new("RGBA", (n, n), (0, 0, 0, 0)), lens))
    d = ImageDraw.Draw(icon)
    d.line([cx + 0.72 * r, cy + 0.72 * r, 238 * s, 226 * s], fill=(30, 34, 40, 255),
           width=int(26 * s))
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(30, 34, 40, 255), width=int(14 * s))
    return icon.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    icon = draw(SIZE)
    icon.save(OUT / "inspector.png", optimize=True)
    icon.save(OUT / "inspector.ico", sizes=ICO_SIZES)
    for p in sorted(OUT.iterdir()):
        print(f"{p} ({p.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
