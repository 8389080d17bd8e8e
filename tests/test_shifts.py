"""Camera shifts (training.shifts), the robust recipe's augmentation (training.augment) and
``python -m training robustness``: every shift deterministic for a seed, keeping shape, dtype and
range; augmentation only on the training split; the command's JSON and example grid."""
import json

import numpy as np
import pytest

from synth import CLASSES, make_dataset, texture
from training import shifts
from training.shifts import (CAMERAS, EVALUATED_CAMERA, EXTRA_FAMILIES, FAMILIES, camera_augment,
                             shift_rng)


def _images():
    grey = np.repeat(texture(3, 48, seed=1)[..., None], 3, axis=2)
    rng = np.random.default_rng(5)
    colour = rng.integers(0, 256, (48, 48, 3)).astype(np.uint8)
    return {"grey": grey, "colour": colour}


@pytest.mark.parametrize("family", FAMILIES + EXTRA_FAMILIES,
                         ids=[f.name for f in FAMILIES + EXTRA_FAMILIES])
def test_each_shift_is_deterministic_and_keeps_shape_dtype_and_range(family):
    for kind, img in _images().items():
        for sev in family.severities:
            a = family.apply(img, sev, shift_rng(3, family.name, sev, 0))
            b = family.apply(img, sev, shift_rng(3, family.name, sev, 0))
            assert a.dtype == np.uint8 and a.shape == img.shape, (family.name, sev, kind)
            np.testing.assert_array_equal(a, b)
            if kind == "grey":   # a grey image stays grey
                assert shifts.is_grey(a), (family.name, sev)
    # the strongest severity changes the image (flips and 90-degree turns of a texture too)
    img = _images()["grey"]
    sev = family.severities[-1]
    assert not np.array_equal(family.apply(img, sev, shift_rng(3, family.name, sev, 0)), img) \
        or family.name == "bit_depth"   # 16 bits: the same 8-bit scene read back


def test_random_shifts_differ_between_seeds_and_images():
    img = _images()["grey"]
    noise = shifts.FAMILY_BY_NAME["noise"]
    a = noise.apply(img, 8, shift_rng(0, "noise", 8, 0))
    assert not np.array_equal(a, noise.apply(img, 8, shift_rng(1, "noise", 8, 0)))
    assert not np.array_equal(a, noise.apply(img, 8, shift_rng(0, "noise", 8, 1)))


def test_severities_go_the_right_way():
    img = _images()["grey"]
    x = img.astype(np.float32)
    sharp = np.abs(np.diff(x, axis=1)).mean()
    blurred = [np.abs(np.diff(shifts.defocus_blur(img, s).astype(np.float32), axis=1)).mean()
               for s in (0.5, 1.0, 1.5)]
    assert sharp > blurred[0] > blurred[1] > blurred[2]
    assert shifts.brightness(img, 0.3).mean() > img.mean() > shifts.brightness(img, -0.3).mean()
    assert shifts.contrast(img, 0.5).std() < 0.6 * img.std()


@pytest.mark.parametrize("name", list(CAMERAS) + ["evaluated"])
def test_the_training_camera_is_seeded_and_keeps_the_image_format(name):
    cam = EVALUATED_CAMERA if name == "evaluated" else CAMERAS[name]
    for img in _images().values():
        outs = [camera_augment(img, np.random.default_rng([9, k]), cam) for k in range(12)]
        again = [camera_augment(img, np.random.default_rng([9, k]), cam) for k in range(12)]
        for a, b in zip(outs, again):
            assert a.dtype == np.uint8 and a.shape == img.shape
            np.testing.assert_array_equal(a, b)
        assert sum(not np.array_equal(o, img) for o in outs) >= 6   # most images are shifted


def test_shifted_copies_start_with_the_clean_images_and_repeat_exactly():
    x = np.stack([np.repeat(texture(c, 32, seed=c)[..., None], 3, 2) for c in range(4)])
    s = shifts.shifted_copies(x, seed=2, copies=2)
    assert s.shape == (12, 32, 32, 3) and s.dtype == np.uint8
    np.testing.assert_array_equal(s[:4], x)
    np.testing.assert_array_equal(s, shifts.shifted_copies(x, seed=2, copies=2))
    assert not np.array_equal(s[4:8], s[8:])


def test_the_best_epoch_is_chosen_on_shifted_copies_only_with_the_camera():
    from dataclasses import replace

    from training.train import TrainConfig, _selection_set

    x = np.stack([np.repeat(texture(c, 32, seed=c)[..., None], 3, 2) for c in range(3)])
    y = np.arange(3)
    cfg = TrainConfig(val_shifted_copies=2)
    xs, ys = _selection_set(x, y, cfg)
    assert len(xs) == 9 and list(ys) == [0, 1, 2] * 3
    np.testing.assert_array_equal(xs[:3], x)
    for off in (replace(cfg, val_shifted_copies=0), replace(cfg, camera_shifts=False),
                replace(cfg, augment=False)):
        xs, ys = _selection_set(x, y, off)
        assert xs is x and ys is y


def test_augmentation_is_applied_to_the_training_split_only():
    from training.augment import training_datasets
    from training.train import TrainConfig

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    y = np.arange(8) % 2
    cfg = TrainConfig(batch_size=8, input_size=32)
    train, val = training_datasets(x, y, x, y, cfg, 2)
    xv = np.concatenate([np.asarray(b) for b, _ in val])
    np.testing.assert_array_equal(xv, x.astype(np.float32))          # validation: as it is
    xt = np.concatenate([np.asarray(b) for b, _ in train.take(1)])
    assert xt.shape == (8, 32, 32, 3)
    assert not any(np.array_equal(xt[i], x[j].astype(np.float32))   # training: augmented
                   for i in range(8) for j in range(8))


def test_the_training_stream_runs_epoch_after_epoch_in_one_iterator():
    """fit() keeps one iterator for the whole run (steps_per_epoch given): the stream is every
    epoch's augmented batches in turn, the same as augmented_batches gives epoch by epoch."""
    from training.augment import augmented_batches, steps_per_epoch, training_datasets
    from training.train import TrainConfig

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (10, 24, 24, 3)).astype(np.uint8)
    y = np.arange(10) % 2
    cfg = TrainConfig(batch_size=4, input_size=24)
    assert steps_per_epoch(10, cfg) == 3 and steps_per_epoch(8, cfg) == 2
    train, _ = training_datasets(x, y, x[:0], y[:0], cfg, 2)
    got = [(np.asarray(b), np.asarray(t)) for b, t in train.take(3 * 3)]   # three epochs
    want = [(b, t) for e in range(3) for b, t in augmented_batches(x, y, cfg, e)]
    assert [len(b) for b, _ in got] == [4, 4, 2] * 3
    for (gb, gt), (wb, wt) in zip(got, want, strict=True):
        np.testing.assert_array_equal(gb, wb.astype(np.float32))
        np.testing.assert_array_equal(gt.argmax(1), wt)


def test_the_model_card_records_the_camera_recipe():
    from training.train import TrainConfig, _camera_augment_card

    card = _camera_augment_card(TrainConfig(camera="wide"))
    assert card["name"] == "wide" and card["max_view"] == CAMERAS["wide"].max_view
    assert set(CAMERAS["wide"].describe()) < set(card)
    assert _camera_augment_card(TrainConfig(augment=False)) is None
    # --view-tiled: a share of any camera's wider views surrounded by other surface
    card = _camera_augment_card(TrainConfig(camera="wide_scale", view_tiled=0.35))
    assert card["p_view_tiled"] == 0.35 and card["max_view"] == CAMERAS["wide_scale"].max_view
    assert _camera_augment_card(TrainConfig(camera="wide_scale"))["p_view_tiled"] == 0.0
    assert any("--view-tiled" in p for p in TrainConfig(view_tiled=1.5).problems())
    # --filled: a share of images turned by software, the corners filled
    card = _camera_augment_card(TrainConfig(camera="wide_scale", filled=0.2, view_tiled=0.1))
    assert card["p_filled"] == 0.2 and card["p_view_tiled"] == 0.1
    assert _camera_augment_card(TrainConfig(camera="wide_scale"))["p_filled"] == 0.0
    assert any("--filled" in p for p in TrainConfig(filled=-0.1).problems())
    assert TrainConfig(val_shifted_copies=3).describe()["val_shifted_copies"] == 3


def test_robustness_command_writes_json_table_and_examples(stand_in_bundle, tmp_path, capsys):
    from training.cli import main as cli_main

    data = make_dataset(tmp_path / "data", classes=CLASSES, per_class=2, size=64)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert cli_main(["robustness", "--model", str(stand_in_bundle), "--data", str(data),
                     "--families", "defocus,rotation", "--json", str(out), "--png", str(png)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 12 and set(result["families"]) == {"defocus", "rotation"}
    sevs = [(r["family"], r["severity"]) for r in result["shifts"]]
    assert sevs == [("defocus", s) for s in (0.5, 1.0, 1.5)] + \
        [("rotation", s) for s in (90, 180, 270, 15, 30)]
    for r in result["shifts"]:
        assert 0.0 <= r["accuracy"] <= 1.0 and set(r["recall"]) == set(CLASSES)
        assert "known" not in r   # a bundle without an unknown detector
    assert result["mean_shifted_accuracy"] == pytest.approx(
        np.mean([r["accuracy"] for r in result["shifts"]]))
    assert result["worst_family"] in ("defocus", "rotation")
    assert png.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "mean over all shifts" in text and "defocus" in text
    again = tmp_path / "r2.json"   # the same table again: every shift is seeded
    assert cli_main(["robustness", "--model", str(stand_in_bundle), "--data", str(data),
                     "--families", "defocus,rotation", "--json", str(again)]) == 0
    assert json.loads(again.read_text())["shifts"] == result["shifts"]
    assert cli_main(["robustness", "--model", str(stand_in_bundle), "--data", str(data),
                     "--families", "sunburn"]) != 0


def test_robustness_and_evaluate_run_the_apps_own_inspection_files(stand_in_bundle, tmp_path,
                                                                    capsys):
    """The inspection export's files (a feature map is their first output; the grey twin takes
    one channel) run as the app runs them, with the Keras model's labels."""
    from training.cli import main as cli_main
    from training.predict import InspectionPredictor, open_predictor

    data = make_dataset(tmp_path / "data", classes=CLASSES, per_class=2, size=64)
    names = [p.name for p in stand_in_bundle.glob("inspect_fp32*.tflite")]
    assert "inspect_fp32.tflite" in names
    x = np.stack([np.repeat(texture(c, 64, seed=7)[..., None], 3, axis=2) for c in range(6)])
    keras_labels = open_predictor(stand_in_bundle).predict(x).argmax(1)
    for name in names:
        p = open_predictor(stand_in_bundle / name)
        assert isinstance(p, InspectionPredictor)
        assert list(p.predict(x).argmax(1)) == list(keras_labels)
    out = tmp_path / "r.json"
    assert cli_main(["robustness", "--model", str(stand_in_bundle / "inspect_fp32.tflite"),
                     "--data", str(data), "--families", "flip", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["images"] == 12
    assert cli_main(["evaluate", "--model", str(stand_in_bundle / names[-1]),
                     "--data", str(data)]) == 0
    # a family mistyped is said before anything is read; a file is not a bundle folder
    capsys.readouterr()
    assert cli_main(["robustness", "--model", str(stand_in_bundle), "--data", str(data),
                     "--families", "bitdepth"]) == 2
    err = capsys.readouterr().err
    assert "bit_depth" in err and "reading images" not in err
    assert cli_main(["robustness", "--model", str(tmp_path / "r.json"), "--data",
                     str(data)]) == 2
    assert "not a model bundle" in capsys.readouterr().err
    # a LiteRT file of another model beside this card: said before the first image
    import shutil
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(stand_in_bundle / "model_card.json", other)
    shutil.copy(stand_in_bundle / "inspect_fp32.tflite", other / "model_fp32.tflite")
    assert cli_main(["evaluate", "--model", str(other / "model_fp32.tflite"),
                     "--data", str(data)]) == 2
    assert "the file belongs to another model" in capsys.readouterr().err


def test_robustness_command_records_its_table_in_the_model_card(stand_in_bundle, tmp_path,
                                                                 capsys):
    import shutil

    from training.bundle import read_card
    from training.cli import main as cli_main

    bundle = tmp_path / "bundle"
    shutil.copytree(stand_in_bundle, bundle)
    before = read_card(bundle)
    data = make_dataset(tmp_path / "data", classes=CLASSES, per_class=2, size=64)
    out = tmp_path / "r.json"
    assert cli_main(["robustness", "--model", str(bundle), "--data", str(data),
                     "--families", "noise", "--seed", "3", "--json", str(out), "--card"]) == 0
    card, result = read_card(bundle), json.loads(out.read_text())
    entry = card["robustness"]["keras"]
    assert entry["accuracy"]["noise"] == {f"{r['severity']:g}": pytest.approx(r["accuracy"], abs=1e-4)
                                          for r in result["shifts"]}
    assert entry["mean_shifted_accuracy"] == pytest.approx(result["mean_shifted_accuracy"], abs=1e-4)
    assert entry["seed"] == 3 and "--seed 3" in entry["command"] and "--families noise" in entry["command"]
    assert {k: v for k, v in card.items() if k not in ("robustness", "history")} == before
    [step] = card["history"]                       # nothing else changed, and the step is said
    assert step["step"] == "robustness" and "--card" in step["command"]
    stray = tmp_path / "elsewhere" / "model.tflite"   # an export outside a bundle: refused first
    stray.parent.mkdir()
    stray.write_bytes(b"not read")
    assert cli_main(["robustness", "--model", str(stray), "--data", str(data), "--card"]) != 0
    assert "--card needs a bundle folder" in capsys.readouterr().err
    assert "unreadable_left_out" not in entry
    # the bundle's model.keras is the bundle's own model: its entry is replaced, not added; an
    # unreadable file is left out, and the card says how many were
    (data / CLASSES[0] / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    assert cli_main(["robustness", "--model", str(bundle / "model.keras"), "--data", str(data),
                     "--families", "flip", "--card"]) == 2   # recorded, one file short
    again = read_card(bundle)["robustness"]
    assert set(again) == {"keras"} and set(again["keras"]["accuracy"]) == {"flip"}
    assert again["keras"]["unreadable_left_out"] == 1 and again["keras"]["images"] == 12


def test_robustness_reports_the_share_accepted_as_known_with_a_detector(detector_bundle,
                                                                        tmp_path, capsys):
    """With an unknown detector the table also says how many shifted images are still accepted
    as known (a shift the model reads but the detector flags is an unknown verdict in the app),
    and the card keeps it."""
    import shutil

    from training.bundle import read_card
    from training.cli import main as cli_main

    bundle = tmp_path / "bundle"
    shutil.copytree(detector_bundle, bundle)
    data = make_dataset(tmp_path / "data", classes=CLASSES, per_class=2, size=64)
    out = tmp_path / "r.json"
    assert cli_main(["robustness", "--model", str(bundle), "--data", str(data),
                     "--families", "noise,flip", "--json", str(out), "--card"]) == 0
    result = json.loads(out.read_text())
    for r in [result["clean"], *result["shifts"]]:
        assert 0.0 <= r["known"] <= 1.0
        assert r["accuracy_on_known"] is None or 0.0 <= r["accuracy_on_known"] <= 1.0
    assert result["mean_shifted_known"] == pytest.approx(
        np.mean([r["known"] for r in result["shifts"]]))
    assert result["families"]["noise"]["min_known"] == min(
        r["known"] for r in result["shifts"] if r["family"] == "noise")
    entry = read_card(bundle)["robustness"]["keras"]
    assert set(entry["known"]) == {"noise", "flip"} == set(entry["accuracy_on_known"])
    assert entry["accuracy_on_known"]["noise"]["4"] == (
        None if result["shifts"][0]["accuracy_on_known"] is None
        else pytest.approx(result["shifts"][0]["accuracy_on_known"], abs=1e-4))
    assert entry["clean_known"] == pytest.approx(result["clean"]["known"], abs=1e-4)
    assert "accepted as known" in capsys.readouterr().out
    # a new detector makes these figures stale: writing one drops them, the accuracy stays
    from training.detect import load_detector, write_detector

    write_detector(bundle, load_detector(bundle))
    entry = read_card(bundle)["robustness"]["keras"]
    assert not {"known", "clean_known", "mean_shifted_known", "accuracy_on_known"} & set(entry)
    assert set(entry["accuracy"]) == {"noise", "flip"}


def test_a_wider_view_can_be_surrounded_by_other_surface_instead_of_its_mirror():
    img = _images()["grey"]
    rng = np.random.default_rng(0)
    dark = np.zeros_like(img)
    around = shifts.wider_surround(img, 2.0, rng, lambda: dark)
    assert around.shape == (96, 96, 3) and not around.any()
    out = shifts.field_of_view(img, 2.0, surround=around)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert not out[:8].any() and not out[:, :8].any()           # the border: the dark surround
    np.testing.assert_allclose(out[12:36, 12:36].mean(), img.mean(), atol=3)  # the centre: img
    reflected = shifts.field_of_view(img, 2.0)
    assert reflected[:8].mean() > 40                             # by default: the image mirrored
    # without others: the image itself, repeated and mirrored, never turned
    again = shifts.wider_surround(img, 2.0, np.random.default_rng(0))
    np.testing.assert_array_equal(again, shifts.wider_surround(img, 2.0, np.random.default_rng(0)))
    assert again.shape == (96, 96, 3)
    with pytest.raises(ValueError, match="surround"):   # too small a surround is named
        shifts.field_of_view(img, 2.0, surround=np.zeros((60, 60, 3), np.uint8))


def test_the_surround_tiles_are_the_image_or_its_mirrors_never_turned():
    mark = np.random.default_rng(3).integers(0, 256, (8, 8)).astype(np.uint8)
    mirrors = {m.tobytes() for m in (mark, mark[::-1], mark[:, ::-1], mark[::-1, ::-1])}
    for seed in range(5):
        around = shifts.wider_surround(mark, 3.0, np.random.default_rng(seed))
        # the grid's phase is random: some phase must show every whole tile as a mirror
        phases = [(dy, dx) for dy in range(8) for dx in range(8)
                  if all(around[y:y + 8, x:x + 8].tobytes() in mirrors
                         for y in range(dy, 17, 8) for x in range(dx, 17, 8))]
        assert phases, seed


def test_cameras_without_the_tiled_surround_draw_the_same_random_numbers_as_before():
    """The surround's extra draw only where it is asked for: an older recipe's stream of random
    numbers, and so its training run, is unchanged."""
    img = _images()["grey"]
    cam = shifts.CameraAugment(clean=1.0, p_scale=1.0, min_view=2.0, max_view=2.0)
    rng = np.random.default_rng(0)
    camera_augment(img, rng, cam, others=lambda: img)
    want = np.random.default_rng(0)
    want.random(), want.uniform(np.log(2.0), np.log(2.0)), want.random()   # scale, view, clean
    assert rng.random() == want.random()


def test_the_training_surround_of_a_wider_view_is_the_same_class_turned_alike():
    """A class of black images and one of white: a wider view of a black image is surrounded by
    black ones only (its own class), and a tile turned as the image was keeps its stripes'
    direction."""
    from dataclasses import replace

    from training.augment import augment_image, augmented_batches
    from training.train import TrainConfig

    cam = shifts.CameraAugment(clean=1.0, p_scale=1.0, min_view=2.0, max_view=2.0,
                               p_view_tiled=1.0)
    shifts.CAMERAS["_test_tiled"] = cam
    try:
        x = np.concatenate([np.zeros((4, 32, 32, 3), np.uint8),
                            np.full((4, 32, 32, 3), 255, np.uint8)])
        y = np.array([0] * 4 + [1] * 4)
        cfg = TrainConfig(batch_size=8, input_size=32, camera="_test_tiled", flips=False,
                          rotation_degrees=0.0, shift_fraction=0.0)
        for batch, labels in augmented_batches(x, y, cfg, 0):
            for img, label in zip(batch, labels):
                assert (img == (0 if label == 0 else 255)).all()
        # the other images come turned as the image itself was (one of the eight turns)
        seen = []
        real = shifts.camera_augment

        def spy(img, rng, cam, others=None):
            seen.append((img.copy(), others()))
            return real(img, rng, cam, others)

        shifts.camera_augment = spy
        try:
            marked = np.zeros((32, 32, 3), np.uint8)
            marked[:4, :8] = 255   # a corner mark that every turn moves
            for k in range(12):
                augment_image(marked, np.random.default_rng(k), replace(cfg, flips=True),
                              others=lambda: marked)
        finally:
            shifts.camera_augment = real
        assert len({a.tobytes() for a, _ in seen}) >= 4   # several turns drawn
        for img, other in seen:
            np.testing.assert_array_equal(other, img)
    finally:
        del shifts.CAMERAS["_test_tiled"]


def test_the_tiled_wider_view_is_evaluated_only_when_named():
    from training.robustness import pick_families

    assert "field_of_view_tiled" not in [f.name for f in pick_families(None)]
    assert "rotation_filled" not in [f.name for f in pick_families(None)]
    assert [f.name for f in pick_families(["field_of_view_tiled", "defocus"])] == [
        "field_of_view_tiled", "defocus"]


def test_the_wider_view_benchmark_surrounds_an_image_by_its_own_class_only():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_wider_view.py"
    spec = importlib.util.spec_from_file_location("bench_wider_view", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    x = np.concatenate([np.zeros((3, 24, 24, 3), np.uint8), np.full((3, 24, 24, 3), 255, np.uint8)])
    x[0, 8:16, 8:16] = 100   # a grey defect on the first dark image
    y = np.array([0, 0, 0, 1, 1, 1])
    same = bench.wider(x, y, "same class", 2.0, seed=0)
    assert same[:3].max() <= 100 and (same[3:] == 255).all()   # never the white class around
    assert same[0].max() > 0 and (same[0, :4] == 0).all()   # the defect, smaller, in the centre
    np.testing.assert_array_equal(same, bench.wider(x, y, "same class", 2.0, seed=0))
    mirrored = bench.wider(x, y, "mirror", 2.0, seed=0)
    assert mirrored[0, :4].max() > 0   # the mirror repeats the defect around it


def test_a_software_turn_fills_the_corners_and_keeps_the_centre():
    """``rotate_filled``: the corners the turned frame leaves empty are the fill, not the
    surface's reflection; inside, the same pixels as the camera's turn (``rotate``)."""
    img = _images()["colour"]
    for fill in (0, 200):
        out = shifts.rotate_filled(img, 30, fill=fill)
        assert out.dtype == np.uint8 and out.shape == img.shape
        assert (out[0, 0] == fill).all() and (out[-1, -1] == fill).all()
        np.testing.assert_array_equal(out[18:30, 18:30], shifts.rotate(img, 30)[18:30, 18:30])
    assert not (shifts.rotate(img, 30)[0, 0] == 0).all()   # the camera's turn: no black corner
    family = shifts.FAMILY_BY_NAME["rotation_filled"]
    assert (family.apply(img, 30, shift_rng(0, family.name, 30, 0))[0, 0] == 0).all()
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    corner = shifts.rotate_filled(rgba, 30, fill=0)[0, 0]
    assert (corner[:3] == 0).all() and corner[3] == 255   # black, not transparent


def test_the_training_turns_by_software_span_45_degrees_either_way(monkeypatch):
    angles = []

    def spy(img, degrees, rng=None, fill=0.0):
        angles.append(degrees)
        return img

    monkeypatch.setattr(shifts, "rotate_filled", spy)
    cam = shifts.CameraAugment(clean=1.0, p_scale=0.0, p_filled=1.0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        camera_augment(_images()["grey"], rng, cam)
    assert len(angles) == 200 and max(map(abs, angles)) <= 45
    assert min(angles) < -35 and max(angles) > 35


def test_train_filled_reaches_the_training_camera():
    from training.cli import _config, build_parser

    args = build_parser().parse_args(["train", "--data", "D", "--out", "O", "--filled", "0.2"])
    assert _config(args).camera_settings().p_filled == 0.2
    args = build_parser().parse_args(["train", "--data", "D", "--out", "O"])
    assert _config(args).camera_settings().p_filled == 0.0


def test_the_training_camera_turns_by_software_only_when_asked():
    """``p_filled``: that share of training images gets constant corners, black on about half
    of them; without it no image does, and no random number is drawn for it."""
    img = np.full((48, 48, 3), 128, np.uint8)
    img[::2] = 140   # a texture with no value of 0 or of a fill
    cam = shifts.CameraAugment(clean=1.0, p_scale=0.0, p_filled=1.0)
    rng = np.random.default_rng(0)
    corners = [camera_augment(img, rng, cam)[0, 0, 0] for _ in range(40)]
    # (a random grey may come out at the texture's own level)
    assert sum(c not in (128, 140) for c in corners) >= 34
    assert 8 <= sum(c == 0 for c in corners) <= 32
    plain = shifts.CameraAugment(clean=1.0, p_scale=0.0)
    rng = np.random.default_rng(0)
    assert all(camera_augment(img, rng, plain)[0, 0, 0] in (128, 140) for _ in range(20))
    rng, want = np.random.default_rng(0), np.random.default_rng(0)
    camera_augment(img, rng, plain)
    want.random(), want.random()   # scale, clean
    assert rng.random() == want.random()


def test_the_other_shifts_benchmark_keeps_images_and_goes_the_right_way():
    """``benchmarks/bench_other_shifts.py``: every shift made by other code keeps shape, dtype
    and a grey image grey, repeats for the same generator, and its strongest settings change
    the image the way named (black corners, less detail, more noise)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_other_shifts.py"
    spec = importlib.util.spec_from_file_location("bench_other_shifts", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    grey = _images()["grey"]
    table = bench.shifts()
    for name, fn in table.items():
        a = fn(grey, np.random.default_rng(1))
        assert a.dtype == np.uint8 and a.shape == grey.shape, name
        assert shifts.is_grey(a), name
        np.testing.assert_array_equal(a, fn(grey, np.random.default_rng(1)))
    black = table["turned by software: 30 degrees, black corners"](grey, None)
    assert (black[0, 0] == 0).all()
    surface = table["turned by software: 30 degrees, surface continued"](grey, None)
    assert (surface[0, 0] > 0).all()
    assert (table["turned by OpenCV: 15 degrees, black corners"](grey, None)[-1, -1] == 0).all()
    white = table["letterboxed: white bars, 40% of the height"](grey, None)
    n = grey.shape[0]
    assert (white[:round(0.2 * n)] == 255).all() and (white[n - round(0.2 * n):] == 255).all()
    assert np.array_equal(white[n // 2], grey[n // 2])   # the surface at its own scale
    side = table["letterboxed: grey (114) bars, 25% of the width"](grey, None)
    assert (side[:, 0] == 114).all() and (side[:, -1] == 114).all()

    def detail(img):
        return np.abs(np.diff(img[..., 0].astype(float), axis=1)).mean()

    assert detail(table["blur: Pillow Gaussian radius 2"](grey, None)) < 0.6 * detail(grey)
    assert detail(table["sharpened: Pillow sharpness 3"](grey, None)) > detail(grey)
    rng = np.random.default_rng(2)
    flat = np.full((48, 48, 3), 128, np.uint8)
    assert table["noise: Gaussian sigma 16"](flat, rng).std() > 10
    shot = table["noise: shot, 100 photons at full scale"]
    assert shot(flat, rng).std() > 10
    # shot noise grows with the light
    assert shot(np.full_like(flat, 30), rng).std() < 0.6 * shot(np.full_like(flat, 220), rng).std()
    for name, fn in table.items():   # every shift changes the image, a 2-D grey one too
        assert not np.array_equal(fn(grey, np.random.default_rng(1)), grey), name
        flat2d = grey[..., 0]
        out = fn(flat2d, np.random.default_rng(1))
        assert out.shape == flat2d.shape and out.dtype == np.uint8, name


def test_the_robustness_table_lines_up_long_family_names():
    """``format_robustness``: the severity column ends at the same place on every row, however
    long a family's name or its list of severities."""
    from training.robustness import format_robustness

    def fam(name, sev, unit):
        return ({"min_accuracy": 0.5, "min_known": 0.5, "unit": unit},
                [{"family": name, "severity": v, "accuracy": 0.5, "known": 0.5} for v in sev])

    families, shifts_ = {}, []
    for name, sev, unit in (("a", (1,), "px"), ("a_very_long_family_name", (10, 20, 30, 45),
                                                 "degrees"), ("rotation", (90, 180, 270, 15, 30),
                                                              "degrees")):
        families[name], rows = fam(name, sev, unit)
        shifts_ += rows
    text = format_robustness({"images": 3, "clean": {"accuracy": 1.0, "known": 1.0},
                              "mean_shifted_accuracy": 0.5, "mean_shifted_known": 0.5,
                              "families": families, "shifts": shifts_})
    lines = text.splitlines()
    rows = [ln for ln in lines if ln.split() and ln.split()[0] in families]
    assert len(rows) == 6   # accuracy and known rows
    ends = {ln.index("px") + 2 if " px" in ln else ln.index("degrees") + 7
            for ln in rows[:3]}
    assert len(ends) == 1   # the severities end in one column
    for ln in rows[:3]:
        name = ln.split()[0]
        assert ln[len(name)] == " " and ln[len(name) + 1] == " "   # a gap after the name
    starts = {ln.index("50.0") for ln in rows}
    assert len(starts) == 1   # the figures start in one column, in both sections
