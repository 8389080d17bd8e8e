"""Knowing what the model does not know: an unknown detector fitted without outlier images.

From one forward pass the model gives its logits and the globally pooled feature maps of
several layers (``training.model.verdict_model``). On those this module fits:

* a temperature for calibrated probabilities (``training.calibration.fit_temperature``);
* candidate unknown scores (higher = more foreign): max-softmax, energy, k-NN distance on
  L2-normalised pooled features, Mahalanobis distance per layer (class means, one shared,
  shrunk covariance) on the mean-pooled features (``maha_<view>``) and on the mean- and
  std-pooled features together (``mahastd_<view>``: the spread of a channel's response over the
  image tells a texture that is uneven in a foreign way), the relative Mahalanobis distance of
  each (``rmaha_<view>``, ``rmahastd_<view>``: minus the distance to one background Gaussian of
  all training features), the virtual-logit score (``vim``: the part of the last features that
  the classifier's principal subspace does not explain, Wang et al. 2022), the pooled last
  features' norm (``norm``, negated: images the network responds to weakly), and sums of
  standardised scores;
* the score used: ``DEFAULT_METHOD``, chosen by leave-one-class-out (``python -m training
  openset``: a model retrained without each class in turn must flag it) and the far set; see
  docs/unknown-detection.md. A held-out-class check on the bundle's own validation split (each
  class hidden from the detector's statistics only) is recorded in the card, but the network
  has seen every class, so it saturates near 1.0 and cannot rank the candidates;
* a threshold that accepts a stated share of the validation images (default 95%).

Saved in the bundle as ``unknown.npz`` plus an ``unknown_detection`` section of the card.
Pure numpy; Qt-free and TensorFlow-free.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .calibration import auroc, fit_temperature, fpr_at_tpr, softmax
from .fast_score import CompiledSum, Layer, Part

DETECTOR_FILE = "unknown.npz"
DEFAULT_ACCEPT = 0.95
# best mean AUROC leave-one-class-out on NEU with the 1.2.0 recipe (0.885; without k-NN 0.868, the
# std-pooled sums 0.840 and 0.865) and the near set is what unknown steel looks like
# (docs/unknown-detection.md).
# The relative Mahalanobis sum (rmaha_sum+energy+knn) was tried as the default (2026-12-02):
# leave-one-class-out 0.8897 against 0.8868 on the same six models (within what two runs of the
# protocol differ by), magnetic tiles 0.974 against 0.968, but the bundled 1.4.0 then accepted
# 94.9% of its test images (96.4%) and 84.7% of camera-shifted ones (87.6%); not kept.
# The virtual-logit score (vim) added to maha_sum+energy+knn (2026-12-03): leave-one-class-out
# 0.922 -> 0.932, 0.900 -> 0.908 and, on a third run made to check it, 0.862 -> 0.871 (the same
# models rescored, ``openset --rescore``); on the bundled 1.4.0 magnetic tiles 0.968 -> 0.974
# and more test images accepted (docs/unknown-detection.md). A detector without a virtual logit
# (no classifier to read, too few training images) falls back to the sum without it.
# The relative Mahalanobis sum with the virtual logit (rmaha_sum+energy+knn+vim) became the
# default on 2026-12-03 evening: leave-one-class-out at 200x200 over four seeds 0.960, 0.963,
# 0.956, 0.941 (mean 0.955) against 0.957, 0.951, 0.935, 0.927 (0.943); at the detector's own
# operating point (95% of validation images accepted) the six left-out models of the fourth
# seed accepted as many of their known test images (93.8% against 93.2%) and flagged 70.2% of
# the left-out class against 60.2%; bundled 1.4.0: tiles 0.974 -> 0.977, but 94.2% of its 138
# test images accepted (97.1%: two images under 95%) (docs/unknown-detection.md).
# The std-pooled relative sum with the feature norm (rmahastd_sum+energy+knn+vim+norm) became the
# default on 2026-12-05: the same four seeds' saved left-out models rescored give it 0.961, 0.962,
# 0.961, 0.947 (mean 0.958) against 0.960, 0.963, 0.956, 0.941 (0.955), mean FPR at 95% TPR
# 24.2% against 25.0%; bundled 1.4.0: tiles 0.977 -> 0.990 (FPR at 95% TPR 13.1% -> 5.7%), 97.1%
# of its 138 test images accepted (94.2%) (docs/unknown-detection.md, "The std-pooled relative
# sum"). Without a virtual logit the sum falls back to its first three parts; a detector fitted
# on outputs without the std-pooled features (none of this project's exports) to the relative
# sums of the means.
DEFAULT_METHOD = "rmahastd_sum+energy+knn+vim+norm"
FALLBACK_METHOD = "rmahastd_sum+energy+knn"
METHOD_ORDER = (DEFAULT_METHOD, FALLBACK_METHOD, "rmaha_sum+energy+knn+vim+norm",
                "rmaha_sum+energy+knn")
SHRINK = 0.1          # covariance shrinkage towards its mean eigenvalue
KNN_K = 5
# The compiled score's formulas (``training.fast_score``, ``training.score_graph``): part of the
# detector's fingerprint, so a change of them makes older in-graph scores unused until re-export
SCORE_FORMULA = "compiled-sum v1"
# The pooled layers the detector reads, from early (texture) to late (class evidence).
VIEWS = ("se1_input", "se2_input", "features")


Outputs = Mapping[str, np.ndarray]   # "logits": (N, K); "pool_<view>", "std_<view>": (N, C)
STD = "+std"   # the key of a view's Gaussian on its mean- and std-pooled features


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Negative free energy as an unknown score: -T * logsumexp(logits / T), higher = foreign."""
    z = np.asarray(logits, np.float64) / temperature
    m = z.max(axis=1, keepdims=True)
    return -(temperature * (m[:, 0] + np.log(np.exp(z - m).sum(axis=1))))


def msp(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return -softmax(logits, temperature).max(axis=1).astype(np.float64)


def _squared_mahalanobis(d: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``d`` (..., C) differences -> (...,) d P d, as a matrix product (ten times faster than a
    three-operand einsum)."""
    return ((d @ precision) * d).sum(axis=-1)


def _shrunk_precision(centred: np.ndarray) -> np.ndarray:
    cov = centred.T @ centred / max(len(centred) - 1, 1)
    mu = np.trace(cov) / cov.shape[0]
    cov = (1 - SHRINK) * cov + SHRINK * mu * np.eye(cov.shape[0])
    return np.linalg.inv(cov)


@dataclass
class Gaussian:
    """Class means and one shared precision matrix of one layer's pooled features, and the
    background: one Gaussian of all training features together (its mean and own precision),
    for the relative Mahalanobis distance (absent in detectors saved before it)."""
    means: np.ndarray        # (K, C)
    precision: np.ndarray    # (C, C)
    bg_mean: np.ndarray | None = None        # (C,)
    bg_precision: np.ndarray | None = None   # (C, C)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, classes: Sequence[int]) -> "Gaussian":
        x = np.asarray(x, np.float64)
        means = np.stack([x[y == c].mean(axis=0) for c in classes])
        centred = np.concatenate([x[y == c] - means[i] for i, c in enumerate(classes)])
        seen = x[np.isin(y, classes)]
        bg_mean = seen.mean(axis=0)
        return cls(means, _shrunk_precision(centred), bg_mean, _shrunk_precision(seen - bg_mean))

    def score(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean."""
        x = np.asarray(x, np.float64)
        return _squared_mahalanobis(x[:, None, :] - self.means[None], self.precision).min(axis=1)

    @property
    def has_background(self) -> bool:
        return self.bg_mean is not None and self.bg_precision is not None

    def background_score(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the background Gaussian. The relative distance
        (``score - background_score``, Ren et al. 2021, "A simple fix to Mahalanobis distance
        for improving near-OOD detection") discounts what is merely far from all training
        images in directions that do not tell the classes apart."""
        return _squared_mahalanobis(np.asarray(x, np.float64) - self.bg_mean, self.bg_precision)


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_score(bank: np.ndarray, x: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Distance to the k-th nearest L2-normalised training feature, in the bank's precision
    (float32 in a detector, fitted or loaded: 2.5x faster than float64 for a batch)."""
    sims = _l2(x).astype(bank.dtype, copy=False) @ bank.T
    k = min(k, bank.shape[0])
    kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(2 - 2 * kth.astype(np.float64), 0))


def feature_norm_score(features: np.ndarray) -> np.ndarray:
    """Minus the L2 norm of the pooled last features: a network responds more weakly to what it
    has not learnt to see (higher = more foreign)."""
    return -np.linalg.norm(np.asarray(features, np.float64), axis=1)


def _pooled_inputs(key: str) -> list[str]:
    """The model outputs a Gaussian reads: ``view`` -> ``pool_<view>``; ``view+std`` -> also
    ``std_<view>``."""
    if key.endswith(STD):
        v = key[:-len(STD)]
        return [f"pool_{v}", f"std_{v}"]
    return [f"pool_{key}"]


def _pooled(out: Outputs, key: str) -> np.ndarray:
    """A Gaussian's input: ``view`` -> its mean-pooled features; ``view+std`` -> the mean- and
    std-pooled features side by side."""
    return np.concatenate([np.asarray(out[k]) for k in _pooled_inputs(key)], axis=1)


Bank = tuple[np.ndarray, np.ndarray]   # (pooled last features, their labels) for k-NN
Head = tuple[np.ndarray, np.ndarray]   # the classifier's (kernel (C, K), bias (K,))


@dataclass
class VirtualLogit:
    """ViM (Wang et al. 2022, "ViM: Out-of-distribution with virtual-logit matching"): the
    pooled last features, seen from the origin where the classifier's logits vanish, have a
    principal subspace that the training images fill; what an image has outside it (its
    residual), scaled to the size of the training images' largest logits, becomes one more
    logit, and the score is that virtual logit against the log-sum-exp of the real ones (the
    paper's code; its softmax probability, tried first, saturates near 1 for clearly foreign
    images and gained less in the sums: leave-one-class-out 0.929 and 0.904 against 0.932 and
    0.908). It reads the features the k-NN and Mahalanobis scores read, but in the directions
    those scores weigh least, and it needs only ``pool_features`` and ``logits``. Fitted only
    with at least ``MIN_IMAGES_PER_CHANNEL`` training images per feature channel: with fewer the
    residual of the training images is near zero and its scale explodes."""
    origin: np.ndarray   # (C,)
    basis: np.ndarray    # (C, C - D): the residual directions
    alpha: float

    MIN_IMAGES_PER_CHANNEL = 2

    @classmethod
    def fit(cls, features: np.ndarray, kernel: np.ndarray, bias: np.ndarray,
            dim: int | None = None) -> "VirtualLogit | None":
        """None with too few training images (see the class)."""
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or len(f) < cls.MIN_IMAGES_PER_CHANNEL * f.shape[1]:
            return None
        kernel, bias = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
        origin = -np.linalg.pinv(kernel.T) @ bias
        centred = f - origin
        dim = f.shape[1] // 2 if dim is None else dim
        w, v = np.linalg.eigh(centred.T @ centred / max(len(f), 1))
        basis = v[:, np.argsort(w)[::-1][dim:]]
        residual = np.linalg.norm(centred @ basis, axis=1).mean()
        # the size of the largest logits (a model whose largest logits average below zero, as
        # an untrained head's may, would otherwise turn the score around)
        alpha = float(abs((f @ kernel + bias).max(axis=1).mean()) / max(residual, 1e-12))
        return cls(origin, basis, alpha)

    def score(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """The virtual logit minus the log-sum-exp of the real ones, higher = more foreign (raw
        logits: the scale ``alpha`` fits)."""
        virtual = self.alpha * np.linalg.norm(
            (np.asarray(features, np.float64) - self.origin) @ self.basis, axis=1)
        z = np.asarray(logits, np.float64)
        m = z.max(axis=1)
        return virtual - (m + np.log(np.exp(z - m[:, None]).sum(axis=1)))


class _Scorer:
    """Every candidate score for statistics fitted on the given training images and classes.
    ``bank``: the k-NN bank's features and labels when they are not the training images' own
    (``training.detect``: the training images plus turned copies)."""

    def __init__(self, train: Outputs, y: np.ndarray, classes: Sequence[int], views: Sequence[str],
                 bank: Bank | None = None, head: Head | None = None):
        self.classes = list(classes)
        self.views = [v for v in views if f"pool_{v}" in train]
        keep = np.isin(y, self.classes)
        keys = self.views + [v + STD for v in self.views if f"std_{v}" in train]
        self.gauss = {k: Gaussian.fit(_pooled(train, k)[keep], y[keep], self.classes)
                      for k in keys}
        if bank is None and "pool_features" in train:
            bank = (train["pool_features"], y)
        # float32, as the detector's file keeps it: a fitted detector and the same one loaded
        # score alike (the threshold is set on these scores)
        self.bank = (_l2(np.asarray(bank[0])[np.isin(bank[1], self.classes)]).astype(np.float32)
                     if bank is not None else None)
        self.vim = None
        if head is not None and "pool_features" in train:
            kernel, bias = head
            self.vim = VirtualLogit.fit(np.asarray(train["pool_features"])[keep],
                                        np.asarray(kernel)[:, self.classes],
                                        np.asarray(bias)[self.classes])

    def raw(self, out: Outputs, temperature: float, only: set[str] | None = None
            ) -> dict[str, np.ndarray]:
        """Every raw candidate score (``only``: just these, see ``_raw_needed``)."""
        logits = np.asarray(out["logits"])[:, self.classes]
        s = {"energy": energy(logits, temperature)}
        if only is None or "msp" in only:
            s["msp"] = msp(logits, temperature)
        if self.bank is not None and (only is None or "knn" in only):
            s["knn"] = knn_score(self.bank, out["pool_features"])
        if self.vim is not None and (only is None or "vim" in only):
            s["vim"] = self.vim.score(out["pool_features"], logits)
        if "pool_features" in out and (only is None or "norm" in only):
            s["norm"] = feature_norm_score(out["pool_features"])
        for k, g in self.gauss.items():
            name = _gauss_score_name(k)
            relative = RELATIVE + name if g.has_background else None
            if only is None or name in only or relative in only:
                x = _pooled(out, k)
                s[name] = g.score(x)
                if relative and (only is None or relative in only):
                    s[relative] = s[name] - g.background_score(x)
        return s


RELATIVE = "r"   # rmaha_<view>, rmahastd_<view>: relative Mahalanobis (Gaussian.background_score)


def _gauss_score_name(key: str) -> str:
    return f"mahastd_{key[:-len(STD)]}" if key.endswith(STD) else f"maha_{key}"


def _gauss_score_names(keys: Sequence[str]) -> list[str]:
    """Every per-layer Gaussian score of these Gaussians: plain and relative."""
    names = [_gauss_score_name(k) for k in keys]
    return names + [RELATIVE + n for n in names]


def _raw_needed(method: str, gauss_keys: Sequence[str]) -> set[str]:
    """The raw scores a method reads: itself, or for a sum (``maha_sum``, ``mahastd_sum``,
    ``rmaha_sum``, ``rmahastd_sum``) every
    layer of its kind, plus the energy or k-NN scores it adds (``...+energy``, ``...+energy+knn``)."""
    base, *extras = method.split("+")
    if base.endswith("_sum"):
        kind = base[:-len("_sum")] + "_"
        need = {n for n in _gauss_score_names(gauss_keys) if n.startswith(kind)}
    else:
        need = {base}
    return need | set(extras)


# the parts ``_combine`` adds to each Mahalanobis sum, in the order of its names
SUM_CHAINS = ([], ["energy"], ["knn"], ["energy", "knn"], ["energy", "knn", "vim"],
              ["energy", "knn", "vim", "norm"])


def _combine(raw: dict[str, np.ndarray], stats: Mapping[str, tuple[float, float]]) -> dict:
    """Adds the sums of standardised scores (each standardised by its validation mean and
    standard deviation, so no layer dominates by scale)."""
    z = {k: (raw[k] - stats[k][0]) / stats[k][1] for k in raw}
    out = dict(raw)
    for kind in ("maha", "mahastd", RELATIVE + "maha", RELATIVE + "mahastd"):
        layers = [k for k in raw if k.startswith(kind + "_")]
        if layers:
            out[f"{kind}_sum"] = sum(z[k] for k in layers)
            out[f"{kind}_sum+energy"] = out[f"{kind}_sum"] + z["energy"]
            if "knn" in z:
                out[f"{kind}_sum+knn"] = out[f"{kind}_sum"] + z["knn"]
                # k-NN and Mahalanobis fail on different left-out classes
                # (docs/unknown-detection.md)
                out[f"{kind}_sum+energy+knn"] = out[f"{kind}_sum+energy"] + z["knn"]
                if "vim" in z:
                    out[f"{kind}_sum+energy+knn+vim"] = out[f"{kind}_sum+energy+knn"] + z["vim"]
                    if "norm" in z:
                        out[f"{kind}_sum+energy+knn+vim+norm"] = (
                            out[f"{kind}_sum+energy+knn+vim"] + z["norm"])
    return out


def _stats(raw: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    return {k: (float(v.mean()), float(max(v.std(), 1e-9))) for k, v in raw.items()}


def acceptance_threshold(scores: np.ndarray, accept: float) -> float:
    """A threshold that accepts the share ``accept`` of the known images to come, judged from
    ``scores`` of n known images (an image is known when its score is at most the threshold):
    the k-th smallest score with k = ceil(accept * (n + 1)), as split-conformal prediction sets
    it. A new image exchangeable with the n scores then falls below the k-th of them with
    probability k / (n + 1) >= ``accept``. The k-th of n as the threshold (k = ceil(accept * n),
    until 2026-12-04) accepted ``accept`` of the validation images themselves but less of new
    ones, k / (n + 1): on 138 validation images "95%" was 132 of them, 132/139 = 94.96% of new
    images; now 133 (96.4% of the validation images). The threshold lies half-way between the
    last score accepted and the next, so that the last bits of another runtime or CPU do not
    flip an image at the edge."""
    s = np.sort(np.asarray(scores, np.float64))
    if not len(s):
        raise ValueError("no scores to set a threshold on")
    q = min(max(float(accept), 0.0), 1.0)
    k = min(len(s), max(1, int(np.ceil(q * (len(s) + 1) - 1e-9))))   # images to accept
    if k == len(s):
        return float(s[-1] + max(1e-9, 1e-6 * abs(s[-1])))
    return float((s[k - 1] + s[k]) / 2)


TAIL_SHARE = 0.2    # the highest fifth of the validation scores sets the exponential tail


def _score_cdf(v: np.ndarray):
    """The share of known images at or below a score, from sorted, finite validation scores
    ``v``: the conformal ranks of ``acceptance_threshold`` (rank r of n is r / (n + 1),
    interpolated between neighbours) up to the start ``u`` of the highest ``TAIL_SHARE``, and
    above it an exponential tail, 1 - m exp(-(s - u) / beta), beta the mean excess of those
    scores over ``u`` (a peaks-over-threshold fit: the scores are sums of squared distances,
    whose tails fall off exponentially), so that shares beyond the highest validation score,
    which images of many tiles need, are not read off one or two extreme scores. Returns
    ``(u, beta, m, cdf, quantile)``; the tail is left to the caller, in survival terms."""
    n = len(v)
    top = max(1, min(n - 1, int(round(TAIL_SHARE * n))))
    u = float(v[n - top - 1])
    beta = max(float(np.mean(v[n - top:] - u)), 1e-12)
    ranks = np.arange(1, n - top + 1, dtype=np.float64)
    body = v[:n - top]
    m = 1.0 - (n - top) / (n + 1.0)     # the tail's share of known images

    def cdf(s):   # body only (s <= u)
        return np.interp(s, body, ranks, left=0.0) / (n + 1.0)

    def quantile(q):   # body only (q <= 1 - m)
        return np.interp(q * (n + 1.0), ranks, body)

    return u, beta, m, cdf, quantile


def as_one_image(scores: np.ndarray, val_scores: np.ndarray, tiles: float) -> np.ndarray:
    """Tile scores put on the scale of one image, for an image judged by the least known of
    ``tiles`` tiles: each score ``s`` becomes the score a single image would need to be as rare
    among the known images as the highest of ``tiles`` known tiles reaching ``s``.

    With ``F`` the share of known images at or below a score (``_score_cdf``: the validation
    scores' conformal ranks, as ``acceptance_threshold`` counts them, and an exponential tail
    above their highest fifth), ``s`` becomes ``F^-1(F(s) ** tiles)``. An image whose tiles are
    all known and independent is then accepted at a threshold with the share that a single
    image is: its tiles all fall under the single image's threshold only with that share to the
    power ``tiles`` (a frame of nine known tiles at 95% each: 63%). Far in the tail this is
    ``s - beta ln(tiles)``: the maximum of ``tiles`` scores lies that much higher. Tiles that
    overlap or look alike are not independent, so such an image is accepted a little more
    often. Monotone and never higher, so the least known tile stays the least known; ``tiles``
    <= 1, too few validation scores (under 10) and scores that are not finite (a blank tile's
    +inf) are left as they are."""
    s = np.asarray(scores, np.float64)
    v = np.asarray(val_scores, np.float64).ravel()
    v = np.sort(v[np.isfinite(v)])
    if tiles <= 1 or len(v) < 10 or not s.size:
        return s.copy()
    u, beta, m, cdf, quantile = _score_cdf(v)
    n = float(tiles)
    out = s.copy()
    ok = np.isfinite(s)
    x = s[ok]
    # the share above each score, 1 - F(s), and above the scaled one, 1 - F(s) ** n, as
    # logarithms so that the far tail keeps its digits (1 - F rounds to 0 there, and 1 - F ** n
    # is n (1 - F) to the last digit)
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        log_above = np.where(x > u, np.log(m) - (np.maximum(x, u) - u) / beta,
                             np.log(np.maximum(1.0 - cdf(x), 0.0)))
        above = np.exp(log_above)
        log_scaled = np.where(n * above < 1e-8, np.log(n) + log_above,
                              np.log(-np.expm1(n * np.log1p(-np.minimum(above, 1.0)))))
        in_tail = log_scaled < np.log(m)
        tail = u - beta * (log_scaled - np.log(m))
        body = quantile(np.clip(-np.expm1(log_scaled), 0.0, 1.0))
    out[ok] = np.minimum(x, np.where(in_tail, tail, body))
    return out


@dataclass
class UnknownDetector:
    temperature: float
    method: str
    threshold: float
    accept: float
    views: list[str]
    gauss: dict[str, "Gaussian"]
    bank: np.ndarray | None
    stats: dict[str, tuple[float, float]]
    num_classes: int
    selection: dict = field(default_factory=dict)
    val_scores: np.ndarray | None = None   # sorted validation scores (for other acceptances)
    vim: VirtualLogit | None = None        # absent in detectors saved before it
    # the chosen score compiled (``training.fast_score``), built at its first use from the
    # fields above (so they are not changed afterwards: ``dataclasses.replace`` makes a new
    # detector, compiled anew); False: the method is not a sum it compiles, so the generic
    # path scores
    _compiled: CompiledSum | bool | None = field(default=None, init=False, repr=False,
                                                  compare=False)
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def all_scores(self, out: Outputs) -> dict[str, np.ndarray]:
        """Every candidate's score of every image (for reports that compare them)."""
        return _combine(self._scorer().raw(out, self.temperature), self.stats)

    def _scorer(self) -> "_Scorer":
        scorer = _Scorer.__new__(_Scorer)
        scorer.classes = list(range(self.num_classes))
        scorer.views, scorer.gauss, scorer.bank = self.views, self.gauss, self.bank
        scorer.vim = self.vim
        return scorer

    def inputs(self) -> set[str]:
        """The model outputs the chosen score reads (an export without them cannot serve this
        detector; the other candidates' are only needed by ``all_scores``)."""
        needed = _raw_needed(self.method, list(self.gauss))
        keys = {"logits"} | ({"pool_features"} if {"knn", "vim", "norm"} & needed else set())
        for k in self.gauss:
            if {_gauss_score_name(k), RELATIVE + _gauss_score_name(k)} & needed:
                keys.update(_pooled_inputs(k))
        return keys

    def scores(self, out: Outputs) -> np.ndarray:
        """The unknown score of every image (higher = more foreign), computing only what the
        chosen method reads: compiled for a sum (``training.fast_score``, three times faster
        for one image), else part by part."""
        fast = self.compiled()
        return fast(out) if fast is not None else self.generic_scores(out)

    def verdict(self, out: Outputs) -> tuple[np.ndarray, np.ndarray]:
        """``probabilities`` and ``scores`` of every image, in one pass when compiled."""
        fast = self.compiled()
        if fast is not None:
            return fast.judge(out)
        return self.probabilities(out["logits"]), self.generic_scores(out)

    def compiled(self) -> CompiledSum | None:
        """The compiled score, built at the first call (None: the generic path scores)."""
        if self._compiled is None:
            self._compiled = self._compile() or False
        return self._compiled or None

    def digest(self) -> str | None:
        """A fingerprint of what the compiled score is computed from (None when the score does
        not compile): what an export that computes it in its graph (``training.score_graph``)
        was built for; the app uses that score only while the bundle's detector has the same.
        Of the stored arrays and settings as saved (they load bit for bit), not of the compiled
        ones, whose last bits depend on the CPU's BLAS kernels; not of the threshold, the
        acceptance or the validation scores, which stay outside the graph."""
        if self._digest is None:
            if self.compiled() is None:
                self._digest = ""
            else:
                h = hashlib.sha256(f"{SCORE_FORMULA} k={KNN_K}".encode())
                for key, a in sorted(self._arrays().items()):
                    if key in ("threshold", "accept", "val_scores"):
                        continue
                    a = np.ascontiguousarray(a)
                    h.update(repr((key, a.dtype.str, a.shape)).encode())
                    h.update(a.tobytes())
                self._digest = h.hexdigest()
        return self._digest or None

    def _compile(self) -> CompiledSum | None:
        """The chosen score as a ``CompiledSum``, or None when it is not one of the sums
        ``_combine`` forms (or a precision matrix does not factor)."""
        base, *extras = self.method.split("+")
        if not base.endswith("_sum") or extras not in SUM_CHAINS:
            return None
        needed = _raw_needed(self.method, list(self.gauss))
        try:
            layers = []
            for key, g in self.gauss.items():
                name = _gauss_score_name(key)
                if name in needed or RELATIVE + name in needed:
                    relative = RELATIVE + name in needed
                    if relative and not g.has_background:
                        return None
                    layers.append(Layer(tuple(_pooled_inputs(key)), g.means, g.precision,
                                        g.bg_mean if relative else None,
                                        g.bg_precision if relative else None,
                                        self.stats[RELATIVE + name if relative else name]))
            if not layers:
                return None
            return CompiledSum(layers, [Part(p, self.stats[p]) for p in extras],
                               self.temperature, self.bank, KNN_K,
                               None if self.vim is None else
                               (self.vim.origin, self.vim.basis, self.vim.alpha),
                               num_classes=self.num_classes)
        except (np.linalg.LinAlgError, ValueError, KeyError):
            return None

    def generic_scores(self, out: Outputs) -> np.ndarray:
        """``scores`` part by part, as the detector was fitted (the compiled path's reference)."""
        scorer = self._scorer()
        raw = scorer.raw(out, self.temperature, _raw_needed(self.method, list(self.gauss)))
        return _combine(raw, self.stats)[self.method]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature)

    def known(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) <= self.threshold

    def threshold_for(self, accept: float) -> float:
        """The threshold that accepts the share ``accept`` of the validation images."""
        if self.val_scores is None or not len(self.val_scores):
            return self.threshold
        return acceptance_threshold(self.val_scores, accept)

    # ---- persistence ---------------------------------------------------------------------------
    def card(self) -> dict:
        return {"method": self.method, "temperature": self.temperature,
                "threshold": self.threshold, "accept_validation": self.accept,
                "views": self.views, "file": DETECTOR_FILE, "selection": self.selection}

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **self._arrays())
        return buf.getvalue()

    def _arrays(self) -> dict[str, np.ndarray]:
        """What the file stores, by name."""
        arrays = {"temperature": np.float64(self.temperature),
                  "threshold": np.float64(self.threshold), "accept": np.float64(self.accept),
                  "num_classes": np.int64(self.num_classes),
                  "meta": np.frombuffer(json.dumps({"method": self.method, "views": self.views,
                                                    "gauss": list(self.gauss),
                                                    "stats": self.stats}).encode(), np.uint8)}
        for v, g in self.gauss.items():
            arrays[f"means_{v}"] = g.means
            arrays[f"precision_{v}"] = g.precision
            if g.has_background:
                arrays[f"bg_mean_{v}"] = g.bg_mean
                arrays[f"bg_precision_{v}"] = g.bg_precision
        if self.bank is not None:
            arrays["bank"] = self.bank.astype(np.float32)
        if self.val_scores is not None:
            arrays["val_scores"] = np.asarray(self.val_scores, np.float64)
        if self.vim is not None:
            arrays["vim_origin"], arrays["vim_basis"] = self.vim.origin, self.vim.basis
            arrays["vim_alpha"] = np.float64(self.vim.alpha)
        return arrays

    @classmethod
    def load(cls, path: str | Path, selection: dict | None = None) -> "UnknownDetector":
        if not zipfile.is_zipfile(path):   # np.load would speak of pickles and allow_pickle
            raise ValueError(f"{path}: damaged (not a detector file); fit the detector again "
                             "(python -m training calibrate)")
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            gauss = {k: Gaussian(z[f"means_{k}"], z[f"precision_{k}"],
                                 z[f"bg_mean_{k}"] if f"bg_mean_{k}" in z else None,
                                 z[f"bg_precision_{k}"] if f"bg_precision_{k}" in z else None)
                     for k in meta.get("gauss", meta["views"])}
            vim = (VirtualLogit(z["vim_origin"], z["vim_basis"], float(z["vim_alpha"]))
                   if "vim_basis" in z else None)
            needed = _raw_needed(meta["method"], list(gauss))
            if vim is None and "vim" in needed:
                raise ValueError(f"{path}: the detector's score {meta['method']} needs the "
                                 "virtual-logit arrays (vim_*), which the file lacks")
            if any(RELATIVE + _gauss_score_name(k) in needed and not g.has_background
                   for k, g in gauss.items()):
                raise ValueError(f"{path}: the detector's score {meta['method']} needs the "
                                 "background Gaussians (bg_*), which the file lacks")
            return cls(float(z["temperature"]), meta["method"], float(z["threshold"]),
                       float(z["accept"]), list(meta["views"]), gauss,
                       np.ascontiguousarray(z["bank"], np.float32) if "bank" in z else None,
                       {k: tuple(v) for k, v in meta["stats"].items()}, int(z["num_classes"]),
                       selection or {}, z["val_scores"] if "val_scores" in z else None, vim)


def held_out_class_aurocs(train: Outputs, y_train: np.ndarray, val: Outputs, y_val: np.ndarray,
                          num_classes: int, temperature: float,
                          views: Sequence[str] = VIEWS, bank: Bank | None = None,
                          head: Head | None = None) -> dict[str, list[float]]:
    """The selection protocol: for each class c, statistics fitted on the other classes' training
    features; known = the other classes' validation images, unknown = class c's validation and
    training images. Returns each candidate's AUROC per held-out class."""
    result: dict[str, list[float]] = {}
    for c in range(num_classes):
        others = [k for k in range(num_classes) if k != c]
        scorer = _Scorer(train, y_train, others, views, bank, head)
        known_mask = y_val != c
        unknown_out = {k: np.concatenate([np.asarray(val[k])[y_val == c],
                                          np.asarray(train[k])[y_train == c]]) for k in val}
        known_out = {k: np.asarray(val[k])[known_mask] for k in val}
        raw_k = scorer.raw(known_out, temperature)
        raw_u = scorer.raw(unknown_out, temperature)
        stats = _stats(raw_k)
        comb_k, comb_u = _combine(raw_k, stats), _combine(raw_u, stats)
        for name in comb_k:
            result.setdefault(name, []).append(auroc(comb_k[name], comb_u[name]))
    return result


def fit_detector(train: Outputs, y_train: np.ndarray, val: Outputs, y_val: np.ndarray,
                 num_classes: int, calibration: tuple[np.ndarray, np.ndarray] | None = None,
                 accept: float = DEFAULT_ACCEPT, views: Sequence[str] = VIEWS,
                 method: str | None = None, bank: Bank | None = None,
                 head: Head | None = None) -> UnknownDetector:
    """Fits temperature, candidate scores, the choice among them and the threshold.
    ``calibration`` (logits, labels) fits the temperature (default: the validation set);
    ``method`` forces a candidate instead of DEFAULT_METHOD; ``"auto"`` takes the best of the
    held-out-class check; ``bank``: the k-NN bank (default: the training features); ``head``:
    the classifier's kernel and bias, for the virtual-logit score (without it there is none)."""
    logits_c, labels_c = calibration if calibration is not None else (val["logits"], y_val)
    temperature = fit_temperature(np.asarray(logits_c), np.asarray(labels_c))
    per_class = held_out_class_aurocs(train, y_train, val, y_val, num_classes, temperature, views,
                                      bank, head)
    means = {k: float(np.nanmean(v)) for k, v in per_class.items()}
    scorer = _Scorer(train, y_train, range(num_classes), views, bank, head)
    raw_val = scorer.raw(val, temperature)
    stats = _stats(raw_val)
    # what the detector on all classes can compute (a held-out fold has fewer training images,
    # and may lack the virtual logit that all of them support)
    available = list(_combine(raw_val, stats))
    chosen = method or next((m for m in METHOD_ORDER if m in available), "auto")
    if chosen == "auto":
        chosen = max((k for k in available if k in means), key=lambda k: means[k])
    if chosen not in available:
        raise ValueError(f"unknown detector method {chosen!r}; choose from "
                         f"{', '.join(available)}")
    det = UnknownDetector(temperature, chosen, 0.0, accept, list(scorer.views), scorer.gauss,
                          scorer.bank, stats, num_classes,
                          {"protocol": "held-out class on the validation split (no outlier "
                                       "images): mean AUROC per candidate",
                           "mean_auroc": means,
                           "per_class_auroc": {k: [round(a, 4) for a in v]
                                               for k, v in per_class.items()}},
                          vim=scorer.vim)
    val_scores = det.scores(val)
    det.val_scores = np.sort(val_scores)
    det.threshold = acceptance_threshold(val_scores, accept)
    det.selection["validation_accepted"] = float(det.known(val_scores).mean())
    return det
