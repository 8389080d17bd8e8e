"""training.train and training.cli: a full train/evaluate/export round trip, cancelling,
cross-validation and the command line's errors. Real training: most tests here are slow."""
import json
import os
import time

import numpy as np
import pytest

from synth import CLASSES, make_dataset
from training.cli import main as cli_main
from training.images import load_image


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("rt")
    data = make_dataset(root / "data", classes=CLASSES[:3], per_class=12, size=48, fmt="bmp")
    out = root / "bundle"
    rc = cli_main(["train", "--data", str(data), "--out", str(out), "--epochs", "2",
                   "--batch", "8", "--val-fraction", "0.17", "--test-fraction", "0.17"]
                  + ["--design", "B", "--seed", "3"])
    assert rc == 0
    return data, out


@pytest.mark.slow
def test_train_writes_a_complete_bundle(trained_bundle):
    data, out = trained_bundle
    card = json.loads((out / "model_card.json").read_text())
    assert card["class_names"] == list(CLASSES[:3])
    assert card["parameters"] == 23588 - 3 * 64 - 3  # 3 classes instead of 6
    assert card["dataset"]["file_count"] == 36
    assert len(card["dataset"]["file_list_sha256"]) == 64
    assert card["training"]["config"]["epochs"] == 2
    assert card["training"]["config"]["input_norm"] == "standardize"   # "auto", grey images
    assert card["metrics"]["test"]["count"] == 6
    # the 48 px images were squeezed into the 200 px input: the app tiles at 48 px
    assert (card["view"]["tile"], card["view"]["largest"], card["view"]["images"]) == (48, 48, 36)
    assert card["view"]["square"] is True
    # 6 validation images: too few for the unknown detector, and the card says why
    assert card["unknown_detection"] is None
    assert card["unknown_detection_missing"].startswith("only 6 validation image(s)")
    for name in ("model.keras", "history.csv", "split.json", "confusion.png", "test_report.json",
                 "inspection.json", "inspect_fp32.tflite", "inspect_fp32_grey.tflite"):
        assert (out / name).exists(), name
    # every LiteRT format (a module fixture: made before tests/conftest.py's fp32-only patch)
    assert {"fp32", "fp16", "int8"} <= set(card["exports"]["inspection"])
    assert len((out / "history.csv").read_text().strip().splitlines()) == 3
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


@pytest.mark.slow
def test_bundle_loads_in_safe_mode(trained_bundle):
    import keras

    _, out = trained_bundle
    model = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    assert model.get_layer("last_dw").kernel_size == (11, 11)


@pytest.mark.slow
def test_evaluate_and_export_round_trip(trained_bundle, tmp_path, capsys):
    data, out = trained_bundle
    report_json = tmp_path / "r.json"
    assert cli_main(["evaluate", "--model", str(out), "--data", str(data), "--json",
                     str(report_json), "--png", str(tmp_path / "cm.png")]) == 0
    keras_report = json.loads(report_json.read_text())
    assert keras_report["count"] == 36
    # the whole folder holds the images it trained on: said, with the way out
    assert "30 of these 36 images are in the model's own training or validation split" in \
        capsys.readouterr().err
    assert np.asarray(keras_report["confusion_matrix"]).sum() == 36
    assert (tmp_path / "cm.png").stat().st_size > 1000
    assert cli_main(["export", "--model", str(out), "--format", "tflite-fp32", "tflite-int8"]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert set(card["exports"]) == {"inspection", "tflite-fp32", "tflite-int8"}  # train() exports inspection
    from training.predict import open_predictor

    keras_p = open_predictor(out)
    fp32 = open_predictor(out / "model_fp32.tflite")
    int8 = open_predictor(out / "model_int8.tflite")
    x = np.stack([load_image(p, 200) for p in sorted((data / "patches").iterdir())[:4]])
    np.testing.assert_allclose(fp32.predict(x), keras_p.predict(x), atol=1e-4)
    q = int8.predict(x)
    assert q.shape == (4, 3) and np.all(np.abs(q.sum(axis=1) - 1) < 0.05)
    # int8 convolutions, the per-image normalisation in float (the card says which operations)
    from ai_edge_litert.interpreter import Interpreter

    from training.inspection_export import INT8_FLOAT_OPS

    assert card["exports"]["tflite-int8"]["float_ops"] == list(INT8_FLOAT_OPS)
    interp = Interpreter(model_path=str(out / "model_int8.tflite"))
    dtype = {t["index"]: t["dtype"] for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert any(op["op_name"] == "CONV_2D" and dtype[op["inputs"][0]] == np.int8 for op in ops)
    assert all(dtype[op["inputs"][0]] == np.float32 for op in ops if op["op_name"] == "RSQRT")
    assert any(op["op_name"] == "RSQRT" for op in ops)
    assert cli_main(["evaluate", "--model", str(out / "model_int8.tflite"), "--data", str(data)]) == 0


@pytest.mark.slow
def test_evaluate_a_split_of_the_bundles_own_data(trained_bundle, tmp_path, capsys):
    import shutil

    data, out = trained_bundle
    report_json = tmp_path / "test.json"
    assert cli_main(["evaluate", "--model", str(out), "--data", str(data), "--split", "test",
                     "--json", str(report_json)]) == 0
    split = json.loads((out / "split.json").read_text())
    assert json.loads(report_json.read_text())["count"] == len(split["test"]) == 6
    gone = data.parent / "partial"          # a data folder that lacks one of the test files
    shutil.copytree(data, gone)
    (gone / split["test"][0]).unlink()
    assert cli_main(["evaluate", "--model", str(out), "--data", str(gone), "--split", "test"]) == 2
    assert "1 file(s) of the bundle's test split are missing" in capsys.readouterr().err


def test_train_with_a_one_class_folder_fails_cleanly(tmp_path, capsys):
    make_dataset(tmp_path / "d", classes=("crazing",), per_class=3, size=16)
    rc = cli_main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "b"), "--epochs", "1"])
    assert rc == 2
    assert "at least two" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_cancel_leaves_no_bundle(tmp_path):
    from training.train import TrainConfig, TrainingCancelled, train

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 15  # after reading the images, during training

    with pytest.raises(TrainingCancelled):
        train(data, tmp_path / "b", TrainConfig(epochs=3, batch_size=4, input_size=32), should_stop=stop)
    assert not (tmp_path / "b").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "d"]


@pytest.mark.slow
def test_cross_validation_reports_every_fold(tmp_path):
    from training.train import TrainConfig, cross_validate, format_cv

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    seen = []
    result = cross_validate(data, TrainConfig(epochs=1, batch_size=4, input_size=32), folds=2,
                            on_fold=seen.append)
    assert [r["fold"] for r in result["results"]] == [1, 2]
    assert sum(r["test"] for r in result["results"]) == 12
    assert len(seen) == 2 and len(seen[0]["results"]) == 1
    # a file saved after the first fold says it is not the whole cross-validation yet
    assert seen[0]["folds_done"] == [1] and seen[0]["complete"] is False
    assert result["folds_done"] == [1, 2] and result["complete"] is True
    assert 0.0 <= result["accuracy_mean"] <= 1.0
    assert "mean accuracy" in format_cv(result)
    # the settings as asked ("auto"), so that --resume compares like with like, and the choice
    from training.cli import _settings_differ

    assert result["config"]["input_norm"] == "auto" and result["input_norm_used"] == "standardize"
    assert _settings_differ(result["config"], TrainConfig(epochs=1, batch_size=4,
                                                          input_size=32)) == []


def test_resuming_takes_a_report_written_before_auto_input_norm():
    """Reports before 2026-12-06 recorded the default input_norm as "standardize"."""
    from training.cli import _settings_differ
    from training.train import TrainConfig

    old = {**TrainConfig(epochs=3).describe(), "input_norm": "standardize"}
    assert _settings_differ(old, TrainConfig(epochs=3)) == []
    assert _settings_differ({**old, "input_norm": "rescale"}, TrainConfig(epochs=3)) == [
        "input_norm 'rescale' (now 'auto')"]
    # a report written with "auto" is not resumed under another setting
    assert _settings_differ(TrainConfig(epochs=3).describe(),
                            TrainConfig(epochs=3, input_norm="standardize")) == [
        "input_norm 'auto' (now 'standardize')"]


def test_resumed_rows_must_have_trained_with_the_normalisation_chosen_now():
    from training.data import DatasetError
    from training.train import TrainConfig, check_resumed_norm

    auto, grey, colour = (TrainConfig(), TrainConfig(input_norm="standardize"),
                          TrainConfig(input_norm="standardize_colour"))
    check_resumed_norm([{"input_norm": "standardize"}, {}], auto, grey, "folds")   # fine
    with pytest.raises(DatasetError, match="trained with input_norm standardize, and these "
                                           "images now choose standardize_colour"):
        check_resumed_norm([{}], auto, colour, "folds")   # a row from before: standardize
    check_resumed_norm([{}], colour, colour, "folds")   # asked for then as now
    check_resumed_norm([], auto, colour, "folds")


@pytest.mark.slow
def test_cross_validation_measures_the_temperature_and_acceptance_on_each_fold(tmp_path):
    """As training does after the model, each fold fits the temperature and the unknown detector
    and measures them on its held-out images."""
    from training.train import TrainConfig, cross_validate, format_cv

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=40, size=16)
    result = cross_validate(data, TrainConfig(epochs=1, batch_size=8, input_size=32,
                                              val_fraction=0.3), folds=2)
    for r in result["results"]:
        c = r["calibration"]
        assert c["temperature"] > 0 and 0.0 <= c["ece_after"] <= 1.0
        assert 0.0 <= c["accepted"] <= 1.0
    assert set(result["calibration_mean"]) == {"ece_before", "ece_after", "accepted",
                                               "accuracy_on_accepted"}
    assert "accepted as known" in format_cv(result)


@pytest.mark.slow
def test_cross_validation_of_a_recipe_in_stages_fine_tunes_each_fold(tmp_path, monkeypatch):
    import training.train as train_mod
    from training.train import TrainConfig, cross_validate, format_cv

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    calls, real_fit = [], train_mod.fit

    def spy(*args, model=None, **kw):
        calls.append((args[5].epochs, model))
        return real_fit(*args, model=model, **kw)

    monkeypatch.setattr(train_mod, "fit", spy)
    first = TrainConfig(epochs=1, batch_size=4, input_size=32)
    result = cross_validate(data, first, folds=2,
                            stages=[TrainConfig(epochs=2, batch_size=4, learning_rate=1e-4)])
    # per fold: the first stage from scratch, the second on the first stage's model
    assert [e for e, _ in calls] == [1, 2, 1, 2]
    assert calls[0][1] is None and calls[1][1] is not None and calls[2][1] is None
    assert all(len(r["best_epoch"]) == 2 for r in result["results"])
    assert result["stages"][0]["epochs"] == 2 and result["stages"][0]["input_size"] == 32
    assert "/" in format_cv(result).splitlines()[1]


def test_a_later_stage_of_cv_takes_training_options_but_not_the_split_or_size():
    from training.cli import _stage_config

    cfg = _stage_config("--epochs 30 --lr 5e-4 --camera wide_blur --val-shifted 3")
    assert (cfg.epochs, cfg.learning_rate, cfg.camera, cfg.val_shifted_copies) == \
        (30, 5e-4, "wide_blur", 3)
    for bad in ("--init runs/x", "--size 128", "--seed=3", "--design B"):
        with pytest.raises(ValueError, match="cannot change"):
            _stage_config(bad)
    for bad, why in (("--see 7", "not training options"), ("--lr 1e-3,1e-4", "no grid"),
                     ("--epochs 'x", "quotation")):
        with pytest.raises(ValueError, match=why):
            _stage_config(bad)


def test_cv_takes_a_stage_whose_options_start_with_a_dash():
    from training.cli import _then_values, build_parser

    argv = ["cv", "--data", "d", "--then", "--no-augment", "--then", "--epochs=30"]
    args = build_parser().parse_args(_then_values(argv))
    assert args.then == ["--no-augment", "--epochs=30"]


def test_later_stages_keep_the_first_stages_images_and_model_shape():
    from training.train import TrainConfig, later_stages

    first = TrainConfig(seed=7, input_size=64, design="B", val_fraction=0.2)
    (stage,) = later_stages(first, [TrainConfig(epochs=3, init_bundle="x")])
    assert (stage.seed, stage.input_size, stage.design, stage.val_fraction, stage.epochs,
            stage.init_bundle) == (7, 64, "B", 0.2, 3, None)


@pytest.mark.slow
def test_a_split_without_validation_trains(tmp_path):
    from training.train import TrainConfig, train

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    card = train(data, tmp_path / "b", TrainConfig(epochs=1, batch_size=4, input_size=32,
                                                   val_fraction=0.0, test_fraction=0.2))
    assert card["training"]["split"]["validation"] == 0
    assert (tmp_path / "b" / "model.keras").exists()


def test_auto_input_norm_keeps_the_colour_of_colour_images_only():
    from training.train import TrainConfig, with_input_norm

    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (10, 16, 16, 1), dtype=np.uint8), 3, axis=-1)
    tinted = np.clip(grey.astype(int) + [20, 0, -20], 0, 255).astype(np.uint8)
    auto = TrainConfig()
    assert auto.input_norm == "auto"
    assert with_input_norm(auto, grey).input_norm == "standardize"
    assert with_input_norm(auto, tinted).input_norm == "standardize_colour"
    mixed = np.concatenate([grey[:9], tinted[:1]])   # a tenth in colour: a colour data set
    assert with_input_norm(auto, mixed).input_norm == "standardize_colour"
    assert with_input_norm(auto, np.concatenate([grey, tinted[:1]])).input_norm == "standardize"
    for norm in ("standardize", "rescale", "standardize_colour"):   # a setting is kept
        assert with_input_norm(TrainConfig(input_norm=norm), tinted).input_norm == norm
        assert with_input_norm(TrainConfig(input_norm=norm), grey).input_norm == norm


def test_a_fine_tune_that_starts_keeping_colour_starts_colour_blind(tmp_path):
    """From a model that removed each channel's mean, a fine-tune in standardize_colour starts
    with the first kernel averaged over the channels: the same outputs on grey images, a colour
    image read as the mean of its channels. Kept as it is otherwise."""
    import keras
    from synth import make_bundle
    from training.bundle import load_bundle
    from training.train import TrainConfig, build_initial_model

    bundle = make_bundle(tmp_path / "b", input_norm="standardize", litert=False)
    start = load_bundle(bundle).model
    names = load_bundle(bundle).class_names
    colour = build_initial_model(TrainConfig(init_bundle=str(bundle), input_size=64,
                                             input_norm="standardize_colour"), names)
    kernel = np.asarray(colour.get_layer("stem_conv").kernel)
    assert np.allclose(kernel[:, :, :1], kernel)
    x = np.repeat(np.random.default_rng(0).uniform(40, 200, (3, 64, 64, 1)), 3, -1)
    # the first convolution's outputs, where the change is: the network after it amplifies float
    # rounding (oneDNN's AVX2 and AVX-512 kernels differed by 8e-4 in a probability near 0.99)
    stem = [keras.Model(m.inputs, m.get_layer("stem_conv").output) for m in (colour, start)]
    a, b = (np.asarray(m(x)) for m in stem)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
    assert (np.asarray(colour(x)).argmax(-1) == np.asarray(start(x)).argmax(-1)).all()
    same = build_initial_model(TrainConfig(init_bundle=str(bundle), input_size=64), names)
    np.testing.assert_array_equal(np.asarray(same.get_layer("stem_conv").kernel),
                                  np.asarray(start.get_layer("stem_conv").kernel))
    # --freeze-early leaves such a stem trainable, so that it can learn colour
    from training.train import _learns_colour_now
    from training.transfer import freeze_early_layers

    cfg = TrainConfig(init_bundle=str(bundle), input_size=64, input_norm="standardize_colour")
    frozen = freeze_early_layers(colour, keep=_learns_colour_now(cfg))
    assert frozen and "stem_conv" not in frozen and colour.get_layer("stem_conv").trainable
    assert "stem_conv" in freeze_early_layers(same, keep=_learns_colour_now(
        TrainConfig(init_bundle=str(bundle), input_size=64, input_norm="standardize")))


@pytest.mark.slow
def test_colour_images_train_a_model_that_keeps_their_colour(tmp_path):
    """Two classes told apart only by their overall tint: the card records standardize_colour and
    the saved model keeps the tint (its normalisation has the shared mean)."""
    from PIL import Image

    from training.bundle import load_bundle
    from training.model import input_norm_of
    from training.train import TrainConfig, train

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    for k, folder in enumerate(sorted(p for p in data.iterdir() if p.is_dir())):
        for f in folder.iterdir():
            a = np.asarray(Image.open(f).convert("RGB")).astype(int)
            tint = [18, 0, -18] if k == 0 else [-18, 0, 18]
            Image.fromarray(np.clip(a + tint, 0, 255).astype(np.uint8)).save(f)
    card = train(data, tmp_path / "b", TrainConfig(epochs=1, batch_size=4, input_size=32,
                                                   val_fraction=0.0, test_fraction=0.2))
    assert card["training"]["config"]["input_norm"] == "standardize_colour"
    assert "overall colour stays" in card["input"]
    model = load_bundle(tmp_path / "b").model
    assert input_norm_of(model) == "standardize_colour"
    # the tint reaches the saved network: the same texture in the two tints differs after its
    # first convolution
    import keras

    a = np.asarray(Image.open(next((data / CLASSES[0]).iterdir())).convert("RGB"), np.float32)
    grey = np.repeat(a.mean(axis=-1, keepdims=True), 3, axis=-1)
    pair = np.stack([grey + [18, 0, -18], grey + [-18, 0, 18]])
    pair = np.stack([np.asarray(Image.fromarray(np.clip(p, 0, 255).astype(np.uint8)).resize(
        (32, 32))) for p in pair]).astype(np.float32)
    stem = np.asarray(keras.Model(model.inputs, model.get_layer("stem_conv").output)(pair))
    assert np.abs(stem[0] - stem[1]).max() > 1e-2   # per-channel means would make them equal


def test_cli_output_folder_is_created_and_errors_are_one_line(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    rc = cli_main(["evaluate", "--model", str(tmp_path / "nope"), "--data", str(data),
                   "--json", str(tmp_path / "new" / "r.json")])
    assert rc == 2 and "nope" in capsys.readouterr().err
    assert (tmp_path / "new").is_dir()


def test_train_refuses_an_output_folder_that_would_replace_data(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    for out, says in ((data, "must not be"), (tmp_path, "must not be"),
                      (data / "crazing" / "b", "must not be"), (other, "not a model bundle"),
                      (other / "keep.txt", "is a file"),
                      (other / "keep.txt" / "b", "keep.txt is a file, not a folder")):
        rc = cli_main(["train", "--data", str(data), "--out", str(out), "--epochs", "1"])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and "Traceback" not in err, (out, err)
    assert (other / "keep.txt").read_text() == "x"
    assert sorted(p.name for p in data.iterdir()) == sorted(CLASSES[:2])


def test_bundle_target_allows_a_new_or_empty_folder_or_an_existing_bundle(tmp_path):
    from training.bundle import BundleError, check_bundle_target, write_bundle_atomic

    check_bundle_target(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_bundle_target(tmp_path / "empty")
    write_bundle_atomic(tmp_path / "b", lambda d: (d / "model_card.json").write_text("{}"))
    write_bundle_atomic(tmp_path / "b", lambda d: (d / "model_card.json").write_text("{ }"))
    assert (tmp_path / "b" / "model_card.json").read_text() == "{ }"
    (tmp_path / "b" / "model_card.json").unlink()
    (tmp_path / "b" / "x").write_text("")
    with pytest.raises(BundleError, match="not a model bundle"):
        write_bundle_atomic(tmp_path / "b", lambda d: None)


def test_ctrl_c_between_the_two_renames_does_not_leave_the_bundle_missing(tmp_path,
                                                                          monkeypatch):
    """The old bundle is renamed aside, then the new one into place: a Ctrl+C between the two
    left no bundle at the target (the old one hidden until a later write an hour on)."""
    import os
    import signal

    from training.bundle import write_bundle_atomic

    write_bundle_atomic(tmp_path / "b", lambda d: (d / "model_card.json").write_text("{}"))
    real_utime = os.utime

    def ctrl_c_now(path, *a, **k):   # between the renames, as a user's key press would land
        os.kill(os.getpid(), signal.SIGINT)
        return real_utime(path, *a, **k)

    monkeypatch.setattr(os, "utime", ctrl_c_now)
    try:
        write_bundle_atomic(tmp_path / "b", lambda d: (d / "model_card.json").write_text("{ }"))
    except KeyboardInterrupt:   # (not let through: it would end the whole test run)
        pytest.fail("Ctrl+C interrupted the swap of the old and the new bundle")
    assert (tmp_path / "b" / "model_card.json").read_text() == "{ }"
    assert not list(tmp_path.glob(".b.old-*"))


@pytest.mark.parametrize("option, value, says", [
    ("--batch", "0", "--batch must be at least 1"), ("--epochs", "-1", "--epochs must be"),
    ("--lr", "0", "--lr must be above 0"), ("--rotation", "-1000", "--rotation must be"),
    ("--label-smoothing", "5", "--label-smoothing"), ("--patience", "-3", "--patience"),
    ("--size", "1", "--size must be"), ("--classes", "crazing,crazing", "more than once"),
    ("--later-epoch-margin", "-1", "--later-epoch-margin"), ("--version", " ", "--version"),
    ("--time-budget-min", "-2", "--time-budget-min")])
def test_bad_training_options_are_one_line_before_any_work(tmp_path, capsys, option, value, says):
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    for command in (["train", "--out", str(tmp_path / "b")], ["cv", "--folds", "2"]):
        rc = cli_main([*command, "--data", str(data), option, value])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and "Traceback" not in err, (command, err)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("change, says", [
    ({"input_size": "abc"}, "input_size 'abc'"), ({"class_names": ["one"]}, "at least two"),
    ({"class_names": "crazing"}, "at least two")])
def test_a_damaged_model_card_is_named(tmp_path, change, says):
    from training.bundle import BundleError, read_card

    (tmp_path / "model_card.json").write_text(json.dumps(
        {"class_names": ["a", "b"], "input_size": 64, **change}))
    with pytest.raises(BundleError, match=says):
        read_card(tmp_path)


def test_a_damaged_keras_file_is_named(tmp_path):
    from training.bundle import BundleError, load_bundle

    (tmp_path / "model_card.json").write_text(json.dumps({"class_names": ["a", "b"],
                                                          "input_size": 64}))
    (tmp_path / "model.keras").write_text("junk")
    with pytest.raises(BundleError, match="model.keras: damaged"):
        load_bundle(tmp_path)


def test_a_class_too_small_to_validate_and_test_is_named(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    for p in sorted((data / CLASSES[1]).iterdir())[1:]:
        p.unlink()
    rc = cli_main(["train", "--data", str(data), "--out", str(tmp_path / "b"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{CLASSES[1]} (1)" in err and "at least 3" in err


def test_bundle_target_compares_real_folders(tmp_path, monkeypatch):
    from training.bundle import BundleError, check_bundle_target

    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    check_bundle_target(".", ("../data",))                   # beside the data, not inside it
    check_bundle_target("../data/../b", ("../data",))
    (tmp_path / "link").symlink_to(tmp_path / "data", target_is_directory=True)
    with pytest.raises(BundleError, match="must not be"):
        check_bundle_target(tmp_path / "link" / "a" / "b", (tmp_path / "data",))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BundleError, match="afile is a file, not a folder"):
        check_bundle_target(tmp_path / "afile" / "sub")
    (tmp_path / "litter").mkdir()
    (tmp_path / "litter" / "Thumbs.db").write_bytes(b"")
    check_bundle_target(tmp_path / "litter")
    (tmp_path / "litter" / ".keep").write_bytes(b"")
    with pytest.raises(BundleError, match="not a model bundle"):
        check_bundle_target(tmp_path / "litter")


def test_a_bundle_holding_other_files_is_not_replaced_without_a_word(tmp_path, stand_in_bundle):
    """Training into an existing bundle replaces its folder whole: a report saved into it, or
    notes, were deleted silently."""
    import shutil

    from training.bundle import BundleError, check_bundle_target

    b = tmp_path / "b"
    shutil.copytree(stand_in_bundle, b)
    check_bundle_target(b)                                    # only a bundle's own files
    (b / "notes-from-qa.txt").write_text("line 3 camera moved")
    (b / "eval_report.json").write_text("{}")
    with pytest.raises(BundleError, match=r"not part of a model bundle \(eval_report.json, "
                                          r"notes-from-qa.txt\)"):
        check_bundle_target(b)


def test_output_and_option_mistakes_are_said_before_any_work(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    model = str(tmp_path / "nope")
    for argv, says in (
            (["evaluate", "--json", str(afile / "r.json")], f"{afile} is a file, not a folder"),
            (["evaluate", "--json", str(tmp_path)], "is a folder; give a file name"),
            (["cv", "--json", "/proc/self/x.json"], "cannot write there"),   # after hours, before
            (["evaluate", "--png", str(tmp_path / "cm.xyz")], "give an image file name"),
            (["evaluate", "--reliability-png", str(tmp_path / "r.png")], "needs --unknown"),
            (["evaluate", "--unknown", str(tmp_path / "none")], "folder not found"),
            (["evaluate", "--unknown", str(afile)], "a file, not a folder of images"),
            (["cv", "--only", "0"], "the folds are numbered 1 to 5"),
            (["cv", "--only", "9"], "the folds are numbered 1 to 5"),
            (["cv", "--only", "a"], "give fold numbers 1 to 5"),
            (["cv", "--resume"], "give the --json file"),
            (["train", "--out", str(tmp_path / "b"), "--seed", "-5"], "--seed must be from 0 to"),
            (["train", "--out", str(tmp_path / "b"), "--seed", "5000000000"],
             "--seed must be from 0 to 4294967295"),   # NumPy's seeds are 32-bit
            (["train", "--out", str(tmp_path / "b"), "--val-fraction", "1.5"], "--val-fraction")):
        if argv[0] == "evaluate":
            argv = [*argv, "--model", model]
        rc = cli_main([*argv, "--data", str(data)])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "b").exists()
    (tmp_path / "cv.json").write_text("[]")
    assert cli_main(["cv", "--data", str(data), "--resume", "--json", str(tmp_path / "cv.json")]) == 2
    assert "not a cv report" in capsys.readouterr().err
    for argv in (["calibrate", "--model", model, "--accept", "1.5"],
                 ["check", "--data", str(data), "--min-per-class", "0"]):
        with pytest.raises(SystemExit):   # argparse: before any work
            cli_main(argv)
        assert "must be" in capsys.readouterr().err


def test_evaluate_leaves_an_unreadable_file_out_and_says_so(stand_in_bundle, tmp_path, capsys):
    from training.bundle import read_card

    names = read_card(stand_in_bundle)["class_names"]
    data = make_dataset(tmp_path / "d", classes=tuple(names), per_class=2, size=32)
    broken = data / names[0] / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n cut")
    out = tmp_path / "r.json"
    assert cli_main(["evaluate", "--model", str(stand_in_bundle), "--data", str(data),
                     "--json", str(out)]) == 2   # written, on fewer images than there are
    err = capsys.readouterr().err
    assert "1 unreadable image file(s) left out" in err and str(broken) in err
    report = json.loads(out.read_text())
    assert report["count"] == 2 * len(names)
    assert len(report["unreadable_left_out"]) == 1 and str(broken) in report["unreadable_left_out"][0]


def test_a_file_filed_under_two_classes_is_named_before_training(tmp_path, caplog):
    import shutil

    from training.train import TrainConfig, prepare_data

    root = make_dataset(tmp_path / "d", classes=CLASSES[:3], per_class=6, size=32)
    first = sorted((root / CLASSES[0]).iterdir())[0]
    shutil.copy(first, root / CLASSES[2] / "copy.png")
    with caplog.at_level("WARNING"):
        prepare_data(root, TrainConfig(input_size=32))
    assert "filed under different classes" in caplog.text
    assert f"{CLASSES[2]}/copy.png" in caplog.text and first.name in caplog.text


def test_cv_only_runs_a_fold_named_twice_once_and_pillow_must_write_the_png():
    from training.cli import _folds_chosen

    assert _folds_chosen("1,3,1", 5) == [0, 2]
    assert cli_main(["evaluate", "--model", "m", "--data", "d", "--png", "cm.psd"]) == 2


def test_a_stopped_cv_names_what_it_kept_and_resumes_only_on_the_same_images(tmp_path, capsys,
                                                                             monkeypatch):
    from training import train as train_mod
    from training.data import scan_dataset

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    out = tmp_path / "cv.json"
    argv = ["cv", "--data", str(data), "--folds", "2", "--epochs", "1", "--json", str(out)]
    ROW = {"fold": 1, "accuracy": 0.9, "macro_f1": 0.88}

    def one_fold_then_ctrl_c(data_dir, config, folds, progress, should_stop=None,
                             only_folds=None, on_fold=None, previous=(), stages=()):
        on_fold({"folds": folds, "config": config.describe(), "results": [ROW],
                 "dataset": {"file_list_sha256": scan_dataset(data_dir).list_hash()}})
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "cross_validate", one_fold_then_ctrl_c)
    assert cli_main(argv) == 130
    err = capsys.readouterr().err
    assert f"cancelled; the 1 fold(s) finished are saved in {out}" in err and "--resume" in err
    assert json.loads(out.read_text())["results"] == [ROW]
    # resumed and stopped again before a new fold: the earlier folds are still there, and said

    def ctrl_c_at_once(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "cross_validate", ctrl_c_at_once)
    assert cli_main(argv) == 130   # without --resume: said before the first fold
    assert "holds an earlier cv report (folds [1] done)" in capsys.readouterr().err
    assert cli_main(argv + ["--resume"]) == 130
    assert f"cancelled; the 1 fold(s) finished earlier are still in {out}" in \
        capsys.readouterr().err
    # damaged rows (hand-edited, another tool's): refused before a fold is trained and lost
    report = json.loads(out.read_text())
    for rows in ([{"fold": 1}], [{**ROW, "accuracy": "abc"}], [{**ROW, "fold": 7}],
                 [{**ROW, "fold": True}], [ROW, ROW]):
        out.write_text(json.dumps({**report, "results": rows}))
        assert cli_main(argv + ["--resume"]) == 2, rows
        assert "cannot resume" in capsys.readouterr().err
    out.write_text(json.dumps(report))
    # other settings: named
    assert cli_main([a if a != "1" else "2" for a in argv] + ["--resume"]) == 2
    assert "other settings (epochs 1 (now 2)); cannot resume" in capsys.readouterr().err
    # an image added since: the folds would differ, so the run does not resume
    (data / CLASSES[0] / "new.png").write_bytes((data / CLASSES[0]).iterdir().__next__().read_bytes())
    assert cli_main(argv + ["--resume"]) == 2
    assert "written for other images than those in" in capsys.readouterr().err


def test_a_cv_report_written_before_a_new_setting_resumes_with_its_stages(tmp_path, capsys,
                                                                          monkeypatch):
    """A setting added since (``geometry``, 2026-12-07) left at its default is no difference,
    in the whole run's settings and in each ``--then`` stage's alike."""
    from training import train as train_mod
    from training.data import scan_dataset

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    out = tmp_path / "cv.json"
    argv = ["cv", "--data", str(data), "--folds", "2", "--epochs", "1", "--json", str(out),
            "--then", "--epochs 1"]

    def older(described: dict) -> dict:
        return {k: v for k, v in described.items() if k != "geometry"}

    def one_fold_then_ctrl_c(data_dir, config, folds, progress, should_stop=None,
                             only_folds=None, on_fold=None, previous=(), stages=()):
        assert stages   # the --then stage reached cross_validate
        on_fold({"folds": folds, "config": older(config.describe()),
                 "stages": [older(json.loads(json.dumps(s.describe()))) for s in stages],
                 "results": [{"fold": 1, "accuracy": 0.9, "macro_f1": 0.88}],
                 "dataset": {"file_list_sha256": scan_dataset(data_dir).list_hash()}})
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "cross_validate", one_fold_then_ctrl_c)
    assert cli_main(argv) == 130
    capsys.readouterr()

    def ctrl_c_at_once(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "cross_validate", ctrl_c_at_once)
    assert cli_main(argv + ["--resume"]) == 130
    err = capsys.readouterr().err
    assert "cannot resume" not in err and "finished earlier are still in" in err
    # a stage that differs is still refused
    assert cli_main(argv[:-1] + ["--epochs 2", "--resume"]) == 2
    assert "the --then stages" in capsys.readouterr().err


def test_an_unforeseen_error_is_one_line_with_the_details_in_a_file(tmp_path, capsys,
                                                                     monkeypatch):
    from training import train as train_mod

    def out_of_memory(*a, **k):
        raise RuntimeError("OOM when allocating tensor with shape[64,200,200,64]\nmore detail")

    monkeypatch.setattr(train_mod, "cross_validate", out_of_memory)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)   # read TMPDIR again
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    assert cli_main(["cv", "--data", str(data), "--folds", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: RuntimeError: OOM when allocating tensor") and "Traceback" not in err
    [log] = tmp_path.glob("steel-inspector-error-*.log")
    assert f"the details are in {log}" in err
    text = log.read_text()
    assert "training cv" in text and "Traceback" in text and "more detail" in text


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM") or os.name == "nt",
                    reason="POSIX signals")
def test_sigterm_ends_a_training_command_as_ctrl_c_does(tmp_path, capsys, monkeypatch):
    import signal

    from training import train as train_mod

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    out = tmp_path / "cv.json"

    def one_fold_then_sigterm(data_dir, config, folds, progress, should_stop=None,
                              only_folds=None, on_fold=None, previous=(), stages=()):
        on_fold({"folds": folds, "config": config.describe(), "results": [{"fold": 1}]})
        os.kill(os.getpid(), signal.SIGTERM)   # a logoff, a service manager, kill
        for _ in range(1000):   # the handler runs between two bytecodes of the main thread
            time.sleep(0.01)
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(train_mod, "cross_validate", one_fold_then_sigterm)

    def not_handled(signum, frame):   # what the run must replace while it runs
        raise AssertionError("the training command left SIGTERM to the handler before it")

    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:   # under nohup: stays ignored
        pytest.skip("SIGTERM is ignored in this process")
    outer = signal.signal(signal.SIGTERM, not_handled)
    try:
        rc = cli_main(["cv", "--data", str(data), "--folds", "2", "--json", str(out)])
        assert signal.getsignal(signal.SIGTERM) is not_handled   # put back after the run
    finally:
        signal.signal(signal.SIGTERM, outer)
    assert rc == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert f"stopped; the 1 fold(s) finished are saved in {out}" in err


@pytest.mark.parametrize("wide", [2, 14])
def test_training_reads_non_square_images_as_the_app_will(tmp_path, wide):
    """A data set of mostly square images: its few non-square ones are made square by
    reflection (as the app reads them for the model); mostly non-square: all are stretched."""
    from PIL import Image

    from synth import texture
    from training.images import reflect_to_square, resize_rgb
    from training.train import TrainConfig, prepare_data

    root = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=40)
    for k in range(wide):
        Image.fromarray(texture(1, 60, seed=k)[:20]).save(root / CLASSES[1] / f"wide_{k}.png")
    p = prepare_data(root, TrainConfig(input_size=32, val_fraction=0.0, test_fraction=0.0))
    assert p.view["square"] is (wide == 2) and p.view["largest"] == 60
    i = [f.name for f in p.dataset.files].index("wide_0.png")
    rgb = np.stack([texture(1, 60, seed=0)[:20]] * 3, axis=-1)
    want = resize_rgb(reflect_to_square(rgb, 32) if wide == 2 else rgb, 32)
    assert np.array_equal(p.images[i], want)


def test_evaluations_read_images_as_the_bundle_learnt_them(tmp_path):
    from training.cli import _reading
    from training.images import Reading

    bundle = tmp_path / "b"
    bundle.mkdir()
    card = {"name": "m", "class_names": ["a", "b"], "input_size": 32}
    (bundle / "model_card.json").write_text(json.dumps(card))
    # a card from before the record: as the app of then read every image, stretched whole
    assert _reading(bundle, 32) == Reading(False, 0)
    card["view"] = {"tile": 40, "largest": 60, "square": False, "smallest": 20}
    (bundle / "model_card.json").write_text(json.dumps(card))
    (bundle / "model_fp32.tflite").write_bytes(b"")       # a file of the bundle names it too
    assert _reading(bundle, 32) == _reading(bundle / "model_fp32.tflite", 32) == Reading(False)
    card["view"] = {"tile": 40, "largest": 40, "square": True, "smallest": 40}
    (bundle / "model_card.json").write_text(json.dumps(card))
    assert _reading(bundle, 32) == Reading(True, 40)
    assert _reading(tmp_path / "nowhere", 32) == Reading(True, 32)   # an export on its own


def test_info_refuses_a_size_train_would_refuse(capsys):
    """``info --size 50000`` crashed the process (a segmentation fault building the model)."""
    with pytest.raises(SystemExit) as stop:
        cli_main(["info", "--size", "50000"])
    assert stop.value.code == 2 and "must be at most 1024" in capsys.readouterr().err
