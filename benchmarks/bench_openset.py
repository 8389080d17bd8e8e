"""Writes the unknown-verdict tables of the README for the data at hand: a bundle's detector and
temperature on its own test split (acceptance, accuracy on accepted images, ECE and NLL before and
after temperature scaling) and against each folder of unknown images (AUROC, FPR at 95% TPR, the
share labelled >= 80% and not flagged), plus the leave-one-class-out table of a
``python -m training openset --json`` result when one is given.

    python benchmarks/bench_openset.py --model resources/ssdc-mininet \\
        --data ../shared/datasets/neu-cls --unknown tiles=../shared/datasets/magnetic-tile \\
        [--unknown NAME=DIR ...] [--openset docs/results/openset.json] \\
        [--json docs/results/bench_openset.json] [--markdown docs/results/bench_openset.md]

The known images are the bundle's test split (``split.json``); the unknown folders may have any
layout. Qt-free; TensorFlow computes the model's outputs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(model: str, data: str, split: str, unknowns: list[tuple[str, str]]) -> dict:
    from training import data as data_mod
    from training.bundle import load_bundle
    from training.detect import load_detector, model_outputs
    from training.unknown_eval import folder_images, unknown_report

    bundle = load_bundle(model)
    det = load_detector(model)
    if det is None:
        raise SystemExit(f"{model}: this bundle has no unknown detector; fit one with "
                         f"python -m training calibrate --model {model} --data DIR")
    ds = data_mod.scan_dataset(data, bundle.class_names, with_digests=False)
    ds = ds.subset(data_mod.bundle_split(ds, model, [split])[0])
    images = data_mod.load_arrays(ds, bundle.input_size, square=bundle.view.square)
    known = model_outputs(bundle.model, images)
    shown = Path(model).resolve()
    shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    result = {"model": str(shown), "version": bundle.card.get("version"), "data": data,
              "split": split, "unknown_sets": {}}
    for name, folder in unknowns:
        _, x = folder_images(folder, bundle.input_size, square=bundle.view.square)
        r = unknown_report(det, known, ds.labels, model_outputs(bundle.model, x))
        r.pop("_probs")
        r["folder"] = folder
        result["unknown_sets"][name] = r
    return result


def markdown(result: dict, openset: dict | None) -> str:
    sets = result["unknown_sets"]
    lines = []
    if sets:
        first = next(iter(sets.values()))
        lines += [f"Bundle {result['model']} ({result.get('version')}), detector "
                  f"`{first['method']}`, threshold accepting {first['accept_validation']:.0%} of "
                  f"validation images, temperature {first['temperature']:.3f}; known images: its "
                  f"{result['split']} split of {result['data']} ({first['known_images']} images).",
                  "",
                  "| known images | accepted | accuracy on accepted | ECE before -> after | "
                  "NLL before -> after |",
                  "|---|---|---|---|---|",
                  f"| {first['known_images']} | {first['known_accepted']:.1%} | "
                  f"{first['accuracy_on_accepted_known']:.2%} | {first['ece_before']:.2%} -> "
                  f"{first['ece_after']:.2%} | {first['nll_before']:.4f} -> "
                  f"{first['nll_after']:.4f} |", "",
                  "| unknown set | images | AUROC | FPR at 95% TPR | labelled >= 80% and not "
                  "flagged | flagged |",
                  "|---|---|---|---|---|---|"]
        for name, r in sets.items():
            lines.append(f"| {name} | {r['unknown_images']} | {r['auroc']:.4f} | "
                         f"{r['fpr_at_95_tpr']:.1%} | {r['unknown_confident_and_accepted']:.1%} | "
                         f"{r['unknown_flagged']:.1%} |")
        methods = list(first["candidates"])
        lines += ["", "Every candidate score (AUROC):", "",
                  "| unknown set | " + " | ".join(methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for name, r in sets.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{r['candidates'][m]['auroc']:.4f}" for m in methods) + " |")
    if openset:
        methods = list(openset["mean"])
        cfg = openset.get("config", {})
        lines += ["", f"Leave one class out ({cfg.get('epochs')} epochs at "
                      f"{cfg.get('input_size')}x{cfg.get('input_size')} per left-out class), "
                      "AUROC of the left-out class against the test images of the others:", "",
                  "| left out | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for r in openset["classes"]:
            lines.append(f"| {r['left_out']} | " + " | ".join(
                f"{r['candidates'][m]['auroc']:.4f}" for m in methods) + " |")
        lines.append("| **mean** | " + " | ".join(
            f"**{openset['mean'][m]['auroc']:.4f}**" for m in methods) + " |")
        lines.append("| mean FPR at 95% TPR | " + " | ".join(
            f"{openset['mean'][m]['fpr_at_95_tpr']:.1%}" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "resources" / "ssdc-mininet"))
    p.add_argument("--data", required=True, help="the bundle's training data (its classes)")
    p.add_argument("--split", default="test")
    p.add_argument("--unknown", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--openset", help="a python -m training openset --json result")
    p.add_argument("--json")
    p.add_argument("--markdown")
    args = p.parse_args(argv)
    unknowns = []
    for u in args.unknown:
        name, sep, folder = u.partition("=")
        unknowns.append((name, folder) if sep else (Path(u).name, u))
    result = measure(args.model, args.data, args.split, unknowns)
    openset = json.loads(Path(args.openset).read_text()) if args.openset else None
    text = markdown(result, openset)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
