"""The app's engine (not the Keras model) on images the bundle never trained on: its test split,
the same images under every camera shift of ``training.shifts`` (accuracy and the share
accepted as known) and a folder of foreign images (AUROC of the unknown score against the test
split, FPR at 95% TPR, share flagged, share labelled >= 80% and not flagged), for each LiteRT
format the engine may run (the format forced, not measured). The foreign folder is read twice:
every image whole, squeezed into the model's view (as ``python -m training evaluate`` reads it),
and as the app reads it (``unknown_as_app``: larger images in tiles at the model's scale).

    python benchmarks/bench_engine_unseen.py --data ../shared/datasets/neu-cls \\
        --unknown ../shared/datasets/magnetic-tile [--model resources/ssdc-mininet] [--json F]

``python -m training robustness`` and ``benchmarks/bench_openset.py`` measure the same on the
Keras model with the numpy detector; this checks that what the app runs says the same.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class EngineJudge:
    """``training.robustness.evaluate_robustness``'s predictor, on the app's engine."""

    def __init__(self, clf):
        self.clf, self.class_names = clf, clf.class_names

    def predict(self, x):
        return self.clf.judge(x).probs

    def judge(self, x):
        v = self.clf.judge(x)
        return v.probs, v.known


def measure(model: str, data: str, unknown: str, fmt: str) -> dict:
    from inspector.engine import load_classifier
    from training import data as data_mod
    from training.calibration import auroc, fpr_at_tpr
    from training.robustness import evaluate_robustness

    clf = load_classifier(model, measure=lambda f, r: 0.0 if f == fmt else 1.0)
    if clf.runtime_format != fmt:
        return {"run": False, "device": clf.device}
    ds = data_mod.scan_dataset(data, clf.class_names, with_digests=False)
    (test,) = data_mod.bundle_split(ds, model, ["test"])
    sub = ds.subset(test)
    x = data_mod.load_arrays(sub, clf.input_size, square=clf.view.square)
    rob = evaluate_robustness(EngineJudge(clf), x, sub.labels)
    out = {"run": True, "device": clf.device,
           "unknown_score_in_graph": bool(getattr(clf.backend, "graph_score", False)),
           "test_images": int(len(x)), "clean": rob["clean"],
           "mean_shifted_accuracy": float(np.mean([s["accuracy"] for s in rob["shifts"]])),
           "shifts": rob["shifts"]}
    if clf.detector is not None:
        out["mean_shifted_known"] = float(np.mean([s["known"] for s in rob["shifts"]]))
        known = clf.judge(x)
        uds = data_mod.scan_dataset(unknown, with_digests=False)
        ux = data_mod.load_arrays(uds, clf.input_size, square=clf.view.square)
        u = clf.judge(ux)
        out["unknown"] = {"folder": unknown, "images": int(len(ux)),
                          "auroc": auroc(known.unknown_scores, u.unknown_scores),
                          "fpr_at_95_tpr": fpr_at_tpr(known.unknown_scores, u.unknown_scores),
                          "flagged": float(np.mean(~u.known)),
                          "labelled_80_not_flagged": float(np.mean((u.probs.max(1) >= 0.8)
                                                                   & u.known))}
        out["unknown_as_app"] = as_the_app_reads(clf, sub.files, uds.files)
    return out


def as_the_app_reads(clf, known_files, unknown_files) -> dict:
    """The same comparison with every image read as the app reads it (``inspector.tiles``:
    whole up to the model's largest training image, larger ones in tiles at its scale, the
    image's score its least known tile's on the scale of one image)."""
    from inspector import tiles
    from training.calibration import auroc, fpr_at_tpr

    settings = tiles.TileSettings()

    def read(files):
        prepared = [tiles.load_prepared(clf, settings, f) for f in files]
        return prepared, tiles.judge_prepared(clf, prepared)

    _, kv = read(known_files)
    up, uv = read(unknown_files)
    ks = np.array([v.unknown_score for v in kv], np.float64)
    us = np.array([v.unknown_score for v in uv], np.float64)
    uk = np.array([v.known for v in uv], bool)
    confident = np.array([float(np.max(v.probs)) >= 0.8 for v in uv], bool)
    tiled = np.array([p.tiles is not None for p in up], bool)
    out = {"known_accepted": float(np.mean([v.known for v in kv])),
           "images": int(len(uv)), "tiled": float(tiled.mean()),
           "auroc": auroc(ks, us), "fpr_at_95_tpr": fpr_at_tpr(ks, us),
           "flagged": float(np.mean(~uk)),
           "labelled_80_not_flagged": float(np.mean(confident & uk))}
    for name, part in (("whole", ~tiled), ("in_tiles", tiled)):
        if part.any():
            out[name] = {"images": int(part.sum()), "auroc": auroc(ks, us[part]),
                         "flagged": float(np.mean(~uk[part]))}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(ROOT / "resources" / "ssdc-mininet"))
    ap.add_argument("--data", required=True, help="the bundle's training data (its test split)")
    ap.add_argument("--unknown", required=True, help="a folder of foreign images (class folders)")
    ap.add_argument("--formats", nargs="+", default=["fp32", "fp16", "int8"])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = {"model": args.model, "formats": {}}
    for fmt in args.formats:
        r = res["formats"][fmt] = measure(args.model, args.data, args.unknown, fmt)
        if not r["run"]:
            print(f"{fmt}: not run ({r['device']})")
            continue
        line = (f"{fmt}: test {r['clean']['accuracy']:.2%} right"
                + (f", {r['clean']['known']:.1%} accepted" if "known" in r["clean"] else "")
                + f"; {len(r['shifts'])} shifts: mean {r['mean_shifted_accuracy']:.2%} right")
        if "unknown" in r:
            u = r["unknown"]
            line += (f", {r['mean_shifted_known']:.1%} accepted; unknown {u['images']} images: "
                     f"AUROC {u['auroc']:.4f}, FPR95 {u['fpr_at_95_tpr']:.1%}, flagged "
                     f"{u['flagged']:.1%}, labelled >= 80% and not flagged "
                     f"{u['labelled_80_not_flagged']:.1%}")
        print(line + f" [score in the graph: {r.get('unknown_score_in_graph')}]")
        if "unknown_as_app" in r:
            a = r["unknown_as_app"]
            print(f"  read as the app reads them ({a['tiled']:.1%} of the unknown images in tiles): "
                  f"test {a['known_accepted']:.1%} accepted; AUROC {a['auroc']:.4f}, FPR95 "
                  f"{a['fpr_at_95_tpr']:.1%}, flagged {a['flagged']:.1%}, labelled >= 80% and "
                  f"not flagged {a['labelled_80_not_flagged']:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
