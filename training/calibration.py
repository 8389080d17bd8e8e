"""Honest confidence: temperature scaling fitted by NLL, and the measures of calibration and of
separating known from unknown images (ECE, NLL, AUROC, FPR at 95% TPR, reliability diagram).
Pure numpy; Qt-free and TensorFlow-free."""
from __future__ import annotations

from pathlib import Path

import numpy as np

T_MIN, T_MAX = 0.05, 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits / T)."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T in [T_MIN, T_MAX] that minimises the NLL (golden-section search on
    log T after a coarse grid; the NLL is smooth and unimodal in log T in practice)."""
    if len(labels) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(T_MIN), np.log(T_MAX), 61))
    losses = [nll(logits, labels, t) for t in grid]
    i = int(np.argmin(losses))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the mean |accuracy - confidence| over equal-width confidence
    bins, weighted by the share of images in each bin."""
    probs = np.asarray(probs)
    if len(probs) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling unknown (higher score) from known images: the
    probability that a random unknown image scores above a random known one (ties count half)."""
    k = np.asarray(known_scores, np.float64)
    u = np.asarray(unknown_scores, np.float64)
    if len(k) == 0 or len(u) == 0:
        return float("nan")
    allv = np.concatenate([k, u])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks of ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_u = ranks[len(k):].sum()
    return float((r_u - len(u) * (len(u) + 1) / 2) / (len(k) * len(u)))


def fpr_at_tpr(known_scores: np.ndarray, unknown_scores: np.ndarray, tpr: float = 0.95) -> float:
    """The share of unknown images accepted as known when the threshold accepts ``tpr`` of the
    known images (FPR at 95% TPR, known images being the positives, as in the OOD literature)."""
    k = np.asarray(known_scores, np.float64)
    u = np.asarray(unknown_scores, np.float64)
    if len(k) == 0 or len(u) == 0:
        return float("nan")
    threshold = np.quantile(k, tpr)
    return float((u <= threshold).mean())


def save_reliability_png(probs_before: np.ndarray, probs_after: np.ndarray, labels: np.ndarray,
                         path: str | Path, bins: int = 15, title: str = "") -> Path:
    """A reliability diagram: accuracy against confidence per bin, before and after temperature
    scaling, with the diagonal of perfect calibration."""
    from PIL import Image, ImageDraw

    w, h, pad = 640, 360, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    panel = (w - 3 * pad) // 2
    for k, (probs, name) in enumerate(((probs_before, "before"), (probs_after, "after"))):
        x0, y0 = pad + k * (panel + pad), pad
        d.rectangle([x0, y0, x0 + panel, y0 + panel - 40], outline="black")
        side = panel - 40
        d.line([x0, y0 + side, x0 + panel, y0 + side - side * panel / panel], fill="grey")
        conf = probs.max(axis=1)
        correct = probs.argmax(axis=1) == labels
        edges = np.linspace(0, 1, bins + 1)
        bw = panel / bins
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            m = (conf > lo) & (conf <= hi)
            if m.any():
                acc = correct[m].mean()
                d.rectangle([x0 + i * bw + 1, y0 + side * (1 - acc), x0 + (i + 1) * bw - 1,
                             y0 + side], fill=(70, 130, 180), outline="black")
        d.text((x0, y0 + side + 5), f"{name}: ECE {ece(probs, labels, bins) * 100:.2f}%  "
                                    f"(x: confidence, y: accuracy)", fill="black")
    if title:
        d.text((pad, 10), title, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
