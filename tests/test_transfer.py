"""The transfer recipe: class weights, native resolution, head-first then fine-tuning with early
stopping (both phases in the card), and cancelling in each phase."""
import json
from dataclasses import replace

import numpy as np
import pytest

from synth import make_dataset
from training import transfer
from training.card import ModelCard
from training.train import TrainConfig, TrainingCancelled, train


def test_class_weights_only_for_unequal_classes():
    assert transfer.class_weights(np.repeat([0, 1, 2], 10), 3) is None
    w = transfer.class_weights(np.r_[np.zeros(90, int), np.ones(10, int)], 2)
    assert w[0] == pytest.approx(100 / 180) and w[1] == pytest.approx(5.0)
    # each class weighs the same in total
    assert 90 * w[0] == pytest.approx(10 * w[1])
    assert transfer.class_weights(np.r_[np.zeros(90, int), np.ones(10, int)], 2, "none") is None
    with pytest.raises(ValueError):
        transfer.class_weights(np.zeros(3, int), 2, "sqrt")


def test_native_input_size():
    assert transfer.native_input_size(None) == 200
    assert transfer.native_input_size(257) == 200      # magnetic-tile: larger, keep 200
    assert transfer.native_input_size(128) == 128      # NEU-like strips of 128x128
    assert transfer.native_input_size(100) == 96       # down to a multiple of 8
    assert transfer.native_input_size(20) == 32        # never below 32


def test_resized_model_keeps_weights(stand_in_bundle):
    from training.bundle import load_bundle

    b = load_bundle(stand_in_bundle)
    small = transfer.resized_model(b.model, 48)
    assert small.input_shape == (None, 48, 48, 3)
    assert all(np.array_equal(a, c) for a, c in zip(small.get_weights(), b.model.get_weights()))
    x = np.random.default_rng(0).integers(0, 255, (2, 48, 48, 3)).astype(np.float32)
    assert small.predict(x, verbose=0).shape == (2, 6)


def config_for(bundle, **kw):
    base = dict(epochs=3, batch_size=8, input_size=48, init_bundle=str(bundle), patience=0,
                class_names=("pits", "scale", "streaks"), val_fraction=0.2, test_fraction=0.2,
                camera_shifts=False)
    base.update(kw)
    return TrainConfig(**base)


def unequal_data(tmp_path):
    """48x48 images (smaller than the 64x64 stand-in model), unequal classes."""
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale", "streaks"), per_class=6,
                        size=48)
    from synth import texture
    from PIL import Image
    for k in range(6, 20):   # pits gets 20 images, the others 6
        Image.fromarray(texture(0, 48, seed=k)).save(root / "pits" / f"more_{k}.png")
    return root


@pytest.mark.slow
def test_head_first_then_fine_tune_at_native_size(tmp_path, stand_in_bundle):
    root = unequal_data(tmp_path)
    card = train(root, tmp_path / "out", config_for(stand_in_bundle))
    assert card["input_size"] == 48
    phases = card["training"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "fine-tune all layers"]
    assert phases[0]["epochs"] == transfer.HEAD_EPOCHS and phases[0]["seconds"] >= 0
    assert phases[1]["epochs_run"] == 3 and phases[1]["best_epoch"] >= 1
    cw = card["training"]["class_weights"]
    assert cw["pits"] < cw["scale"] == cw["streaks"]
    assert card["training"]["config"]["class_weighting"] == "deferred"
    on_disk = json.loads((tmp_path / "out" / "model_card.json").read_text())
    assert on_disk["training"]["phases"] == phases
    # the engine reads it at the size it was trained at
    from inspector.engine import load_classifier
    clf = load_classifier(tmp_path / "out")
    assert clf.input_size == 48


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch(tmp_path, stand_in_bundle):
    root = unequal_data(tmp_path)
    # a learning rate of 1e-12: the weights stay put, so a better epoch soon stops coming
    card = train(root, tmp_path / "out", config_for(stand_in_bundle, epochs=10, patience=2,
                                                     learning_rate=1e-12, lr_schedule="constant",
                                                     warmup_epochs=0))
    ph = card["training"]["phases"][-1]
    assert ph["stopped_early"] and ph["epochs_run"] < 10
    # patience 2, but never before half of the planned epochs (training.transfer.earliest_stop)
    assert ph["epochs_run"] == max(5, ph["best_epoch"] + 2)
    assert card["metrics"]["best_epoch"] == ph["best_epoch"]


def test_a_failed_litert_export_keeps_the_trained_model(tmp_path, stand_in_bundle, monkeypatch,
                                                        capsys):
    """An export check that fails (fp32 differs from Keras) must not throw the training away:
    the bundle is saved without the LiteRT files, the card and the command say why, and the app
    runs it on TensorFlow and says why."""
    from training import cli, inspection_export
    from training.card import ModelCard

    def fails(*args, **kwargs):
        raise inspection_export.InspectionExportError(
            "LiteRT fp32: the outputs std_features do not match the Keras model's\nmore")

    monkeypatch.setattr(inspection_export, "build_inspection", fails)
    out = tmp_path / "out"
    assert cli.main(["train", "--data", str(unequal_data(tmp_path)), "--out", str(out),
                     "--init", str(stand_in_bundle), "--size", "48", "--epochs", "1",
                     "--batch", "8", "--no-augment"]) == 0
    assert (out / "model.keras").exists() and not (out / "inspection.json").exists()
    assert not list(out.glob("*.tflite"))
    card = ModelCard.of(json.loads((out / "model_card.json").read_text()))
    assert card.export_failure == \
        "LiteRT fp32: the outputs std_features do not match the Keras model's"
    err = capsys.readouterr().err
    assert "its LiteRT export failed its check (LiteRT fp32: the outputs std_features" in err
    assert f"python -m training export --model {out} --format inspection" in err
    from inspector.engine import load_classifier
    clf = load_classifier(out)
    assert clf.runtime_format is None and "failed its check when it was trained" in clf.device
    probs = clf.classify(np.full((48, 48, 3), 128, np.uint8))
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1) < 1e-4


@pytest.mark.slow
def test_the_wizards_export_leaves_int8_out(tmp_path, stand_in_bundle, monkeypatch):
    from training import inspection_export

    asked = []
    converts = inspection_export.build_inspection   # in fp32 only here (tests/conftest.py)
    monkeypatch.setattr(inspection_export, "build_inspection",
                        lambda *a, **k: asked.append(k["formats_wanted"]) or converts(*a, **k))
    card = train(unequal_data(tmp_path), tmp_path / "out",
                 config_for(stand_in_bundle, epochs=1, export_int8=False))
    assert asked == [("fp32", "fp16")]
    out = tmp_path / "out"
    assert (out / "inspect_fp32.tflite").exists() and not (out / "inspect_int8.tflite").exists()
    int8 = card["exports"]["inspection"]["int8"]
    assert int8["usable"] is False and "export_int8 off" in int8["reason"]
    assert card["training"]["config"]["export_int8"] is False
    from inspector.runtime import excluded_formats
    from training.litert import read_info
    assert "int8" not in read_info(out)["formats"]
    info = json.loads((out / "inspection.json").read_text())
    assert "export_int8 off" in excluded_formats(info)["int8"]


@pytest.mark.parametrize("phase", ["head", pytest.param("fine-tune", marks=pytest.mark.slow),
                                   "detector"])
def test_cancel_in_each_phase_writes_nothing(tmp_path, stand_in_bundle, phase):
    root = unequal_data(tmp_path)
    seen = []

    def progress(f, m):
        seen.append(m)

    def should_stop():
        if phase == "head":
            return any(m.startswith("head-first: features") for m in seen)
        if phase == "detector":   # after training: not the export, nor the evaluation
            return any(m.startswith("fitting the temperature") for m in seen)
        return any(m.startswith("epoch 1/") for m in seen)

    with pytest.raises(TrainingCancelled):
        train(root, tmp_path / "out", config_for(stand_in_bundle,
                                                 epochs=1 if phase == "detector" else 5),
              progress, should_stop)
    if phase == "detector":
        assert not any(m.startswith("exporting") for m in seen)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob("out*"))   # no temporary half-bundle either
    if phase == "head":
        assert not any(m.startswith("epoch") for m in seen)


def test_early_stopping_waits_for_half_of_the_schedule():
    from training.transfer import earliest_stop, stop_early

    assert earliest_stop(14) == 7 and earliest_stop(25) == 13 and earliest_stop(1) == 1
    # the 14-epoch add-back run: best epoch 1, five worse epochs while the rate was high
    assert not stop_early(6, 1, 5, 14)
    assert stop_early(7, 1, 5, 14)
    assert not stop_early(7, 3, 5, 14)          # a better epoch 3: patience not used up
    assert not stop_early(14, 1, 5, 14)         # the last epoch is not an early stop
    assert not stop_early(9, 1, 0, 14)          # patience 0: never


def test_augmentation_is_kept_unless_it_makes_much_less_progress_than_clean():
    # each probe's true_class_probability after two epochs (2026-12-05): NEU classes added back
    # and synthetic plant data keep it; magnetic tiles on four splits drop it
    assert transfer.keep_augmentation(0.8516, 0.9143, 6)       # NEU add-back, seed 1: 92%
    assert transfer.keep_augmentation(0.7988, 0.9229, 6)       # crazing, scratches back: 84%
    assert transfer.keep_augmentation(0.8194, 0.8900, 7)       # synthetic plant data: 90%
    assert not transfer.keep_augmentation(0.3430, 0.4572, 6)   # tiles, seed 1: 61%
    assert not transfer.keep_augmentation(0.2943, 0.4686, 6)   # tiles, seed 2: 42%
    chance = 1 / 6
    at = chance + transfer.AUGMENT_PROGRESS * 0.4
    assert transfer.keep_augmentation(at + 1e-9, chance + 0.4, 6)
    assert not transfer.keep_augmentation(at - 1e-6, chance + 0.4, 6)
    assert transfer.keep_augmentation(0.9, 0.5, 6)             # augmented ahead
    assert transfer.keep_augmentation(0.15, 0.16, 6)           # neither above chance: keep it
    assert transfer.keep_augmentation(0.16, 0.2, 6)            # clean barely above chance: noise
    assert transfer.keep_augmentation(0.58, 0.60, 2)           # 2 classes: 0.08 of clean's 0.10
    assert not transfer.keep_augmentation(0.55, 0.60, 2)       # 0.05 of 0.10 is too little


def test_the_checks_score_is_the_balanced_probability_of_the_own_class():
    probs = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [0.3, 0.7, 0.0], [0.2, 0.2, 0.6]])
    # class 0: 0.9 and 0.5; class 1: 0.7; class 2: 0.6 - each class weighs the same
    assert transfer.true_class_probability([0, 0, 1, 2], probs, 3) == pytest.approx(
        (0.7 + 0.7 + 0.6) / 3)
    assert transfer.true_class_probability([0, 0, 1, 1], probs, 3) == pytest.approx(
        (0.7 + (0.7 + 0.2) / 2) / 2)    # a class without images does not count
    assert transfer.true_class_probability([0, 1, 2], np.full((3, 3), 1 / 3), 3) == \
        pytest.approx(1 / 3)           # a guess scores chance
    assert transfer.true_class_probability([], np.zeros((0, 3)), 3) == 0.0


def test_the_check_is_skipped_when_frozen_features_already_separate_the_classes():
    assert transfer.balanced_accuracy([0, 0, 0, 1], [0, 0, 1, 1], 3) == pytest.approx(
        (2 / 3 + 1) / 2)    # a class without images does not count
    head = [{"phase": "head", "val_balanced_accuracy": 0.9702}]   # NEU classes added back
    assert not transfer.check_needed(head, 6)
    # magnetic tiles: the check dropped the augmentation and macro F1 went from 48% to 91%
    assert transfer.check_needed([{"phase": "head", "val_balanced_accuracy": 0.388}], 6)
    limit = 1 / 6 + transfer.HEAD_SEPARATES * 5 / 6
    assert transfer.check_needed([{"phase": "head", "val_balanced_accuracy": limit - 1e-6}], 6)
    assert not transfer.check_needed([{"phase": "head", "val_balanced_accuracy": limit + 1e-9}], 6)
    assert transfer.check_needed([], 6)                                 # no head-first phase
    assert transfer.check_needed([{"phase": "head", "val_accuracy": 0.99}], 6)  # nor its score


@pytest.mark.slow
def test_a_skipped_check_is_recorded_and_keeps_the_augmentation(tmp_path, stand_in_bundle,
                                                                 monkeypatch):
    monkeypatch.setattr(transfer, "HEAD_SEPARATES", -1.0)   # any head "separates"
    card = train(unequal_data(tmp_path), tmp_path / "out",
                 config_for(stand_in_bundle, augment_check=True, epochs=2))
    phases = card["training"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "augmentation check", "fine-tune all layers"]
    assert 0.0 <= phases[0]["val_balanced_accuracy"] <= 1.0
    assert phases[1]["skipped"] and phases[1]["chosen"] == "augmented"
    assert "balanced validation accuracy" in phases[1]["why"]
    assert phases[2]["epochs_run"] == 2     # no time budget: the epochs asked for
    assert card["training"]["config"]["augment"]
    assert phases[2]["learning_rate"] == pytest.approx(card["training"]["config"]["learning_rate"])


@pytest.mark.slow
def test_augmentation_check_records_both_and_trains_on(tmp_path, stand_in_bundle, monkeypatch):
    monkeypatch.setattr(transfer, "HEAD_SEPARATES", 1.01)   # no head separates: always checked
    root = unequal_data(tmp_path)
    card = train(root, tmp_path / "out", config_for(stand_in_bundle, augment_check=True,
                                                     epochs=2))
    phases = card["training"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "augmentation check", "fine-tune all layers"]
    check = phases[1]
    scores = check["val_true_class_probability"]
    n = len(card["class_names"])
    whole = transfer.keep_augmentation(scores["augmented"], scores["clean"], n)
    # the camera alone is tried only when the whole augmentation is dropped, and only where
    # there are camera shifts to keep (not in this stand-in's quick recipe)
    third = not whole and card["training"]["config"]["camera_shifts"]
    probes = {"augmented", "clean"} | ({"camera only"} if third else set())
    assert set(scores) == probes and check["epochs_each"] == transfer.CHECK_EPOCHS
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert set(check["val_balanced_accuracy"]) == probes
    assert set(check["epoch_seconds"]) == probes
    assert all(v > 0 for v in check["epoch_seconds"].values())
    assert check["chosen"] == ("augmented" if whole else "camera only" if third and
                               transfer.keep_augmentation(scores["camera only"], scores["clean"], n)
                               else "clean")
    assert phases[2]["epochs_run"] == 2
    assert phases[2]["learning_rate"] == pytest.approx(card["training"]["config"]["learning_rate"])


@pytest.mark.slow
def test_the_check_falls_back_to_the_camera_alone_when_the_whole_augmentation_is_dropped(
        tmp_path, stand_in_bundle, monkeypatch):
    """Magnetic tiles: turns and changes of scale held the classes back, the camera's light and
    pixel shifts did not. The third probe is kept, the fine-tune trains without geometry, and
    the detector's k-NN bank would hold no turned copies."""
    from training import train as train_mod

    monkeypatch.setattr(transfer, "HEAD_SEPARATES", 1.01)   # always checked
    verdicts = iter([False, True])   # the whole augmentation dropped, the camera alone kept
    monkeypatch.setattr(train_mod.transfer, "keep_augmentation", lambda *a, **k: next(verdicts))
    seen = []   # each training stream's (augment, geometry)
    real = train_mod._datasets

    def datasets(x_train, y_train, x_val, y_val, config, *args):
        seen.append((config.augment, config.geometry))
        return real(x_train, y_train, x_val, y_val, config, *args)

    monkeypatch.setattr(train_mod, "_datasets", datasets)
    card = train(unequal_data(tmp_path), tmp_path / "out",
                 config_for(stand_in_bundle, augment_check=True, epochs=2, camera_shifts=True))
    check = card["training"]["phases"][1]
    assert check["chosen"] == "camera only"
    assert set(check["val_true_class_probability"]) == {"augmented", "clean", "camera only"}
    # the probes (augmented, clean, camera alone), then the fine-tune with the camera alone
    assert seen == [(True, True), (False, True), (True, False), (True, False)]
    # the card's camera is the one it trained with: no field of view, no software turns
    assert card["training"]["camera_augment"]["p_scale"] == 0.0
    # the detector's k-NN bank (when there is one) gets no turned copies for this model
    from training.detect import Turns
    assert Turns.for_training(card["training"]["config"], card["training"]["phases"]).copies == 0
    notes = ModelCard.of(card).notes()
    assert any("without turns, mirrors or changes of scale" in n for n in notes)
    assert not ModelCard.of(card).augmentation_dropped


def test_without_geometry_the_augmentation_neither_turns_nor_rescales(monkeypatch):
    from training import shifts
    from training.augment import augment_image
    from training.detect import CALIBRATION_COPIES, Turns, calibration_copies
    from training.train import TrainConfig

    img = np.zeros((24, 24, 3), np.uint8)
    img[2:6, 3:20] = 255                    # a bar near the top: any turn or shift moves it
    still = TrainConfig(camera_shifts=False, brightness=0.0, contrast=0.0, geometry=False)
    outs = [augment_image(img, np.random.default_rng(s), still) for s in range(20)]
    assert all(np.array_equal(o, img) for o in outs)
    turned = [augment_image(img, np.random.default_rng(s), replace(still, geometry=True))
              for s in range(20)]
    assert sum(not np.array_equal(o, img) for o in turned) >= 10   # the control moves it
    cam = TrainConfig(geometry=False, filled=0.5).camera_settings()
    assert cam.p_scale == 0.0 and cam.p_filled == 0.0 and cam.p_blur > 0 and cam.p_noise > 0
    assert TrainConfig(filled=0.5).camera_settings().p_filled == 0.5
    # calibration and the best epoch's shifted copies keep the camera's distance
    views = []
    real = shifts.field_of_view
    monkeypatch.setattr(shifts, "field_of_view", lambda *a, **k: views.append(1) or real(*a, **k))
    imgs = np.repeat(img[None], 40, axis=0)
    shifts.shifted_copies(imgs, 3, 2, scale=False)
    assert not views
    shifts.shifted_copies(imgs, 3, 2)
    assert views                                                      # the control rescales
    # a model that never learnt turns gets no turned copies in its k-NN bank; its temperature
    # still sees the camera's light and pixel shifts
    assert Turns.for_training(TrainConfig(geometry=False)).copies == 0
    camera_only = [{"phase": "augmentation check", "chosen": "camera only"}]
    assert Turns.for_training(TrainConfig(), camera_only).copies == 0
    assert Turns.for_training(TrainConfig()).copies > 0
    assert calibration_copies(TrainConfig(), camera_only) == CALIBRATION_COPIES


def test_which_models_learnt_turns_and_scale():
    from training.card import geometry_dropped, trained_geometry
    from training.train import TrainConfig

    camera_only = [{"phase": "augmentation check", "chosen": "camera only"}]
    clean = [{"phase": "augmentation check", "chosen": "clean"}]
    assert trained_geometry(TrainConfig()) and trained_geometry({"augment": True})  # older cards
    assert not trained_geometry(TrainConfig(geometry=False))
    assert not trained_geometry(TrainConfig(augment=False))
    assert not trained_geometry(TrainConfig(), camera_only) and geometry_dropped(camera_only)
    assert not trained_geometry(TrainConfig(), clean) and not geometry_dropped(clean)
    card = ModelCard.of({"training": {"phases": camera_only}})
    assert card.geometry_note() and card.notes() == [card.geometry_note()]
    assert ModelCard.of({"training": {"phases": clean}}).geometry_note() is None


def test_the_kept_epoch_is_the_latest_within_one_rare_image_of_the_best():
    from training.train import keep_epoch, selection_margin

    # 134 validation images, 3 of the rarest class: one of them is 1/(6 x 3) of balanced accuracy
    y = np.repeat(np.arange(6), [19, 14, 6, 3, 75, 17])
    assert selection_margin(y, 6, True, 1) == pytest.approx(1 / 18)
    assert selection_margin(y, 6, False, 1) == pytest.approx(1 / 134)
    assert selection_margin(y, 6, True, 0) == 0 and selection_margin(y[:0], 6, True, 1) == 0
    # the magnetic-tile run's balanced accuracies by epoch (docs/retraining.md)
    scores = [0.632, 0.533, 0.646, 0.621, 0.844, 0.746, 0.852, 0.791, 0.822, 0.806, 0.849, 0.804,
              0.840, 0.838, 0.830, 0.828, 0.810, 0.828]

    def kept(margin):
        best, best_loss, top, epoch = -1.0, np.inf, -1.0, 0
        for e, s in enumerate(scores, 1):
            top = max(top, s)
            if keep_epoch(s, 0.5, best, best_loss, top, margin):
                best, best_loss, epoch = s, 0.5, e
        return epoch

    assert kept(0.0) == 7                    # the best alone: an early, one-image fluke
    assert kept(1 / 18) == 18                # the last epoch, 2.4 points under it
    assert kept(0.01) == 11                  # a smaller margin: the latest within 1 point
    # without a margin a tie goes to the lower loss
    assert keep_epoch(0.9, 0.4, 0.9, 0.5, 0.9, 0.0) and not keep_epoch(0.9, 0.6, 0.9, 0.5, 0.9, 0)


def test_a_model_trained_without_the_camera_augmentation_says_so():
    from training.card import ModelCard

    def card(*phases):
        return ModelCard.of({"training": {"phases": list(phases)}})

    dropped = card({"phase": "head"}, {"phase": "augmentation check", "chosen": "clean"})
    assert dropped.augmentation_dropped
    assert "without the camera augmentation" in dropped.augmentation_note()
    kept = card({"phase": "augmentation check", "chosen": "augmented", "skipped": True})
    assert not kept.augmentation_dropped and kept.augmentation_note() is None
    assert card().augmentation_note() is None and ModelCard.of({}).augmentation_note() is None
    assert dropped.notes() == [dropped.augmentation_note()] and kept.notes() == []


def test_a_model_saved_without_an_unknown_detector_says_why():
    """Too few validation images for a threshold: the card records why there is no detector and
    the training commands and the finish page say so (ModelCard.notes)."""
    import numpy as np

    from training.card import ModelCard
    from training.detect import no_detector_reason

    why = no_detector_reason(6, np.array([0, 1, 2]), 3)
    assert why.startswith("only 6 validation image(s)")
    assert no_detector_reason(12, np.array([0, 1, 2]), 3) is None
    assert no_detector_reason(12, np.array([0, 1]), 3) == "a class has no training images"
    card = ModelCard.of({"unknown_detection": None, "unknown_detection_missing": why})
    assert card.unknown_detection_missing == why
    assert card.notes() == [f"No unknown detector: {why}. Every image gets one of its classes, "
                            "however foreign."]
    assert ModelCard.of({"unknown_detection": {"method": "x"}}).notes() == []


def test_the_temperature_of_a_model_trained_without_the_camera_is_fitted_on_clean_images():
    from training.detect import CALIBRATION_COPIES, calibration_copies
    from training.train import TrainConfig

    assert calibration_copies(TrainConfig()) == CALIBRATION_COPIES
    assert calibration_copies(TrainConfig(augment=False)) == 0
    assert calibration_copies({"augment": True, "camera_shifts": False}) == 0
    dropped = [{"phase": "augmentation check", "chosen": "clean"}]
    assert calibration_copies(TrainConfig(), dropped) == 0


def test_deferred_weights_come_on_late_in_the_schedule(tmp_path, stand_in_bundle):
    """Deferred re-weighting: the loss weighs every class 1 until two thirds of the schedule,
    the balanced class weights after; the card's fine-tune phase says from which epoch."""
    import numpy as np

    from training.train import DeferredWeights
    from training.transfer import DEFERRED_START

    d = DeferredWeights({0: 0.5, 1: 2.0}, 2)
    d.switch(DEFERRED_START - 0.01, 5)
    assert d.switched_at is None and list(d.var.numpy()) == [1.0, 1.0]
    d.switch(DEFERRED_START, 6)
    d.switch(0.9, 7)
    assert d.switched_at == 6 and list(d.var.numpy()) == [0.5, 2.0]
    y = np.eye(2, dtype=np.float32)
    p = np.array([[0.8, 0.2], [0.3, 0.7]], np.float32)
    plain = DeferredWeights({0: 1.0, 1: 1.0}, 2).loss(0.0)(y, p).numpy()
    np.testing.assert_allclose(d.loss(0.0)(y, p).numpy(), plain * [0.5, 2.0], rtol=1e-6)
    card = train(unequal_data(tmp_path), tmp_path / "out",
                 config_for(stand_in_bundle, epochs=3, class_weighting="deferred",
                            export_int8=False))
    fine = card["training"]["phases"][-1]
    assert fine["class_weights_from_epoch"] == 3     # 2/3 of 3 epochs: the third
    assert card["training"]["config"]["class_weighting"] == "deferred"


def test_freeze_early_layers_stops_at_a_quarter_of_the_input():
    from training.model import build_ssdc_mininet

    model = build_ssdc_mininet("A", 3, 64, input_norm="standardize")
    frozen = transfer.freeze_early_layers(model)
    assert frozen[0] == "stem_conv" and frozen[-1] == "se1_excite"
    assert "ds3_dw" not in frozen and "classifier" not in frozen
    assert all(not model.get_layer(n).trainable for n in frozen)
    assert model.get_layer("ds3_dw").trainable and model.get_layer("last_dw").trainable
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert 0 < n < sum(int(np.prod(w.shape)) for w in model.weights)
    transfer.unfreeze(model, frozen)
    assert all(layer.trainable for layer in model.layers)


def test_fine_tune_with_early_layers_frozen_keeps_them_and_trains_the_rest(stand_in_bundle):
    """fit() from a bundle with ``freeze_early``: the frozen layers' weights (batch
    normalisation's statistics too) stay the start model's, the later ones change, the phase
    record names the frozen layers and the model comes back with every layer trainable."""
    from training.bundle import load_bundle
    from training.train import fit

    model = load_bundle(stand_in_bundle).model
    start = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (24, 64, 64, 3)).astype(np.uint8)
    y = np.repeat(np.arange(6), 4)
    # a model given to fit() is fine-tuned (a recipe's later stage) with or without init_bundle
    cfg = TrainConfig(epochs=1, batch_size=8, input_size=64, camera_shifts=False,
                      class_weighting="none", freeze_early=True)
    res = fit(x, y, x[:6], y[:6], [f"c{i}" for i in range(6)], cfg, model=model)
    phase = res.phases[-1]
    assert phase["phase"] == "fine-tune, early layers frozen"
    # the stand-in is design B: its first three blocks work at 64 and 32 px of the 64 px input
    assert phase["frozen_layers"][0] == "stem_conv" and phase["frozen_layers"][-1] == "se3_excite"
    for layer in res.model.layers:
        same = all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), start[layer.name]))
        if layer.name in phase["frozen_layers"]:
            assert same, layer.name
        elif layer.name in ("ds4_pw", "last_dw", "classifier"):
            assert not same, layer.name
    assert all(layer.trainable for layer in res.model.layers)


def test_a_setting_added_since_a_report_at_its_default_is_no_difference():
    """``--resume`` of a cv report written before a setting existed (e.g. freeze_early)."""
    import json as _json

    from training.cli import _settings_differ

    cfg = TrainConfig()
    earlier = _json.loads(_json.dumps(cfg.describe()))
    del earlier["freeze_early"]
    assert _settings_differ(earlier, cfg) == []
    assert _settings_differ(earlier, TrainConfig(freeze_early=True)) == [
        "freeze_early None (now True)"]
