"""The training package: architecture contract, data handling, a full train/evaluate/export run."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synth import CLASSES, make_dataset, texture
from training import data as data_mod
from training.cli import main as cli_main
from training.images import ImageReadError, load_image


# ---------------------------------------------------------------- the model

@pytest.mark.parametrize("design,params", [("A", 23590), ("B", 23588)])
def test_parameter_counts_match_the_paper(design, params):
    from training.model import build_ssdc_mininet

    model = build_ssdc_mininet(design)
    assert model.count_params() == params
    assert model.input_shape == (None, 200, 200, 3)
    assert model.output_shape == (None, 6)


def test_flops_match_the_paper():
    from training.flops import count_flops
    from training.model import build_ssdc_mininet

    assert round(count_flops(build_ssdc_mininet("B")) / 1e9, 3) == 0.105


def test_layer_names_and_inspection_outputs():
    from training.model import build_ssdc_mininet, inspection_model, se_block_count

    model = build_ssdc_mininet("B", num_classes=4, input_size=64)
    names = {layer.name for layer in model.layers}
    assert {"rescale", "features", "classifier", "probs", "last_dw"} <= names
    assert model.get_layer("last_dw").kernel_size == (11, 11)
    assert se_block_count(model) == 8
    out = inspection_model(model)(np.zeros((2, 64, 64, 3), np.float32))
    assert out["probs"].shape == (2, 4)
    assert out["se8_excite"].shape == (2, 64)
    assert out["se1_input"].shape == (2, 32, 32, 8)
    assert out["features"].shape[-1] == 64
    np.testing.assert_allclose(np.asarray(out["probs"]).sum(axis=1), 1.0, rtol=1e-5)


def test_model_rescales_raw_pixels_itself():
    from training.model import build_ssdc_mininet

    model = build_ssdc_mininet("A", input_size=32)
    rescale = model.get_layer("rescale")
    assert float(np.asarray(rescale(np.full((1, 1, 1, 3), 255.0, np.float32))).max()) == pytest.approx(1.0)
    assert float(np.asarray(rescale(np.zeros((1, 1, 1, 3), np.float32))).min()) == pytest.approx(-1.0)


def test_new_head_keeps_backbone_weights():
    from training.model import build_ssdc_mininet, replace_head

    model = build_ssdc_mininet("B", 6, 64)
    new = replace_head(model, 3)
    assert new.output_shape == (None, 3)
    np.testing.assert_array_equal(np.asarray(new.get_layer("stem_conv").kernel),
                                  np.asarray(model.get_layer("stem_conv").kernel))


# ---------------------------------------------------------------- images and data

def test_load_image_handles_grey_colour_16bit_and_sizes(tmp_path):
    grey = tmp_path / "g.bmp"
    Image.fromarray(texture(0, 50)).save(grey)
    rgba = tmp_path / "c.png"
    Image.fromarray(np.zeros((30, 80, 4), np.uint8) + 200).save(rgba)
    tif16 = tmp_path / "d.tif"
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tif16)
    for p in (grey, rgba, tif16):
        arr = load_image(p, 64)
        assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
    assert load_image(tif16, 8).max() == 255
    g = load_image(grey, 50)
    assert (g[..., 0] == g[..., 2]).all()  # grey replicated


def test_12_bit_data_in_16_bit_files_uses_its_own_full_scale(tmp_path):
    from training.images import to_model_input

    path = tmp_path / "cam12.tif"
    Image.fromarray(np.full((20, 20), 4095, np.uint16)).save(path)
    assert load_image(path, 20).min() == 255  # 12-bit white is white, not 6% grey
    half = to_model_input(np.full((8, 8), 2048, np.uint16), 8)
    assert 126 <= half.min() <= 129


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_image(bad, 32)


def test_one_class_is_a_clear_error(tmp_path):
    make_dataset(tmp_path, classes=("crazing",), per_class=3, size=16)
    with pytest.raises(data_mod.DatasetError, match="at least two"):
        data_mod.scan_dataset(tmp_path)


def test_empty_class_is_named(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=3, size=16)
    (tmp_path / "scratches").mkdir()
    with pytest.raises(data_mod.DatasetError, match="scratches"):
        data_mod.scan_dataset(tmp_path)


def test_unreadable_files_are_listed_by_load_arrays(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=3, size=16)
    (tmp_path / "patches" / "bad.bmp").write_bytes(b"\x00" * 10)
    ds = data_mod.scan_dataset(tmp_path)
    with pytest.raises(data_mod.DatasetError, match="bad.bmp"):
        data_mod.load_arrays(ds, 16)


def test_mixed_sizes_are_resized(tmp_path):
    make_dataset(tmp_path, classes=("crazing", "patches"), per_class=2, size=16)
    Image.fromarray(texture(1, 90)).save(tmp_path / "patches" / "big.jpg")
    ds = data_mod.scan_dataset(tmp_path)
    arrays, _ = data_mod.load_arrays(ds, 24)
    assert arrays.shape == (5, 24, 24, 3)


def test_split_is_stratified_seeded_and_keeps_duplicates_together(tmp_path):
    make_dataset(tmp_path, classes=CLASSES[:3], per_class=24, size=8)
    for k in range(3):  # byte-identical copies within a class
        shutil.copy(tmp_path / "crazing" / f"cr_{k}.png", tmp_path / "crazing" / f"copy_{k}.png")
    ds = data_mod.scan_dataset(tmp_path)
    tr, va, te = data_mod.stratified_split(ds, 1 / 12, 1 / 12, seed=7)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(len(ds)))
    for idx in (va, te):
        counts = np.bincount(ds.labels[idx], minlength=3)
        assert counts.min() >= 2 and counts.max() - counts.min() <= 2
    side = {}
    for name, idx in (("train", tr), ("val", va), ("test", te)):
        for i in idx:
            side[i] = name
    for group in data_mod.duplicate_groups(ds):
        assert len({side[i] for i in group}) == 1
    assert np.array_equal(te, data_mod.stratified_split(ds, 1 / 12, 1 / 12, seed=7)[2])
    assert not np.array_equal(te, data_mod.stratified_split(ds, 1 / 12, 1 / 12, seed=8)[2])


def test_folds_are_disjoint_and_stratified(tmp_path):
    make_dataset(tmp_path, classes=CLASSES[:2], per_class=10, size=8)
    ds = data_mod.scan_dataset(tmp_path)
    folds = data_mod.stratified_folds(ds, 5, seed=1)
    joined = np.concatenate(folds)
    assert len(joined) == len(set(joined.tolist())) == len(ds)
    for f in folds:
        assert np.bincount(ds.labels[f], minlength=2).tolist() == [2, 2]


# ---------------------------------------------------------------- the round trip

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


def test_train_writes_a_complete_bundle(trained_bundle):
    data, out = trained_bundle
    card = json.loads((out / "model_card.json").read_text())
    assert card["class_names"] == list(CLASSES[:3])
    assert card["parameters"] == 23588 - 3 * 64 - 3  # 3 classes instead of 6
    assert card["dataset"]["file_count"] == 36
    assert len(card["dataset"]["file_list_sha256"]) == 64
    assert card["training"]["config"]["epochs"] == 2
    assert card["metrics"]["test"]["count"] == 6
    for name in ("model.keras", "history.csv", "split.json", "confusion.png", "test_report.json"):
        assert (out / name).exists(), name
    assert len((out / "history.csv").read_text().strip().splitlines()) == 3
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def test_bundle_loads_in_safe_mode(trained_bundle):
    import keras

    _, out = trained_bundle
    model = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    assert model.get_layer("last_dw").kernel_size == (11, 11)


def test_evaluate_and_export_round_trip(trained_bundle, tmp_path, capsys):
    data, out = trained_bundle
    report_json = tmp_path / "r.json"
    assert cli_main(["evaluate", "--model", str(out), "--data", str(data), "--json",
                     str(report_json), "--png", str(tmp_path / "cm.png")]) == 0
    keras_report = json.loads(report_json.read_text())
    assert keras_report["count"] == 36
    assert np.asarray(keras_report["confusion_matrix"]).sum() == 36
    assert (tmp_path / "cm.png").stat().st_size > 1000
    assert cli_main(["export", "--model", str(out), "--format", "tflite-fp32", "tflite-int8"]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert set(card["exports"]) == {"tflite-fp32", "tflite-int8"}
    from training.predict import open_predictor

    keras_p = open_predictor(out)
    fp32 = open_predictor(out / "model_fp32.tflite")
    int8 = open_predictor(out / "model_int8.tflite")
    x = np.stack([load_image(p, 200) for p in sorted((data / "patches").iterdir())[:4]])
    np.testing.assert_allclose(fp32.predict(x), keras_p.predict(x), atol=1e-4)
    q = int8.predict(x)
    assert q.shape == (4, 3) and np.all(np.abs(q.sum(axis=1) - 1) < 0.05)
    assert cli_main(["evaluate", "--model", str(out / "model_int8.tflite"), "--data", str(data)]) == 0


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


def test_cross_validation_reports_every_fold(tmp_path):
    from training.train import TrainConfig, cross_validate, format_cv

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    seen = []
    result = cross_validate(data, TrainConfig(epochs=1, batch_size=4, input_size=32), folds=2,
                            on_fold=seen.append)
    assert [r["fold"] for r in result["results"]] == [1, 2]
    assert sum(r["test"] for r in result["results"]) == 12
    assert len(seen) == 2 and len(seen[0]["results"]) == 1
    assert 0.0 <= result["accuracy_mean"] <= 1.0
    assert "mean accuracy" in format_cv(result)


def test_a_split_without_validation_trains(tmp_path):
    from training.train import TrainConfig, train

    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=6, size=16)
    card = train(data, tmp_path / "b", TrainConfig(epochs=1, batch_size=4, input_size=32,
                                                   val_fraction=0.0, test_fraction=0.2))
    assert card["training"]["split"]["validation"] == 0
    assert (tmp_path / "b" / "model.keras").exists()


def test_cli_output_folder_is_created_and_errors_are_one_line(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", classes=CLASSES[:2], per_class=3, size=16)
    rc = cli_main(["evaluate", "--model", str(tmp_path / "nope"), "--data", str(data),
                   "--json", str(tmp_path / "new" / "r.json")])
    assert rc == 2 and "nope" in capsys.readouterr().err
    assert (tmp_path / "new").is_dir()
