"""The unknown detector's compiled score (``training.fast_score.CompiledSum``) as TensorFlow
operations, appended to the inspection model so that one LiteRT invoke gives the calibrated
probabilities and the unknown score too.

Why: computed in numpy after the invoke, the score cost a single image 15-25% on top of the
invoke (the invoke's activations push numpy's code and the detector's arrays out of the caches,
and each of some 30 numpy calls pays for it). Inside the graph the same arithmetic runs as a few
fused kernels: +3-7% (measured on the bundled model, fp32 and fp16, 1,000 images in alternated
runs: ``docs/unknown-detection.md``). The numpy path stays the reference and the fallback: the
export checks the graph's score against it, and the app uses the graph's score only while the
bundle's detector is the one the export was built with (``UnknownDetector.digest``).

The same formulas as ``CompiledSum.judge`` in float32: whitened Mahalanobis distances (with the
background's subtracted for the relative ones), energy and the virtual logit from log-sum-exps,
the k-NN distance from the k-th largest cosine similarity (``top_k``), standardised and added.
"""
from __future__ import annotations

import numpy as np

from .fast_score import CompiledSum
from .litert import PROBS_KEY, SCORE_KEY


def score_outputs(cs: CompiledSum, out: dict) -> dict:
    """``out`` (the inspection model's output tensors) -> the two further outputs."""
    import tensorflow as tf

    def const(a):
        return tf.constant(np.asarray(a, np.float32))

    logits = out["logits"]
    if cs.num_classes is not None:
        logits = logits[:, :cs.num_classes]
    u = tf.concat([out[k] for k in cs.inputs], axis=1)
    # whitened about ``cs.center`` (float32 keeps the digits that tell images apart; the offsets
    # below move the means to match, in float64 before the cast)
    uc = u - const(cs.center)
    blocks = _blocks(cs)
    if blocks is None:
        y = tf.matmul(uc, const(cs.w))
    else:   # the same product without its zero blocks (a third of the matrix to read)
        y = tf.concat([tf.matmul(uc[:, r0:r1], const(cs.w[r0:r1, c0:c1]))
                       for (r0, r1), (c0, c1) in blocks], axis=1)
    shift = cs.center @ cs.w
    raws = []
    if cs.layer_count:
        k = cs.means.shape[0]
        d = y[:, None, :cs.total] - const(cs.means - shift[:cs.total])[None]
        per_class = tf.reshape(tf.matmul(tf.reshape(d * d, [-1, cs.total]), const(cs.layer_sums)),
                               [-1, k, cs.layer_count])
        dist = tf.reduce_min(per_class, axis=1)
        if cs.bg is not None:
            e = y[:, cs.total:cs.vim_at] - const(cs.bg - shift[cs.total:cs.vim_at])
            dist = dist - tf.matmul(e * e, const(cs.layer_sums))
        raws.append(dist)
    top = tf.reduce_max(logits, axis=1, keepdims=True)
    shifted = logits - top
    t = cs.temperature
    probs = tf.nn.softmax(shifted / t, axis=1)
    if cs.features is not None:
        f = u[:, cs.features]
        norm = tf.sqrt(tf.reduce_sum(f * f, axis=1))
    for name in cs.parts:
        if name == "energy":
            lse = tf.math.log(tf.reduce_sum(tf.exp(shifted / t), axis=1))
            raw = -(top[:, 0] + t * lse)
        elif name == "vim":
            r = y[:, cs.vim_at:] - const(cs.vim_origin - shift[cs.vim_at:])
            lse1 = tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=1))
            raw = cs.vim_alpha * tf.sqrt(tf.reduce_sum(r * r, axis=1)) - (top[:, 0] + lse1)
        elif name == "knn":
            unit = f / tf.maximum(norm, 1e-12)[:, None]
            sims = tf.matmul(unit, const(cs.bank_t))
            kth = tf.math.top_k(sims, cs.k).values[:, -1]   # as np.partition: ties counted
            raw = tf.sqrt(tf.maximum(2.0 - 2.0 * kth, 0.0))
        else:   # norm
            raw = -norm
        raws.append(raw[:, None])
    raw = tf.concat(raws, axis=1)
    score = tf.reduce_sum(raw * const(cs.scale)[None], axis=1) + np.float32(cs.offset)
    return {SCORE_KEY: score, PROBS_KEY: probs}


def _blocks(cs: CompiledSum) -> list[tuple[tuple[int, int], tuple[int, int]]] | None:
    """The non-zero blocks of ``cs.w`` in column order, as (rows, columns) ranges: each layer's
    whitening, then (relative) its background's, then the virtual logit's basis on the pooled
    features; None where anything of ``w`` lies outside them."""
    w = cs.w
    spans = []
    for j in range(cs.layer_count):
        rows = np.flatnonzero(cs.layer_sums[:, j])
        spans.append((int(rows[0]), int(rows[-1]) + 1))
    blocks = [((a, b), (a, b)) for a, b in spans]
    if cs.bg is not None:
        blocks += [((a, b), (cs.total + a, cs.total + b)) for a, b in spans]
    if w.shape[1] > cs.vim_at:
        if cs.features is None:
            return None
        blocks.append(((cs.features.start, cs.features.stop), (cs.vim_at, w.shape[1])))
    covered = np.zeros(w.shape, bool)
    for (r0, r1), (c0, c1) in blocks:
        covered[r0:r1, c0:c1] = True
    cols = [c for _, (c0, c1) in blocks for c in range(c0, c1)]
    if cols != list(range(w.shape[1])) or np.any(w[~covered]):
        return None
    return blocks


def with_score(inspect_model, cs: CompiledSum | None):
    """A callable like ``inspect_model`` (``f([x]) -> dict``) whose outputs include the score's
    (``inspect_model`` itself without a compiled score)."""
    if cs is None:
        return inspect_model

    def call(inputs, training=False):
        out = dict(inspect_model(inputs, training=training))
        out.update(score_outputs(cs, out))
        return out

    return call
