"""Runs the retraining wizard (``python -m inspector.retrain``, its defaults) up to the end of
its augmentation check and reports both probes' scores and the choice - without the fine-tune,
the evaluation or the export, so that many data sets and splits can be compared in minutes.
The check runs even where the wizard would skip it (a head-first phase that already separates
the classes), so the scores are there for every kind of data.

    python benchmarks/bench_augmentation_check.py --data DIR [--current BUNDLE] [--seed N] \\
        [--label TEXT] [--json docs/results/augmentation_check.json]

The remaining arguments are the wizard's; ``--rate 100`` is passed unless one is given (the
check does not depend on the measured speed; the training size may: a budget that buys fewer
than 20 epochs at the full size trains at 128, ``inspector.retrain.defaults``). The record is
appended to the JSON file (a list).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _Checked(Exception):
    def __init__(self, record: dict):
        super().__init__("the augmentation check is done")
        self.record = record


def check_only(wizard_args: list[str]) -> dict:
    """The wizard's augmentation-check record for these wizard arguments."""
    import training.train as train
    from inspector.retrain.cli import main
    from training import transfer

    original = train._augmentation_check

    def record(*args, **kwargs):
        raise _Checked(original(*args, **kwargs))

    saved = transfer.check_needed, train._augmentation_check
    transfer.check_needed = lambda *a, **k: True
    train._augmentation_check = record
    try:
        main(wizard_args)
    except _Checked as done:
        return done.record
    finally:
        transfer.check_needed, train._augmentation_check = saved
    raise SystemExit("the wizard ended without an augmentation check (see its output above)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--label", default="")
    p.add_argument("--json", type=Path)
    args, wizard = p.parse_known_args(argv)
    if "--rate" not in wizard:
        wizard += ["--rate", "100"]
    os.environ.setdefault("STEEL_INSPECTOR_HOME", tempfile.mkdtemp(prefix="bench-check-home-"))
    rec = check_only(wizard)
    scores = rec["val_true_class_probability"]
    share = ((scores["augmented"] - rec["chance"]) / (scores["clean"] - rec["chance"])
             if scores["clean"] > rec["chance"] else None)
    result = {"label": args.label, "wizard_args": wizard, "check": rec,
              "progress_share": None if share is None else round(share, 3)}
    print(json.dumps(result, indent=1))
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(old + [result], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
