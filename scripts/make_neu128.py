"""A coarser camera's copy of a data set, to check the wizard's native-resolution training.

    python scripts/make_neu128.py --data ../shared/datasets/neu-cls --out /tmp/neu128 [--side 128]

writes OUT/<class>/<name>.jpg: each image read as grey (NEU is grey; colour is not kept),
area-averaged to SIDE x SIDE and saved as JPEG quality 95 (what a camera with fewer pixels
would give), and OUT-up/<class>/<name>.png: the same
JPEG images upsampled back to 200 px (bilinear, lossless). The wizard trains on the first at
SIDE px (its native resolution) and on the second at the start model's 200 px, so the two runs
differ only in the resolution it trains at (docs/retraining.md, 2026-12-06).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder with one sub-folder per class")
    ap.add_argument("--out", required=True, help="the SIDE-px copy; OUT-up gets the upsampled one")
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--up", type=int, default=200, help="the upsampled copy's side")
    args = ap.parse_args(argv)
    src, small_dir = Path(args.data), Path(args.out)
    up_dir = small_dir.with_name(small_dir.name + "-up")
    count = 0
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        (small_dir / d.name).mkdir(parents=True, exist_ok=True)
        (up_dir / d.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(p for p in d.iterdir() if p.suffix.lower() in SUFFIXES):
            im = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if im is None:
                print(f"{f}: not readable as an image, left out", file=sys.stderr)
                continue
            jpg = small_dir / d.name / (f.stem + ".jpg")
            png = up_dir / d.name / (f.stem + ".png")
            ok = cv2.imwrite(str(jpg), cv2.resize(im, (args.side, args.side),
                                                  interpolation=cv2.INTER_AREA),
                             [cv2.IMWRITE_JPEG_QUALITY, 95])
            small = cv2.imread(str(jpg), cv2.IMREAD_GRAYSCALE) if ok else None
            up = None if small is None else cv2.resize(small, (args.up, args.up),
                                                       interpolation=cv2.INTER_LINEAR)
            if up is None or not cv2.imwrite(str(png), up):
                print(f"{f}: could not be written to {jpg} and {png}", file=sys.stderr)
                return 1
            count += 1
    print(f"{count} images: {small_dir} ({args.side} px), {up_dir} ({args.up} px)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
