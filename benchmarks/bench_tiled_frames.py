"""Frames of three tiles side by side, each a held-out test image of a bundle with a defect-free
class, judged as the app judges a large image or a tiled camera frame.

The bundle's test split (its ``split.json``) gives the tiles, each resized to the model's tile
(its card's training view) and put in a row of three: three defect-free tiles (a known frame),
a defect tile between two defect-free ones, and, with ``--foreign DIR``, an image of another
data set between two defect-free tiles. For each kind of frame:

* accepted as known, with each tile judged at its own unknown threshold against the tile scores
  on the scale of one image (``inspector.tiles.judge_tiles``, ``training.openset.as_one_image``:
  what the app does since 2026-12-06);
* the frame's label from the live camera's analysis (``inspector.camera.analyse``, 317 px tiles
  for the magnetic-tile model) against the mean of its tiles' probabilities (what the camera
  showed before 2026-12-06).

    python benchmarks/bench_tiled_frames.py --model RETRAINED_BUNDLE \\
        --data ../shared/datasets/magnetic-tile --foreign ../shared/datasets/neu-cls \\
        [--json docs/results/bench_tiled_frames.json]

The bundle must have a defect-free class (named like good, ok, free) and its ``split.json``
(any model the wizard or ``inspector retrain`` trained: ``inspector retrain --data
../shared/datasets/magnetic-tile --budget-min 3.5``). Qt-free; LiteRT.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _frames(bundle: Path, data: Path, foreign: Path | None, names: list[str], tile: int,
            seed: int):
    from functools import lru_cache

    from PIL import Image

    from inspector.tiles import defect_free_classes
    from training.bundle import read_split
    from training.images import files_under, is_image_file

    split = (read_split(bundle) or {}).get("test")
    if not split:
        raise SystemExit(f"{bundle}: no split.json with a test split")
    free_names = {names[i] for i in defect_free_classes(names)}
    if not free_names:
        raise SystemExit(f"{bundle}: no defect-free class among {names}")
    free = [r for r in split if r.split("/")[0] in free_names]
    rng = np.random.default_rng(seed)

    @lru_cache(maxsize=None)   # the defect-free side tiles come back frame after frame
    def load(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path).convert("RGB").resize((tile, tile), Image.BILINEAR))

    def row(middle: Path, truth: str | None):
        a, z = rng.choice(free, 2, replace=False)
        return np.concatenate([load(data / a), load(middle), load(data / z)], 1), truth

    frames = {"three defect-free tiles": [], "a defect between two defect-free tiles": [],
              "a foreign image between two defect-free tiles": []}
    for rel in split:
        c = rel.split("/")[0]
        key = "three defect-free tiles" if c in free_names else "a defect between two defect-free tiles"
        frames[key].append(row(data / rel, c))
    if foreign is not None:
        others = [p for p in files_under(foreign) if is_image_file(p)]
        for p in others[::max(1, len(others) // 70)][:70]:
            frames["a foreign image between two defect-free tiles"].append(row(p, None))
    return {k: v for k, v in frames.items() if v}


def measure(bundle: Path, data: Path, foreign: Path | None, seed: int = 0) -> dict:
    from inspector.camera import Frame, LiveConfig, analyse
    from inspector.engine import load_classifier
    from inspector.tiles import TileSettings, judge_prepared, prepare_image

    clf = load_classifier(bundle)
    tile = int(clf.view.tile)
    threshold = clf.unknown_threshold
    out = {"model": str(bundle), "tile": tile, "device": clf.device, "frames": {}}
    for kind, rows in _frames(bundle, data, foreign, list(clf.class_names), tile, seed).items():
        per_tile, on_image, mean_right, deciding_right = [], [], [], []
        for img, truth in rows:
            v = judge_prepared(clf, [prepare_image(clf, img, TileSettings(tile, 0.0))])[0]
            raw = v.tiles.tile_scores if v.tiles.tile_scores is not None else v.tiles.unknown_scores
            per_tile.append(bool(np.max(raw) <= threshold))
            on_image.append(bool(v.known))
            r = analyse(clf, Frame(img, 0, 0.0), LiveConfig(tile=tile))
            if truth is not None:
                names = r.class_names
                mean_right.append(names[int(np.argmax(r.tile_probs.mean(axis=0)))] == truth)
                deciding_right.append(r.label_name == truth)
        res = {"frames": len(rows),
               "accepted_each_tile_at_its_threshold": float(np.mean(per_tile)),
               "accepted_on_one_images_scale": float(np.mean(on_image))}
        if mean_right:
            res["camera_label_right_mean_of_tiles"] = float(np.mean(mean_right))
            res["camera_label_right_deciding_tile"] = float(np.mean(deciding_right))
        out["frames"][kind] = res
        print(f"{kind} ({len(rows)}): accepted {res['accepted_each_tile_at_its_threshold']:.1%} "
              f"-> {res['accepted_on_one_images_scale']:.1%}"
              + (f"; camera label right: mean of tiles {res['camera_label_right_mean_of_tiles']:.1%}, "
                 f"deciding tile {res['camera_label_right_deciding_tile']:.1%}"
                 if mean_right else ""), flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a bundle with a defect-free class and split.json")
    ap.add_argument("--data", required=True, help="the data set it was trained on")
    ap.add_argument("--foreign", help="images of another data set, for the foreign middle tile")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the result here")
    a = ap.parse_args(argv)
    res = measure(Path(a.model), Path(a.data), Path(a.foreign) if a.foreign else None, a.seed)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
