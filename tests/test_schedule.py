"""A training run that ends on time (training.schedule): the schedule on the clock, the stop at
the epoch boundary nearest the deadline, and fit() driven by a stand-in clock."""
import numpy as np
import pytest

from training import schedule


def test_learning_rate_warms_up_then_decays_to_zero():
    lr = [schedule.learning_rate(1.0, p, 0.1) for p in np.linspace(0, 1, 101)]
    assert lr[0] == pytest.approx(schedule.WARMUP_START)
    assert lr[10] == pytest.approx(1.0)                  # the peak at the end of the warm-up
    assert np.all(np.diff(lr[:11]) > 0) and np.all(np.diff(lr[10:]) < 0)
    assert lr[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr[55] == pytest.approx(0.5)                  # half-way through the decay
    assert schedule.learning_rate(1.0, 2.0, 0.1) == pytest.approx(0.0, abs=1e-12)   # past the end
    assert schedule.learning_rate(0.3, 0.7, 0.1, "constant") == 0.3
    assert schedule.learning_rate(1.0, 0.0, 0.0) == pytest.approx(1.0)              # no warm-up


def test_progress_is_time_or_steps_whichever_is_further():
    assert schedule.progress(30, 120, 10, 100) == pytest.approx(0.25)
    assert schedule.progress(30, 120, 50, 100) == pytest.approx(0.5)   # a much faster PC
    assert schedule.progress(500, 120, 1, 100) == 1.0


def test_stops_at_the_epoch_boundary_nearest_the_deadline():
    assert not schedule.time_is_up(80, 20, 100)    # one more epoch ends exactly on time
    assert schedule.time_is_up(91, 20, 100)        # one more would overrun by 11 s > 9 s short
    assert not schedule.time_is_up(89, 20, 100)
    assert schedule.time_is_up(100, 20, 100)
    assert schedule.warmup_share(2, 26) == pytest.approx(2 / 26)
    assert schedule.warmup_share(2, 2) == 0.5
    assert schedule.epoch_cap(26) == 26 * schedule.EPOCH_CAP_FACTOR


class StandInClock:
    """One second passes whenever training reads the clock: a run's length in these seconds
    depends only on how often it looks, not on this machine's speed."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def _fit_tiny(seed: int, **config):
    """fit() on 24 random 32x32 images of three classes (3 batches an epoch, warm-up 1 epoch);
    returns the config, the result and every epoch's record."""
    from training.train import TrainConfig, fit

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (24, 32, 32, 3)).astype(np.uint8)
    y = np.repeat(np.arange(3), 8)
    clock = config.pop("clock", None)
    finish_after = config.pop("finish_after", 0)
    config = {"camera_shifts": False, **config}
    cfg = TrainConfig(batch_size=8, input_size=32, warmup_epochs=1, class_weighting="none",
                      **config)
    seen = []
    extra = {"clock": clock} if clock else {}
    if finish_after:   # "Finish now" asked once this many epochs were reported
        extra["finish_now"] = lambda: len(seen) >= finish_after
    res = fit(x, y, x[:6], y[:6], ("a", "b", "c"), cfg, on_epoch=seen.append, **extra)
    return cfg, res, seen


@pytest.mark.slow
def test_fit_ends_on_time_with_its_schedule_on_the_clock():
    config, res, seen = _fit_tiny(0, epochs=4, time_budget_s=40.0, clock=StandInClock())
    ph = res.phases[-1]
    # 3 batches an epoch read the clock about 8 times: 5 epochs fit in 40 stand-in seconds,
    # more than the 4 estimated (this "PC" is faster than its estimate) and fewer than the cap
    assert config.epochs < ph["epochs_run"] < schedule.epoch_cap(config.epochs)
    assert ph["ended_on_time"] and ph["time_budget_s"] == 40.0 and not ph["stopped_early"]
    lrs = [r["learning_rate"] for r in seen]
    assert max(lrs) <= config.learning_rate * (1 + 1e-6)
    assert lrs[-1] < 0.1 * config.learning_rate          # decayed by the deadline
    assert lrs[-1] < lrs[len(lrs) // 2]
    assert seen[-1]["seconds_left"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("budget", [0.0, 400.0])
def test_finish_now_ends_after_the_epoch_with_its_best_weights(budget):
    """The wizard's "Finish now": the training ends after the epoch under way (asked once the
    second of ten was shown: the third), with or without a time budget, keeps its best epoch
    and says why."""
    _, res, seen = _fit_tiny(3, epochs=10, finish_after=2, time_budget_s=budget,
                             clock=StandInClock())
    ph = res.phases[-1]
    assert [r["epoch"] for r in seen] == [1, 2, 3] and ph["epochs_run"] == 3
    assert ph["stopped_early"] and "ended after epoch 3" in ph["finished_by_user"]
    assert not ph.get("ended_on_time") and seen[-1]["seconds_left"] == 0.0
    assert res.best_epoch in (1, 2) and ph["best_epoch"] == res.best_epoch


@pytest.mark.slow
def test_fit_without_a_budget_follows_the_same_schedule_on_its_steps():
    config, _, seen = _fit_tiny(1, epochs=3)
    steps, total = 3, 9
    # the rate an epoch ends with is the one its last batch was set to (warm-up over 1 of 3)
    want = [schedule.learning_rate(config.learning_rate, (e * steps + steps - 1) / total, 1 / 3)
            for e in range(3)]
    assert [r["learning_rate"] for r in seen] == pytest.approx(want, rel=1e-5)
    assert want[0] < config.learning_rate and want[2] < want[1]


@pytest.mark.slow
def test_fit_chooses_its_best_epoch_on_the_shifted_selection_set(monkeypatch):
    from training import train as train_mod

    seen = []
    real = train_mod._datasets

    def spy(x_train, y_train, x_val, y_val, *args):
        seen.append((len(x_val), np.bincount(y_val).tolist()))
        return real(x_train, y_train, x_val, y_val, *args)

    monkeypatch.setattr(train_mod, "_datasets", spy)
    _, res, _ = _fit_tiny(2, epochs=1, val_shifted_copies=3, camera_shifts=True)
    assert seen == [(24, [24])]   # 6 validation images (all of class 0) and 3 shifted copies
    assert res.phases[-1]["best_epoch_chosen_on"].startswith("6 validation images and 18")
    seen.clear()
    _, res, _ = _fit_tiny(2, epochs=1, val_shifted_copies=3)    # no camera: clean validation
    assert seen == [(6, [6])] and "best_epoch_chosen_on" not in res.phases[-1]


def test_paired_batches_hold_two_independent_views_of_the_same_images():
    from training.augment import augmented_batches
    from training.train import TrainConfig

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (10, 32, 32, 3)).astype(np.uint8)
    y = np.arange(10) % 3
    cfg = TrainConfig(batch_size=4, input_size=32, consistency=1.0)
    batches = list(augmented_batches(x, y, cfg, epoch=0))
    assert [len(b) for b, _ in batches] == [8, 8, 4]        # 4 + 4 + 2 images, two views each
    for b, lab in batches:
        n = len(b) // 2
        assert np.array_equal(lab[:n], lab[n:])
        assert not np.array_equal(b[:n], b[n:])             # each view augmented on its own
    again = list(augmented_batches(x, y, cfg, epoch=0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    # without augmentation there is nothing to pair
    plain = list(augmented_batches(x, y, TrainConfig(batch_size=4, augment=False,
                                                    consistency=1.0), epoch=0))
    assert [len(b) for b, _ in plain] == [4, 4, 2]


def test_a_clean_teacher_pairs_each_image_without_and_with_the_camera():
    """--consistency-teacher clean: the first half of a batch is each image turned and shifted
    through no camera, the second the same turn and shift through a random camera; the loss's
    term is KL(clean || shifted) with the clean prediction held fixed."""
    import tensorflow as tf

    from training.augment import augmented_batches, consistency_loss, turned
    from training.train import TrainConfig

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (6, 32, 32, 3)).astype(np.uint8)
    y = np.arange(6) % 3
    cfg = TrainConfig(batch_size=3, input_size=32, consistency=1.0, consistency_teacher="clean",
                      rotation_degrees=0, shift_fraction=0)
    seen = 0
    for b, lab in augmented_batches(x, y, cfg, epoch=0):
        n = len(b) // 2
        assert np.array_equal(lab[:n], lab[n:])
        for clean in b[:n]:   # one of the eight turns of a training image, unchanged otherwise
            assert any(np.array_equal(clean, turned(img, np.random.default_rng(0), False, 0))
                       or any(np.array_equal(clean, np.rot90(img, k)) or
                              np.array_equal(clean, np.rot90(img, k)[:, ::-1]) for k in range(4))
                       for img in x)
        seen += int(sum(not np.array_equal(a, c) for a, c in zip(b[:n], b[n:])))
    assert seen >= 3   # most shifted views differ from their clean view
    assert TrainConfig(consistency_teacher="soft").problems()
    assert TrainConfig(consistency_teacher="clean").problems()   # without --consistency: said
    # the term is KL(p || q), and no gradient reaches the clean view's prediction
    yt = np.array([[1, 0], [1, 0]], np.float32)
    pq = tf.Variable(np.array([[0.9, 0.1], [0.6, 0.4]], np.float32))
    with tf.GradientTape() as tape:
        loss = consistency_loss(0.0, 2.0, clean_teacher=True)(yt, pq)
    p, q = np.array([0.9, 0.1]), np.array([0.6, 0.4])
    kl = float(np.sum(p * np.log(p / q)))
    assert np.allclose(np.asarray(loss), -np.log([0.9, 0.6]) + 2 * kl, atol=1e-5)
    g = tape.gradient(loss, pq).numpy()
    with tf.GradientTape() as tape:
        ce_only = consistency_loss(0.0, 0.0, clean_teacher=True)(yt, pq)
    g0 = tape.gradient(ce_only, pq).numpy()
    assert np.allclose(g[0], g0[0], atol=1e-6)             # the clean row: its cross-entropy only
    assert not np.allclose(g[1], g0[1], atol=1e-3)         # the shifted row is pulled to it


def test_mixup_blends_each_batch_with_a_shuffled_copy_of_itself():
    from training.augment import mixed_batch, training_datasets
    from training.train import TrainConfig

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 16, 16, 3)).astype(np.uint8)
    y = np.arange(8) % 3
    mx, my = mixed_batch(x, y, 3, 0.4, np.random.default_rng(5))
    assert mx.dtype == np.float32 and mx.min() >= 0 and mx.max() <= 255
    assert np.allclose(my.sum(axis=1), 1)
    # each blend is lam * x[i] + (1 - lam) * x[perm[i]], labels alike
    again = np.random.default_rng(5)
    lam, perm = again.beta(0.4, 0.4), again.permutation(8)
    assert np.allclose(mx, lam * x + (1 - lam) * x[perm].astype(np.float32), atol=1e-3)
    assert np.allclose(my, lam * np.eye(3)[y] + (1 - lam) * np.eye(3)[y[perm]], atol=1e-6)
    # through the training stream: soft labels, the same for a seed; validation stays one-hot
    cfg = TrainConfig(batch_size=4, input_size=16, augment=False, mixup=0.4)
    train, val = training_datasets(x, y, x[:2], y[:2], cfg, 3)
    first = [(b.numpy(), l.numpy()) for b, l in train.take(2)]
    assert any(np.any((l > 0) & (l < 1)) for _, l in first)
    second = [(b.numpy(), l.numpy()) for b, l in
              training_datasets(x, y, x[:2], y[:2], cfg, 3)[0].take(2)]
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(first, second))
    assert set(np.unique(next(iter(val))[1].numpy())) == {0.0, 1.0}
    assert TrainConfig(mixup=0.2, consistency=1.0).problems()
    assert TrainConfig(mixup=-1).problems() and not TrainConfig(mixup=0.2).problems()
    # Keras's class_weight would weigh a blend by its larger share alone
    assert TrainConfig(mixup=0.2, class_weighting="balanced").problems()
    assert TrainConfig(mixup=0.2, augment_check=True).problems()


def test_consistency_loss_adds_the_divergence_between_the_two_views():
    from training.augment import consistency_loss

    y = np.array([[1, 0], [0, 1]] * 2, np.float32)
    same = np.array([[0.9, 0.1], [0.2, 0.8]] * 2, np.float32)
    differ = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.6, 0.4]], np.float32)
    plain = np.asarray(consistency_loss(0.0, 0.0)(y, differ))
    with_js = np.asarray(consistency_loss(0.0, 5.0)(y, differ))
    assert np.allclose(consistency_loss(0.0, 5.0)(y, same), consistency_loss(0.0, 0.0)(y, same),
                       atol=1e-6)                            # equal views: cross-entropy only
    assert np.allclose(plain, -np.log(differ[[0, 1, 2, 3], [0, 1, 0, 1]]), atol=1e-5)
    extra = with_js - plain
    assert np.all(extra > 0.01) and np.allclose(extra[:2], extra[2:])   # one value per pair


@pytest.mark.slow
def test_fit_with_consistency_trains_and_keeps_plain_validation():
    _, res, seen = _fit_tiny(1, epochs=2, consistency=2.0, camera_shifts=True)
    assert len(seen) == 2 and res.best_epoch in (1, 2)
    assert 0.0 <= res.best_val_accuracy <= 1.0
