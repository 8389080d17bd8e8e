"""Whether the app's engine says what the bundle's Keras model says: every image of a data set
through the engine on each LiteRT format of the bundle's inspection export (the format forced,
not measured) and through the same engine on TensorFlow/Keras, compared image by image: the
label, the known/unknown verdict (where the bundle has a detector) and the largest difference
of a calibrated probability.

    python benchmarks/bench_labels.py --data ../shared/datasets/neu-cls \\
        [--model resources/ssdc-mininet] [--json docs/results/bench_labels.json]

The images are decoded once, by the app's own loader, so both sides see the same pixels. A
format the engine would not run (its check on export failed) is reported as not run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMATS = ("fp32", "fp16", "int8")
BATCH = 64


def judge_all(clf, images: np.ndarray):
    probs, known = [], []
    for k in range(0, len(images), BATCH):
        v = clf.judge(images[k:k + BATCH])
        probs.append(v.probs)
        known.append(v.known)
    return np.concatenate(probs), np.concatenate(known)


def compare(model: str, data: str) -> dict:
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"   # both sides on the CPU (before TensorFlow loads)
    from inspector.engine import Classifier, KerasBackend, load_classifier
    from inspector.runtime import GPU_ENV
    from training import data as data_mod
    from training.bundle import load_bundle
    from training.detect import load_detector

    bundle = load_bundle(model)
    ds = data_mod.scan_dataset(data, bundle.class_names, with_digests=False)
    images = data_mod.load_arrays(ds, bundle.input_size, square=bundle.view.square)
    labels = np.asarray(ds.labels)
    keras = Classifier(bundle, KerasBackend(bundle.model), "CPU, TensorFlow", load_detector(model))
    t0 = time.perf_counter()
    k_probs, k_known = judge_all(keras, images)
    k_pred = k_probs.argmax(1)
    result = {"model": model, "title": bundle.title, "data": data, "images": int(len(images)),
              "keras": {"accuracy": round(float((k_pred == labels).mean()), 4),
                        "known": round(float(k_known.mean()), 4),
                        "seconds": round(time.perf_counter() - t0, 1)},
              "formats": {}}
    os.environ[GPU_ENV] = "0"   # the LiteRT path even where a GPU is seen
    for fmt in FORMATS:
        clf = load_classifier(model, measure=lambda f, runner, fmt=fmt: 0.0 if f == fmt else 1.0)
        if getattr(clf, "runtime_format", None) != fmt:
            result["formats"][fmt] = {"usable": False, "device": clf.device}
            continue
        t0 = time.perf_counter()
        probs, known = judge_all(clf, images)
        pred = probs.argmax(1)
        differ = np.flatnonzero(pred != k_pred)
        result["formats"][fmt] = {
            "usable": True,
            "same_labels": int(len(images) - len(differ)),
            "label_agreement": round(float(1 - len(differ) / len(images)), 5),
            "differing_files": [str(ds.files[i]) for i in differ[:20]],
            "same_known_verdict": int((known == k_known).sum()),
            "accuracy": round(float((pred == labels).mean()), 4),
            "max_prob_diff": float(np.abs(probs - k_probs).max()),
            "seconds": round(time.perf_counter() - t0, 1)}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "ssdc-mininet"))
    ap.add_argument("--data", required=True)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    r = compare(args.model, args.data)
    k = r["keras"]
    print(f"{r['title']} on {r['images']} images of {r['data']}: Keras accuracy "
          f"{k['accuracy'] * 100:.2f}%, {k['known'] * 100:.1f}% accepted as known")
    for fmt, f in r["formats"].items():
        if not f["usable"]:
            print(f"  {fmt}: not run: the engine would not use it ({f['device']})")
            continue
        print(f"  {fmt}: same label {f['same_labels']}/{r['images']}, same known/unknown verdict "
              f"{f['same_known_verdict']}/{r['images']}, accuracy {f['accuracy'] * 100:.2f}%, "
              f"largest probability difference {f['max_prob_diff']:.2g}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
