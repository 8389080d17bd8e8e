"""A fitted detector's summed unknown score, compiled into a few array operations.

The detector's generic scoring (``training.openset``) computes every part of a score on its own
and then standardises and adds them: about 190 small numpy calls per batch. For one image (the
camera's frame, the image in the large view) that is Python's and numpy's overhead, not
arithmetic, and it runs right after the model's invoke, whose activations (several MB) have
pushed numpy's code and the detector's arrays out of the caches: 0.45 ms against 0.14 ms warm,
a quarter of the invoke itself. Compiled, the same score takes about 30 calls:

* each layer's Mahalanobis distance ``d P d`` becomes a squared Euclidean distance in whitened
  coordinates (``P = L L^T``, so ``d P d = |d L|^2``): one matrix product maps the pooled
  features of every layer at once (a block-diagonal matrix of the ``L``), the class means are
  whitened once at compile time, and the per-layer sums are one more matrix product;
* the relative distances' background Gaussians are more columns of the same product;
* standardising and adding is one dot product with ``1 / sd`` and one constant.

It gives the generic path's scores to rounding (float64 throughout, except the k-NN bank's
float32 similarities, which both paths share), so a detector's threshold, set on the generic
path's validation scores, holds. Pure numpy; no TensorFlow, no Qt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Layer:
    """One layer's Gaussian as the compiled score reads it."""
    inputs: tuple[str, ...]         # model outputs concatenated as its input
    means: np.ndarray               # (K, C) class means
    precision: np.ndarray           # (C, C) shared precision
    bg_mean: np.ndarray | None      # (C,): the background Gaussian (relative distance) or None
    bg_precision: np.ndarray | None
    stat: tuple[float, float]       # the raw score's validation mean and standard deviation


@dataclass(frozen=True)
class Part:
    """A further standardised part of the sum: ``energy``, ``knn``, ``vim`` or ``norm``."""
    name: str
    stat: tuple[float, float]


def _whitener(precision: np.ndarray) -> np.ndarray:
    """``L`` with ``precision = L L^T`` (the precision is a shrunk covariance's inverse, so
    positive definite)."""
    return np.linalg.cholesky(np.asarray(precision, np.float64))


class CompiledSum:
    """``sum_i (raw_i - mean_i) / sd_i`` over the layers' (relative) Mahalanobis distances and the
    ``parts``, for a batch of model outputs. ``temperature`` is the energy's; ``bank`` (float32,
    L2-normalised rows) and ``k`` the k-NN distance's; ``vim`` (origin, basis, alpha) the
    virtual logit's; ``num_classes``: the logits read (the first ones, as the detector's)."""

    def __init__(self, layers: Sequence[Layer], parts: Sequence[Part], temperature: float,
                 bank: np.ndarray | None = None, k: int = 5,
                 vim: tuple[np.ndarray, np.ndarray, float] | None = None,
                 num_classes: int | None = None):
        names = [p.name for p in parts]
        unknown = set(names) - {"energy", "knn", "vim", "norm"}
        if unknown or ("knn" in names and bank is None) or ("vim" in names and vim is None):
            raise ValueError(f"cannot compile the parts {names}")
        self.inputs = [key for layer in layers for key in layer.inputs]
        widths = [layer.means.shape[1] // len(layer.inputs)
                  for layer in layers for _ in layer.inputs]
        sizes = [layer.means.shape[1] for layer in layers]
        self.relative = bool(layers) and layers[0].bg_mean is not None
        if any((layer.bg_mean is not None) != self.relative for layer in layers):
            raise ValueError("the layers' distances are all relative or none")
        needs_features = bool({"knn", "vim", "norm"} & set(names))
        if needs_features and "pool_features" not in self.inputs:
            if bank is not None:
                width = bank.shape[1]
            elif vim is not None:
                width = len(vim[0])
            else:
                raise ValueError("the norm part needs pool_features among the inputs")
            self.inputs.append("pool_features")
            widths.append(width)
        offsets = np.cumsum([0] + widths[:-1]).tolist()
        if needs_features:
            i = self.inputs.index("pool_features")
            self.features = slice(offsets[i], offsets[i] + widths[i])
        else:
            self.features = None
        # columns of the one matrix product: every layer's class-whitened coordinates, then
        # (relative) its background's, then the virtual logit's residual directions
        total = sum(sizes)
        self.total = total
        self.vim_at = total * (2 if self.relative else 1)
        vim_width = 0 if vim is None or "vim" not in names else vim[1].shape[1]
        w = np.zeros((sum(widths), self.vim_at + vim_width))
        self.means = np.zeros((layers[0].means.shape[0] if layers else 0, total))
        self.bg = np.zeros(total) if self.relative else None
        # the per-layer sums of squares as one more matrix product (numpy's product is warm
        # from ``u @ w``; ``np.add.reduceat`` would be one more cold function after an invoke)
        self.layer_sums = np.zeros((total, len(sizes)))
        # A point near every input (each layer's mean of its class means; the virtual logit's
        # origin or 0 for pooled features read only by the other parts), exact in float32: the
        # float32 graph (``training.score_graph``) whitens ``u - center``, which keeps the digits
        # that whitening ``u`` itself loses when the features sit far from 0 against their spread
        center = np.zeros(sum(widths))
        pos = 0
        for j, (layer, c) in enumerate(zip(layers, sizes)):
            self.layer_sums[pos:pos + c, j] = 1.0
            center[pos:pos + c] = np.asarray(layer.means, np.float64).mean(axis=0)
            lw = _whitener(layer.precision)
            w[pos:pos + c, pos:pos + c] = lw
            self.means[:, pos:pos + c] = np.asarray(layer.means, np.float64) @ lw
            if self.bg is not None:
                bw = _whitener(layer.bg_precision)
                w[pos:pos + c, total + pos:total + pos + c] = bw
                self.bg[pos:pos + c] = np.asarray(layer.bg_mean, np.float64) @ bw
            pos += c
        if vim_width:
            origin, basis, alpha = vim
            w[self.features, self.vim_at:] = basis
            self.vim_origin = np.asarray(origin, np.float64) @ basis
            self.vim_alpha = float(alpha)
        self.w = w
        if needs_features and self.features.start >= total and vim is not None:
            center[self.features] = np.asarray(vim[0], np.float64)
        self.center = center.astype(np.float32).astype(np.float64)
        stats = [layer.stat for layer in layers] + [p.stat for p in parts]
        self.scale = np.array([1.0 / s for _, s in stats])
        self.offset = -float(sum(m / s for m, s in stats))
        self.layer_count = len(layers)
        self.parts = names
        self.temperature = float(temperature)
        # the bank transposed, contiguous (its product with one image is a quarter faster), in
        # its own precision (float32 in a detector) as the generic path compares in
        self.bank_t = None if bank is None else np.ascontiguousarray(np.asarray(bank).T)
        self.num_classes = num_classes
        self.k = min(int(k), len(bank)) if bank is not None else k

    def __call__(self, out: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.judge(out)[1]

    def judge(self, out: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) float32 probabilities at the temperature (the energy's exponentials reused) and
        the (N,) scores."""
        logits = np.asarray(out["logits"], np.float64)[:, :self.num_classes]
        n = len(logits)
        raw = np.empty((n, self.layer_count + len(self.parts)))
        u = np.concatenate([np.asarray(out[key], np.float64) for key in self.inputs], axis=1)
        y = u @ self.w
        if self.layer_count:
            d = y[:, None, :self.total] - self.means[None]
            dist = ((d * d) @ self.layer_sums).min(axis=1)
            if self.bg is not None:
                e = y[:, self.total:self.vim_at] - self.bg
                dist -= (e * e) @ self.layer_sums
            raw[:, :self.layer_count] = dist
        top = logits.max(axis=1, keepdims=True)
        shifted = logits - top
        # log-sum-exp at the temperature (energy) and at 1 (the virtual logit's), in one go
        e = np.exp(np.concatenate([shifted / self.temperature, shifted], axis=1)
                   ).reshape(n, 2, logits.shape[1])
        sums = e.sum(axis=2)
        lse = np.log(sums)
        probs = (e[:, 0] / sums[:, :1]).astype(np.float32)
        if self.features is not None:
            f = u[:, self.features]
            # with ufuncs used anyway (np.linalg.norm: one more cold function after an invoke)
            norm = np.sqrt((f * f).sum(axis=1))
        for i, name in enumerate(self.parts, self.layer_count):
            if name == "energy":
                raw[:, i] = -(top[:, 0] + self.temperature * lse[:, 0])
            elif name == "vim":
                r = y[:, self.vim_at:] - self.vim_origin
                residual = np.sqrt((r * r).sum(axis=1))
                raw[:, i] = self.vim_alpha * residual - (top[:, 0] + lse[:, 1])
            elif name == "knn":
                # normalised in float64, compared in float32, as the generic path does
                unit = (f / np.maximum(norm, 1e-12)[:, None]).astype(self.bank_t.dtype)
                sims = unit @ self.bank_t
                m = sims.shape[1]
                kth = np.partition(sims, m - self.k, axis=1)[:, m - self.k]
                raw[:, i] = np.sqrt(np.maximum(2 - 2 * kth.astype(np.float64), 0))
            else:   # norm
                raw[:, i] = -norm
        return probs, raw @ self.scale + self.offset
