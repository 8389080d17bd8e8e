"""A training run that ends on time: the learning-rate schedule runs on the clock.

With ``TrainConfig.time_budget_s`` set, training (the fine-tuning phase, when there is a
head-first phase) gets that many seconds. Its warm-up and cosine decay follow the share of the
budget used, not the share of a fixed number of epochs, and it stops at the epoch boundary
nearest the deadline. ``config.epochs`` is then the estimate (what the measured speed buys);
a PC that turns out faster or slower runs more or fewer epochs, and the run still ends within
about half an epoch of the time it was given. Without it, a speed measured once at the start
decided both the epochs and the time estimate: on a PC whose speed swings by 2x, a run took 20%
less than its estimate, and a slow start-up measurement bought 8 epochs where 25 fitted.

A run without a time budget follows the same warm-up and cosine decay on the share of its
planned steps (``training.train`` sets the rate before every batch either way).

Pure functions; ``training.train.fit`` calls them. Qt- and Keras-free."""
from __future__ import annotations

import math

# a time-budgeted run may take up to this many times its estimated epochs (a PC much faster than
# measured); its schedule then follows the epochs, whichever of the two is further along
EPOCH_CAP_FACTOR = 3
WARMUP_START = 0.05   # the warm-up starts at this fraction of the learning rate (as CosineDecay)


def epoch_cap(epochs: int) -> int:
    """The most epochs a time-budgeted run of ``epochs`` estimated epochs may take."""
    return max(1, int(epochs)) * EPOCH_CAP_FACTOR


def progress(elapsed: float, budget: float, step: int, total_steps: int) -> float:
    """How far along the schedule is, 0..1: the share of the time budget used or of the most
    steps allowed, whichever is larger."""
    by_time = elapsed / budget if budget > 0 else 0.0
    by_steps = step / total_steps if total_steps > 0 else 0.0
    return min(1.0, max(0.0, by_time, by_steps))


def learning_rate(peak: float, p: float, warmup: float, schedule: str = "cosine") -> float:
    """The learning rate at schedule position ``p`` (0..1): a linear warm-up from
    ``WARMUP_START * peak`` to ``peak`` over the first ``warmup`` share, then a cosine decay to 0
    (as ``keras.optimizers.schedules.CosineDecay`` with a warm-up, over time instead of steps).
    ``schedule="constant"``: ``peak`` throughout."""
    if schedule == "constant":
        return float(peak)
    p = min(1.0, max(0.0, p))
    w = min(max(warmup, 0.0), 0.5)
    if p < w:
        return float(peak * (WARMUP_START + (1 - WARMUP_START) * p / w))
    rest = (p - w) / (1 - w) if w < 1 else 1.0
    return float(peak * 0.5 * (1 + math.cos(math.pi * rest)))


def warmup_share(warmup_epochs: int, epochs: int) -> float:
    """The share of a run spent warming up: the configured warm-up epochs out of the planned
    (or, time-budgeted, the estimated) epochs, at most half."""
    return min(0.5, max(0, warmup_epochs) / max(1, epochs))


def time_is_up(elapsed: float, last_epoch_seconds: float, budget: float) -> bool:
    """Whether a time-budgeted run stops after the epoch that just ended: another epoch like the
    last would end further past the deadline than stopping now falls short of it (the run ends
    at the epoch boundary nearest the deadline)."""
    return elapsed + 0.5 * max(last_epoch_seconds, 0.0) >= budget
