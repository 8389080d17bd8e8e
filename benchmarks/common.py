"""What the benchmarks that classify a bundle's split share: their command line."""
from __future__ import annotations

import argparse


def split_parser(doc: str) -> argparse.ArgumentParser:
    """``--model B --data DIR [--split test] [--seed N] [--json F]``, described by the first
    paragraph of ``doc``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a bundle folder or a .tflite file in one")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the result here")
    return ap


def judged_split(model: str, data: str, split: str):
    """``(labels, images, score)`` of a bundle's split, read as ``training robustness`` reads
    it; ``score(x)`` classifies images in the split's order and gives their ``accuracy`` and,
    for a bundle with an unknown detector, the share accepted as ``known`` and the
    ``accuracy_on_known`` (None when none is)."""
    import numpy as np

    from training.cli import _bundle_dir, _evaluation_images
    from training.detect import judged
    from training.predict import open_predictor

    predictor = open_predictor(model)
    ds, images = _evaluation_images(argparse.Namespace(model=model, data=data, split=split),
                                    predictor)
    labels = ds.labels
    predictor = judged(predictor, _bundle_dir(model))
    judge = getattr(predictor, "judge", None)

    def score(x) -> dict:
        probs, known = judge(x) if judge else (predictor.predict(x), None)
        right = probs.argmax(1) == labels
        r = {"accuracy": float(np.mean(right))}
        if known is not None:
            r.update(known=float(np.mean(known)), accuracy_on_known=float(np.mean(right[known]))
                     if known.any() else None)
        return r
    return labels, images, score


def split_main(doc: str, measure, argv=None) -> int:
    """A split benchmark's command: ``measure(model, data, split, seed)`` and its result written
    as JSON (whole or not at all) where ``--json`` says."""
    args = split_parser(doc).parse_args(argv)
    result = measure(args.model, args.data, args.split, args.seed)
    if args.json:
        from training.bundle import write_json

        write_json(args.json, result)
    return 0
