"""``python -m training openset``: leave-one-class-out evaluation of unknown detection. For each
class in turn a model is trained on all the other classes (a shorter schedule, see the command's
options), its detector is fitted as training does it, and the left-out class's images must be
told from the test images of the trained classes. Reports every candidate score's AUROC and
FPR at 95% TPR per left-out class and their means. Qt-free."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import data as data_mod
from .calibration import auroc, fpr_at_tpr
from .cancel import Progress, quiet
from .train import TrainConfig, check_resumed_norm, fit, with_input_norm


def leave_one_class_out(data_dir, config: TrainConfig, progress: Progress = quiet,
                        only: list[str] | None = None, on_class=None,
                        raw_scores: dict | None = None, outputs: dict | None = None,
                        previous: list[dict] = ()) -> dict:
    """``raw_scores``: a dict that receives every candidate's scores of each left-out class's
    known test and unknown images (``<class>/known/<candidate>``, ``<class>/unknown/...``), so
    that other combinations can be compared later without training again. ``outputs``: a dict
    that receives each left-out model's outputs (``<class>/<part>/<output>`` for the parts
    ``train``, ``validation``, ``known``, ``unknown``; ``<class>/<part>/labels``), its k-NN bank
    (``<class>/bank``) and its classifier (``<class>/classifier_kernel``, ``..._bias``), so that
    new scores can be tried on the same models. ``previous``: the rows of the left-out classes
    an earlier run finished (``openset --resume``): kept, and those classes not trained again."""
    from .detect import (fit_model_detector, model_outputs, no_detector_reason,
                         recipe_arguments)

    ds = data_mod.scan_dataset(data_dir, config.class_names)
    names = ds.class_names
    if only:   # before the images are read: a mistyped class is said at once
        missing = [c for c in only if c not in names]
        if missing:
            raise data_mod.DatasetError(
                f"openset --only: no class {', '.join(map(repr, missing))} in {data_dir} "
                f"(its classes: {', '.join(names)})")
    done = {r["left_out"] for r in previous}
    todo = [c for c in range(len(names)) if (not only or names[c] in only)
            and names[c] not in done]
    # every left-out model's split first: one that cannot get an unknown detector (too few
    # validation images) is said before the images are read and any model trains
    plans = {c: _left_out_split(ds, c, config) for c in todo}
    for c, (_, sub, tr, va, _) in plans.items():
        reason = no_detector_reason(len(va), sub.labels[tr], len(names) - 1)
        if reason:
            raise data_mod.DatasetError(
                f"openset, without {names[c]}: no unknown detector could be fitted: {reason}")
    x = None
    if todo:   # read as the app will read them: made square when the images are square
        square = data_mod.dataset_view(ds, config.input_size)["square"]
        x = data_mod.load_arrays(ds, config.input_size, lambda f, m: progress(0.02 * f, m),
                                 square=square)
    # one input normalisation for every left-out model, chosen on all the images (the report
    # keeps the settings as asked)
    used = config
    if x is not None:
        used = with_input_norm(config, x)
        check_resumed_norm(previous, config, used, "left-out classes")
    rows = [r for r in previous if r["left_out"] in names]
    for n, c in enumerate(todo):
        def prog(f, m, n=n, c=c):
            progress(0.02 + 0.98 * (n + f) / len(todo), f"without {names[c]}: {m}")

        keep, sub, tr, va, te = plans[c]
        others = [k for k in range(len(names)) if k != c]
        xs = x[keep]
        cfg = replace(used, class_names=tuple(sub.class_names))
        res = fit(xs[tr], sub.labels[tr], xs[va], sub.labels[va], sub.class_names, cfg, prog)
        det = fit_model_detector(res.model, xs[tr], sub.labels[tr], xs[va], sub.labels[va],
                                 len(others), config.seed,
                                 **recipe_arguments(cfg, res.phases))
        if det is None:
            raise data_mod.DatasetError(
                f"openset, without {names[c]}: no unknown detector could be fitted: "
                f"{no_detector_reason(len(va), sub.labels[tr], len(others))}")
        known = model_outputs(res.model, xs[te])
        unknown = model_outputs(res.model, x[ds.labels == c])
        sk, su = det.all_scores(known), det.all_scores(unknown)
        if outputs is not None:
            _keep_outputs(outputs, names[c], res.model, det, {
                "train": (model_outputs(res.model, xs[tr]), sub.labels[tr]),
                "validation": (model_outputs(res.model, xs[va]), sub.labels[va]),
                "known": (known, sub.labels[te]), "unknown": (unknown, None)})
        if raw_scores is not None:
            for k in sk:
                raw_scores[f"{names[c]}/known/{k}"] = np.asarray(sk[k], np.float32)
                raw_scores[f"{names[c]}/unknown/{k}"] = np.asarray(su[k], np.float32)
        acc = float((known["logits"].argmax(1) == sub.labels[te]).mean())
        row = {"left_out": names[c], "known_test_images": int(len(te)),
               "unknown_images": int((ds.labels == c).sum()), "known_test_accuracy": acc,
               "best_epoch": res.best_epoch, "held_out_choice": det.method,
               "input_norm": used.input_norm,
               "candidates": {k: {"auroc": auroc(sk[k], su[k]),
                                  "fpr_at_95_tpr": fpr_at_tpr(sk[k], su[k])} for k in sk}}
        rows.append(row)
        if on_class:
            on_class(_summary(rows, config, ds))
    return _summary(rows, config, ds)


def _left_out_split(ds, c: int, config: TrainConfig):
    """The data set without class ``c`` (its labels renumbered) and its stratified split:
    (kept indices into ``ds``, the subset, train, validation and test indices)."""
    keep = np.flatnonzero(ds.labels != c)
    sub = ds.subset(keep)
    others = [k for k in range(len(ds.class_names)) if k != c]
    remap = {k: i for i, k in enumerate(others)}
    sub.labels = np.array([remap[int(k)] for k in sub.labels], np.int64)
    sub.class_names = [ds.class_names[k] for k in others]
    tr, va, te = data_mod.stratified_split(sub, config.val_fraction, config.test_fraction,
                                           config.seed)
    return keep, sub, tr, va, te


def _keep_outputs(outputs: dict, name: str, model, det, parts: dict) -> None:
    from .detect import classifier_weights

    for part, (out, labels) in parts.items():
        for k, v in out.items():
            outputs[f"{name}/{part}/{k}"] = np.asarray(v, np.float32)
        if labels is not None:
            outputs[f"{name}/{part}/labels"] = np.asarray(labels, np.int64)
    if det is not None:
        outputs[f"{name}/temperature"] = np.float64(det.temperature)
        if det.bank is not None:
            outputs[f"{name}/bank"] = np.asarray(det.bank, np.float64)
    head = classifier_weights(model)
    if head is not None:
        outputs[f"{name}/classifier_kernel"] = np.asarray(head[0], np.float32)
        outputs[f"{name}/classifier_bias"] = np.asarray(head[1], np.float32)


def rescore(path) -> dict:
    """Every candidate of today's detector on the left-out models that ``openset --outputs``
    saved (no training): each model's statistics, k-NN bank and classifier as they were, the
    candidates standardised on its validation images as the detector does. The temperature is the
    one saved (files without it: fitted on the validation images)."""
    import zipfile

    from .calibration import fit_temperature
    from .data import DatasetError
    from .openset import DEFAULT_ACCEPT, VIEWS, _combine, _Scorer, _stats, acceptance_threshold

    not_outputs = f"{path}: not an `openset --outputs` file"
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        # numpy's text for a file that is not an .npz of arrays talks of pickles: not shown
        why = "not an .npz of arrays" if "pickle" in str(exc) else str(exc).splitlines()[0]
        raise DatasetError(f"{not_outputs} ({why})") from None
    names = list(dict.fromkeys(k.split("/")[0] for k in files))
    needed = ("train/labels", "validation/labels", "known/labels", "known/logits",
              "unknown/logits", "train/pool_features")
    if not names or any(f"{c}/{k}" not in files for c in names for k in needed):
        raise DatasetError(f"{not_outputs} (it lacks the left-out models' labels and outputs)")
    rows = []
    for c in names:
        part = {p: {k.split("/")[2]: v for k, v in files.items() if k.startswith(f"{c}/{p}/")}
                for p in ("train", "validation", "known", "unknown")}
        y_train, y_val = part["train"].pop("labels"), part["validation"].pop("labels")
        y_known = part["known"].pop("labels")
        k = int(part["known"]["logits"].shape[1])
        bank = files.get(f"{c}/bank")
        head = ((files[f"{c}/classifier_kernel"], files[f"{c}/classifier_bias"])
                if f"{c}/classifier_kernel" in files else None)
        # the bank is the training images, then each turned copy in turn (training.detect)
        bank_labels = None if bank is None else np.tile(y_train, len(bank) // len(y_train))
        scorer = _Scorer(part["train"], y_train, range(k), VIEWS,
                         None if bank is None else (bank, bank_labels), head)
        t = (float(files[f"{c}/temperature"]) if f"{c}/temperature" in files
             else fit_temperature(part["validation"]["logits"], y_val))
        raw_val = scorer.raw(part["validation"], t)
        stats = _stats(raw_val)
        sv = _combine(raw_val, stats)
        sk = _combine(scorer.raw(part["known"], t), stats)
        su = _combine(scorer.raw(part["unknown"], t), stats)
        right = part["known"]["logits"].argmax(1) == y_known
        candidates = {}
        for m in sk:
            # at the detector's operating point: its threshold accepts DEFAULT_ACCEPT of the
            # model's own validation images, as a bundle's does
            th = acceptance_threshold(sv[m], DEFAULT_ACCEPT)
            candidates[m] = {"auroc": auroc(sk[m], su[m]),
                             "fpr_at_95_tpr": fpr_at_tpr(sk[m], su[m]),
                             "known_accepted": float((sk[m] <= th).mean()),
                             "unknown_flagged": float((su[m] > th).mean())}
        rows.append({"left_out": c, "known_test_images": int(len(y_known)),
                     "unknown_images": int(len(part["unknown"]["logits"])),
                     "known_test_accuracy": float(right.mean()), "candidates": candidates})
    out = _summary(rows, None)
    out["rescored_from"] = str(path)
    return out


def _summary(rows: list[dict], config: TrainConfig | None, ds=None) -> dict:
    """``ds``: the data set the rows were measured on (its file-list hash: what
    ``openset --resume`` checks)."""
    methods = list(rows[0]["candidates"]) if rows else []
    keys = list(rows[0]["candidates"][methods[0]]) if methods else []
    mean = {m: {k: float(np.mean([r["candidates"][m][k] for r in rows])) for k in keys}
            for m in methods}
    return {"protocol": "leave one class out: train on the others, the left-out class is unknown",
            "config": config.describe() if config is not None else None, "classes": rows,
            "mean": mean,
            **({"dataset": {"root": str(ds.root), "file_count": len(ds),
                            "file_list_sha256": ds.list_hash()}} if ds is not None else {})}


def format_openset(result: dict) -> str:
    """One row per candidate, best mean AUROC first; a column per left-out class."""
    methods = sorted(result["mean"], key=lambda m: -result["mean"][m]["auroc"])
    width = max(len(m) for m in methods) + 2
    left = [r["left_out"] for r in result["classes"]]
    # ``--rescore`` adds the operating point: known test images accepted and left-out images
    # flagged at the threshold that accepts 95% of each model's validation images
    point = methods and "known_accepted" in result["mean"][methods[0]]
    lines = [f"{'candidate':<{width}}{'mean':>8}{'FPR95':>8}"
             + (f"{'accepted':>10}{'flagged':>9}" if point else "")
             + "".join(f"{c[:14]:>16}" for c in left)]
    for m in methods:
        mean = result["mean"][m]
        lines.append(f"{m:<{width}}{mean['auroc']:>8.4f}{mean['fpr_at_95_tpr'] * 100:>7.1f}%"
                     + (f"{mean['known_accepted'] * 100:>9.1f}%"
                        f"{mean['unknown_flagged'] * 100:>8.1f}%" if point else "")
                     + "".join(f"{r['candidates'][m]['auroc']:>16.4f}"
                               for r in result["classes"]))
    return "\n".join(lines)
