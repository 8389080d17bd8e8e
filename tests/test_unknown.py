"""Knowing what the model does not know (issue 11): a held-out class is flagged, the temperature
fit recovers a known temperature, bundles with and without a detector, the classify CSV's
columns, re-judging stored scores, verdicts under a new class, the main window's filter, colour
and status bar, and the camera's live label."""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from inspector import batch, report
from inspector.engine import UNKNOWN, UNKNOWN_TEXT
from inspector.session import JOURNAL_NAME, Filter, ReviewSession
from synth import CLASSES, detector_images, foreign_image, texture


# ---- the detector itself ----------------------------------------------------------------------

def test_a_held_out_class_is_flagged_more_than_the_known_ones(stand_in_bundle):
    """Five synthetic classes are known to the detector, the sixth is held out: its images must
    score higher (more foreign) than new images of the known classes."""
    from training.bundle import load_bundle
    from training.calibration import auroc
    from training.detect import fit_model_detector, model_outputs

    model = load_bundle(stand_in_bundle).model
    known = range(5)
    x_train, y_train = detector_images(known, range(100, 110))
    x_val, y_val = detector_images(known, range(200, 206))
    det = fit_model_detector(model, x_train, y_train, x_val, y_val, 5)
    assert det is not None and det.num_classes == 5
    x_known, _ = detector_images(known, range(300, 306))
    x_held, _ = detector_images([5], range(300, 330))
    s_known = det.scores(model_outputs(model, x_known))
    s_held = det.scores(model_outputs(model, x_held))
    assert auroc(s_known, s_held) > 0.9
    assert det.known(s_held).mean() < 0.5 < det.known(s_known).mean()
    assert np.median(s_held) > np.median(s_known)


@pytest.mark.slow
def test_openset_saves_each_left_out_models_outputs(tmp_path):
    """``openset --outputs``: the left-out model's outputs of every part, its k-NN bank and its
    classifier, enough to try a new score on the same model without training it again; and
    ``--rescore`` gives the same candidates from that file, with the known test images accepted
    and the left-out ones flagged at each candidate's 95%-of-validation threshold."""
    import json

    from synth import make_dataset
    from training import cli

    root = make_dataset(tmp_path / "data", CLASSES[:4], per_class=40, size=32)
    out, js = tmp_path / "outputs.npz", tmp_path / "openset.json"
    assert cli.main(["openset", "--data", str(root), "--epochs", "1", "--input-size", "32",
                     "--batch", "16", "--val-fraction", "0.12", "--only", CLASSES[3],
                     "--json", str(js), "--outputs", str(out)]) == 0
    assert [r["left_out"] for r in json.loads(js.read_text())["classes"]] == [CLASSES[3]]
    with np.load(out) as z:
        c = CLASSES[3]
        assert len(z[f"{c}/unknown/logits"]) == 40
        assert z[f"{c}/known/logits"].shape[1] == 3
        assert set(np.unique(z[f"{c}/train/labels"])) == {0, 1, 2}
        assert len(z[f"{c}/validation/labels"]) == len(z[f"{c}/validation/pool_features"])
        kernel, bias = z[f"{c}/classifier_kernel"], z[f"{c}/classifier_bias"]
        assert kernel.shape == (z[f"{c}/known/pool_features"].shape[1], 3) and bias.shape == (3,)
        # the logits are the classifier on the pooled features, as a new score would rebuild them
        np.testing.assert_allclose(z[f"{c}/known/pool_features"] @ kernel + bias,
                                   z[f"{c}/known/logits"], rtol=1e-3, atol=1e-3)
        assert z[f"{c}/bank"].shape[1] == kernel.shape[0]
    # --rescore: the same candidates from the saved outputs, without training
    first = json.loads(js.read_text())["classes"][0]["candidates"]
    js2 = tmp_path / "rescored.json"
    assert cli.main(["openset", "--rescore", str(out), "--json", str(js2)]) == 0
    again = json.loads(js2.read_text())["classes"][0]["candidates"]
    assert set(first) <= set(again)
    for m in first:
        assert again[m]["auroc"] == pytest.approx(first[m]["auroc"], abs=1e-3), m
    # ... and each at the detector's operating point (95% of validation images accepted)
    point = again["rmaha_sum+energy+knn"]
    assert 0 <= point["known_accepted"] <= 1 and 0 <= point["unknown_flagged"] <= 1
    assert cli.main(["openset", "--rescore", str(tmp_path / "none.npz")]) == 2
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert cli.main(["openset", "--rescore", str(tmp_path / "other.npz")]) == 2
    (tmp_path / "text.npz").write_text("hello")
    assert cli.main(["openset", "--rescore", str(tmp_path / "text.npz")]) == 2
    assert cli.main(["openset", "--rescore", str(out), "--data", str(root)]) == 2
    # --resume: the finished class is kept, not trained again; the files hold both classes
    args = ["openset", "--data", str(root), "--epochs", "1", "--input-size", "32", "--batch",
            "16", "--val-fraction", "0.12", "--only", f"{CLASSES[2]},{CLASSES[3]}",
            "--json", str(js), "--outputs", str(out)]
    before = json.loads(js.read_text())["classes"][0]
    from training import openset_eval
    trained = []
    real_fit = openset_eval.fit
    openset_eval.fit = lambda *a, **k: trained.append(list(a[4])) or real_fit(*a, **k)
    try:
        assert cli.main(args + ["--resume"]) == 0
    finally:
        openset_eval.fit = real_fit
    assert trained == [[CLASSES[0], CLASSES[1], CLASSES[3]]]   # only the model without CLASSES[2]
    rows = json.loads(js.read_text())["classes"]
    assert [r["left_out"] for r in rows] == [CLASSES[3], CLASSES[2]] and rows[0] == before
    with np.load(out) as z:
        assert {k.split("/")[0] for k in z.files} == {CLASSES[2], CLASSES[3]}
    # other settings: refused, the files untouched
    assert cli.main([a if a != "1" else "2" for a in args] + ["--resume"]) == 2
    assert json.loads(js.read_text())["classes"] == rows


def test_openset_rescore_of_another_file_says_what_it_is_not(tmp_path, capsys):
    from training import cli

    other = tmp_path / "openset.json"
    other.write_text('{"classes": []}')
    assert cli.main(["openset", "--rescore", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not an `openset --outputs` file (not an .npz of arrays)" in err and "pickle" not in err


def test_openset_trains_at_the_size_given_by_either_name():
    """``--size`` (the training options' name) was accepted and then overridden by
    ``--input-size``'s default: the leave-one-out models trained at 200 px, without a word."""
    from training import cli

    parser = cli.build_parser()
    for argv, size in (([], 200), (["--size", "128"], 128), (["--input-size", "96"], 96)):
        args = parser.parse_args(["openset", "--data", "d", *argv])
        assert cli._config(args).input_size == size


def test_openset_names_a_mistyped_class_before_reading_the_images(tmp_path, capsys):
    from synth import make_dataset
    from training import cli

    root = make_dataset(tmp_path / "data", CLASSES[:3], per_class=4, size=16)
    assert cli.main(["openset", "--data", str(root), "--epochs", "1", "--only", "scrathces"]) == 2
    err = capsys.readouterr().err
    assert "no class 'scrathces'" in err and CLASSES[0] in err and "Traceback" not in err


def test_openset_says_too_few_validation_images_before_any_training(tmp_path, capsys,
                                                                     monkeypatch):
    from synth import make_dataset
    from training import cli, data, openset_eval

    def no_reading(*a, **k):
        raise AssertionError("the images were read")

    monkeypatch.setattr(data, "load_arrays", no_reading)
    monkeypatch.setattr(openset_eval, "fit", no_reading)
    root = make_dataset(tmp_path / "data", CLASSES[:3], per_class=4, size=16)
    assert cli.main(["openset", "--data", str(root), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"without {CLASSES[0]}: no unknown detector could be fitted: only" in err
    assert "validation image(s)" in err and "Traceback" not in err


def test_temperature_fit_recovers_a_known_temperature():
    from training.calibration import fit_temperature, softmax

    rng = np.random.default_rng(3)
    t0 = 2.5
    logits = rng.normal(0, 4, (4000, 6))
    p = softmax(logits, t0)
    labels = np.array([rng.choice(6, p=row / row.sum()) for row in p])
    t = fit_temperature(logits, labels)
    assert abs(t - t0) / t0 < 0.15
    # and sharpening: labels drawn at T0 = 0.5 give a temperature below one
    p = softmax(logits, 0.5)
    labels = np.array([rng.choice(6, p=row / row.sum()) for row in p])
    assert abs(fit_temperature(logits, labels) - 0.5) / 0.5 < 0.15


def test_the_temperature_is_fitted_within_the_documented_severities():
    """The calibration camera is no wider than the robustness table's worst severities (the
    training camera is wider on purpose)."""
    from training.shifts import EVALUATED_CAMERA, FAMILY_BY_NAME, CameraAugment

    worst = {name: max(FAMILY_BY_NAME[name].severities) for name in
             ("defocus", "motion", "noise", "brightness", "field_of_view")}
    cam = EVALUATED_CAMERA
    assert cam.max_blur_sigma <= worst["defocus"] and cam.max_motion <= worst["motion"]
    assert cam.max_noise <= worst["noise"] and cam.max_gain <= 1 + worst["brightness"]
    assert cam.max_view <= worst["field_of_view"]
    assert cam.min_jpeg >= min(FAMILY_BY_NAME["jpeg"].severities)
    train = CameraAugment()
    assert train.max_view > cam.max_view and train.max_gain > cam.max_gain


def test_the_knn_bank_takes_turned_copies_only_for_a_model_trained_turned():
    """Turned copies of the training images join the k-NN bank only when the model was trained
    with turns: not without augmentation, not when the augmentation check dropped it; they are
    seeded, keep grey images grey and differ from the originals."""
    from training.detect import BANK_COPIES, Turns, turned_copies
    from training.train import TrainConfig

    turns = Turns.for_training(TrainConfig(rotation_degrees=45.0))
    assert turns == Turns(BANK_COPIES, True, 45.0) and BANK_COPIES >= 1
    assert Turns.for_training(TrainConfig(augment=False)).copies == 0
    checked = [{"phase": "augmentation check", "chosen": "clean"}]
    assert Turns.for_training(TrainConfig(), checked).copies == 0
    assert Turns.for_training(TrainConfig(flips=False, rotation_degrees=0.0)).copies == 0
    card = {"augment": True, "flips": False, "rotation_degrees": 10.0}
    assert Turns.for_training(card) == Turns(BANK_COPIES, False, 10.0)

    grey = np.repeat(texture(0, size=32, seed=1)[..., None], 3, axis=2)
    images = np.stack([grey, np.roll(grey, 5, axis=0), grey[::-1]])
    out = np.concatenate(list(turned_copies(images, 7, turns)))
    assert out.shape == (len(images) * BANK_COPIES,) + images.shape[1:] and out.dtype == np.uint8
    # in batches or at once: the same images, in the same order
    assert np.array_equal(out, np.concatenate(list(turned_copies(images, 7, turns, batch=2))))
    assert not np.array_equal(out, np.concatenate([images] * BANK_COPIES))
    assert all(np.array_equal(im[..., 0], im[..., 2]) for im in out)
    assert list(turned_copies(images, 7, Turns())) == []


def test_the_recipe_turns_images_as_before():
    """``training.augment.turned`` was factored out of ``augment_image``: the same images from
    the same generator, and the same number of random draws (so that training a bundle again
    with the project's command gives the same run)."""
    from training.augment import augment_image, turned
    from training.train import TrainConfig

    img = np.repeat(texture(2, size=48, seed=3)[..., None], 3, axis=2)
    cfg = TrainConfig(camera_shifts=False, brightness=0.0, contrast=0.0, rotation_degrees=15.0)
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(6):
        got = augment_image(img, a, cfg)
        want = turned(img[..., 0], b, True, 15.0, cfg.shift_fraction)
        assert np.array_equal(got, np.repeat(want[..., None], 3, axis=2))
    assert a.integers(1 << 30) == b.integers(1 << 30)
    # one draw for the turn, one for the angle, two for the shift
    c, d = np.random.default_rng(5), np.random.default_rng(5)
    turned(img, c, True, 15.0, 0.1)
    d.integers(8), d.uniform(-15, 15), d.uniform(-4.8, 4.8, 2)
    assert c.integers(1 << 30) == d.integers(1 << 30)


def test_the_detector_records_its_turned_knn_bank(stand_in_bundle):
    from training.bundle import load_bundle
    from training.detect import Turns, fit_model_detector

    model = load_bundle(stand_in_bundle).model
    x_train, y_train = detector_images(range(5), range(100, 106))
    x_val, y_val = detector_images(range(5), range(200, 204))
    plain = fit_model_detector(model, x_train, y_train, x_val, y_val, 5)
    det = fit_model_detector(model, x_train, y_train, x_val, y_val, 5, turns=Turns(1, True, 10.0))
    assert plain.bank.shape[0] == len(x_train) and det.bank.shape[0] == 2 * len(x_train)
    assert np.allclose(det.bank[:len(x_train)], plain.bank, atol=1e-6)
    # the Gaussians are the training images' alone
    for k in plain.gauss:
        np.testing.assert_allclose(det.gauss[k].means, plain.gauss[k].means)
    assert det.selection["fitted_on"] == {"training_images": len(x_train), "turned_copies": 1,
                                          "flips": True, "rotation_degrees": 10.0}


def test_a_held_out_class_leaves_the_knn_bank_with_its_turned_copies():
    from training.openset import VIEWS, _l2, _Scorer

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)
    train = {"pool_features": rng.normal(size=(12, 8)), "pool_se1_input": rng.normal(size=(12, 4)),
             "logits": rng.normal(size=(12, 3))}
    feats = np.concatenate([train["pool_features"], rng.normal(size=(24, 8))])
    labels = np.tile(y, 3)
    scorer = _Scorer(train, y, [0, 2], VIEWS, (feats, labels))
    assert scorer.bank.shape[0] == 3 * 8
    np.testing.assert_allclose(scorer.bank, _l2(feats[labels != 1]))


def test_bundle_round_trip_with_and_without_a_detector(stand_in_bundle, detector_bundle, classifier,
                                                       unknown_classifier):
    from training.detect import load_detector

    assert load_detector(stand_in_bundle) is None
    assert not classifier.has_unknown_detection and classifier.validation_unknown_rate is None
    x = np.stack([np.repeat(texture(c, 64, seed=7)[..., None], 3, 2) for c in range(6)]
                 + [np.repeat(foreign_image(64)[..., None], 3, 2)])
    v = classifier.judge(x)
    assert v.unknown_scores is None and v.known.all() and v.known.shape == (7,)

    det = load_detector(detector_bundle)
    assert det is not None and det.num_classes == 6
    again = type(det).load(detector_bundle / "unknown.npz")
    assert again.method == det.method and again.threshold == det.threshold
    assert unknown_classifier.has_unknown_detection
    assert unknown_classifier.validation_unknown_rate == pytest.approx(1 - det.accept)
    v = unknown_classifier.judge(x)
    assert v.unknown_scores.shape == (7,)
    np.testing.assert_allclose(v.probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(v.known, v.unknown_scores <= unknown_classifier.unknown_threshold)
    assert not v.known[-1], "the checkerboard is like none of the textures"
    ins = unknown_classifier.inspect(x[-1])
    assert ins.known is False and ins.unknown_score == pytest.approx(v.unknown_scores[-1], rel=1e-3)


def test_a_lost_detector_file_is_said_not_silently_skipped(detector_bundle, tmp_path, caplog):
    import shutil

    from training.detect import load_detector

    copy = tmp_path / "copied-without-its-detector"
    shutil.copytree(detector_bundle, copy)
    (copy / "unknown.npz").unlink()
    with caplog.at_level("WARNING"):
        assert load_detector(copy) is None
    assert "unknown.npz is missing" in caplog.text and str(copy) in caplog.text
    (copy / "unknown.npz").write_text("junk")
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert load_detector(copy) is None
    assert "damaged (not a detector file)" in caplog.text and "pickle" not in caplog.text


def test_a_foreign_or_damaged_detector_turns_off_only_the_unknown_verdict(detector_bundle,
                                                                          tmp_path, caplog):
    """A hostile-input audit: an unknown.npz of another model (fitted for other classes) or one
    whose description holds a number where a list belongs made the whole model fail to load
    (TypeError), or blamed its model card; it turns off unknown detection and says why."""
    import io
    import json
    import shutil

    from training.detect import load_detector

    z = dict(np.load(detector_bundle / "unknown.npz"))
    meta = json.loads(bytes(z["meta"]).decode())
    k = int(z["num_classes"])
    fewer = {**z, "num_classes": np.int64(k - 1)}
    for name in fewer:
        if name.startswith("means_"):
            fewer[name] = fewer[name][:k - 1]
    typed = {**z, "meta": np.frombuffer(json.dumps({**meta, "stats": [1, 2]}).encode(), np.uint8)}
    for i, arrays in enumerate((fewer, typed)):
        copy = tmp_path / f"bundle{i}"
        shutil.copytree(detector_bundle, copy)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (copy / "unknown.npz").write_bytes(buf.getvalue())
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert load_detector(copy) is None
        assert "unknown detection unavailable" in caplog.text and "unknown.npz" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        load_detector(tmp_path / "bundle0")
    assert f"fitted for {k - 1} classes, the model has {k}" in caplog.text


def _saved_without(det, prefix: str, path):
    """``det``'s file as an older version (or a damaged copy) wrote it: without the arrays whose
    names start with ``prefix``."""
    import io

    with np.load(io.BytesIO(det.to_bytes())) as z:
        np.savez(path, **{k: v for k, v in z.items() if not k.startswith(prefix)})
    return path


def test_a_saved_detector_scores_as_the_fitted_one(tmp_path, monkeypatch):
    """The k-NN bank is float32 when fitted and in the file: the loaded detector scores every
    candidate as the fitted one did, and gives the same verdicts."""
    from training.openset import UnknownDetector, fit_detector

    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 40)
    centres = rng.normal(size=(3, 16)) * 3
    def outputs(labels, shift=0.0):
        feats = centres[labels] + rng.normal(size=(len(labels), 16)) + shift
        return {"pool_features": feats, "pool_se1_input": feats[:, :8] ** 2,
                "logits": feats[:, :3] * 2}
    train, val = outputs(y), outputs(np.repeat(np.arange(3), 10))
    det = fit_detector(train, y, val, np.repeat(np.arange(3), 10), 3,
                       views=("features", "se1_input"))
    assert det.bank.dtype == np.float32
    path = tmp_path / "unknown.npz"
    path.write_bytes(det.to_bytes())
    again = UnknownDetector.load(path)
    assert again.bank.dtype == np.float32
    probe = {k: np.concatenate([v, w]) for (k, v), w in
             zip(outputs(np.arange(3).repeat(5)).items(), outputs(np.zeros(5, int), 6.0).values())}
    a, b = det.all_scores(probe), again.all_scores(probe)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-9, atol=1e-9, err_msg=name)
    s, t = det.scores(probe), again.scores(probe)
    np.testing.assert_array_equal(det.known(s), again.known(t))
    assert not again.known(t)[-5:].any(), "features far from every class are flagged"
    # an export built with the fitted detector serves the loaded one (its fingerprint)
    assert det.digest() is not None and det.digest() == again.digest()
    assert dataclasses.replace(again, temperature=again.temperature * 2).digest() != det.digest()
    assert dataclasses.replace(again, threshold=again.threshold + 1).digest() == det.digest()
    # of what is stored, not of what is compiled from it (whose last bits depend on the CPU's
    # BLAS kernels): another machine's whitening keeps the fingerprint
    import training.fast_score as fast_score

    real = fast_score._whitener
    monkeypatch.setattr(fast_score, "_whitener", lambda p: real(p) * (1 + 4e-16))
    other = UnknownDetector.load(path)
    assert not np.array_equal(other.compiled().w, again.compiled().w)
    assert other.digest() == det.digest()


def test_the_compiled_score_gives_the_generic_scores():
    """Every sum the detector can choose is compiled (``training.fast_score``) and scores a
    batch and one image as the part-by-part path does, to rounding, with the probabilities at
    the temperature; a single candidate is left to the generic path."""
    from training.fast_score import CompiledSum
    from training.openset import fit_detector

    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(3), 40)
    centres = rng.normal(size=(3, 12)) * 3

    def outputs(labels, shift=0.0):
        feats = centres[labels] + rng.normal(size=(len(labels), 12)) + shift
        return {"pool_features": feats, "std_features": np.abs(feats[:, ::-1]) + 0.5,
                "pool_se1_input": feats[:, :6] ** 2, "std_se1_input": np.abs(feats[:, 6:]),
                "logits": feats[:, :3] * 2}
    y_val = np.repeat(np.arange(3), 10)
    det = fit_detector(outputs(y), y, outputs(y_val), y_val, 3, views=("features", "se1_input"),
                       head=(rng.normal(size=(12, 3)), rng.normal(size=3)))
    assert det.vim is not None
    probe = {k: np.concatenate([v, w]) for (k, v), w in
             zip(outputs(np.arange(3).repeat(4)).items(), outputs(np.zeros(4, int), 5.0).values())}
    one = {k: v[-1:] for k, v in probe.items()}
    chains = ("", "+energy", "+knn", "+energy+knn", "+energy+knn+vim", "+energy+knn+vim+norm")
    for kind in ("maha", "rmaha", "mahastd", "rmahastd"):
        for chain in chains:
            d = dataclasses.replace(det, method=f"{kind}_sum{chain}")
            fast = d.scores(probe)
            assert isinstance(d._compiled, CompiledSum), d.method
            # float64 to rounding: one image and a batch take other BLAS kernels, which differ
            # between CPUs (7.8e-9 relative on an AMD EPYC with AVX2)
            np.testing.assert_allclose(fast, d.generic_scores(probe), rtol=1e-7, atol=1e-7,
                                       err_msg=d.method)
            np.testing.assert_allclose(d.scores(one), d.generic_scores(one), rtol=1e-7,
                                       atol=1e-7, err_msg=d.method)
            assert fast[-4:].min() > np.median(fast[:-4]), d.method
            probs, scores = d.verdict(probe)
            np.testing.assert_array_equal(scores, fast)
            np.testing.assert_allclose(probs, d.probabilities(probe["logits"]), rtol=1e-6,
                                       atol=1e-7)
    # logits beyond the detector's classes are not read, as on the generic path
    wide = dict(probe, logits=np.concatenate([probe["logits"], probe["logits"][:, :1] + 9], 1))
    np.testing.assert_allclose(det.scores(wide), det.generic_scores(wide), rtol=1e-7, atol=1e-7)
    probs, scores = det.verdict({k: v[:0] for k, v in probe.items()})
    assert probs.shape == (0, 3) and scores.shape == (0,)
    single = dataclasses.replace(det, method="knn")
    np.testing.assert_array_equal(single.scores(probe), single.generic_scores(probe))
    assert single._compiled is False


def test_std_pooled_candidates_are_fitted_saved_and_read_by_the_export(detector_bundle,
                                                                       unknown_classifier):
    """The mean- and std-pooled Mahalanobis candidates come with every detector, survive the
    file, and the LiteRT export carries the std-pooled outputs they read."""
    from training.detect import load_detector

    det = load_detector(detector_bundle)
    assert any(k.endswith("+std") for k in det.gauss)
    std_det = dataclasses.replace(det, method="mahastd_sum+energy")
    assert {"std_se1_input", "pool_se1_input", "logits"} <= std_det.inputs()
    # the chosen score reads only its own inputs: an export without std outputs serves it
    assert "std_se1_input" not in dataclasses.replace(det, method="maha_sum+energy").inputs()
    x = np.stack([np.repeat(texture(c, 64, seed=9)[..., None], 3, 2) for c in range(6)])
    out = unknown_classifier.backend.verdict(np.asarray(x, np.float32))
    scores = det.all_scores(out)
    assert {"mahastd_sum", "mahastd_sum+energy", "maha_sum+energy"} <= set(scores)
    # the chosen score alone gives what the comparison of all of them gives
    np.testing.assert_allclose(std_det.scores(out), scores["mahastd_sum+energy"])
    np.testing.assert_allclose(det.scores(out), scores[det.method])
    # three scores summed: Mahalanobis, energy and k-NN, each standardised on validation
    both = dataclasses.replace(det, method="maha_sum+energy+knn")
    assert {"pool_features", "logits", "pool_se1_input"} <= both.inputs()
    np.testing.assert_allclose(both.scores(out), scores["maha_sum+energy+knn"])
    z_knn = (scores["knn"] - det.stats["knn"][0]) / det.stats["knn"][1]
    np.testing.assert_allclose(scores["maha_sum+energy+knn"], scores["maha_sum+energy"] + z_knn,
                               rtol=1e-6)


def test_relative_mahalanobis_candidates_are_fitted_saved_and_need_no_more_outputs(
        detector_bundle, unknown_classifier, tmp_path):
    """Each Gaussian keeps a background Gaussian of all training features; rmaha_<view> is the
    class distance minus the background distance, and a detector file without the background
    (written before it) still loads, without those candidates."""
    from training.detect import load_detector

    det = load_detector(detector_bundle)
    g = det.gauss["features"]
    assert g.has_background and g.bg_mean.shape == (g.means.shape[1],)
    x = np.stack([np.repeat(texture(c, 64, seed=9)[..., None], 3, 2) for c in range(6)])
    out = unknown_classifier.backend.verdict(np.asarray(x, np.float32))
    scores = det.all_scores(out)
    feats = np.asarray(out["pool_features"], np.float64)
    np.testing.assert_allclose(scores["rmaha_features"],
                               g.score(feats) - g.background_score(feats), rtol=1e-9)
    assert {"rmaha_sum+energy+knn", "rmahastd_sum"} <= set(scores)
    rel = dataclasses.replace(det, method="rmaha_sum+energy+knn")
    assert rel.inputs() == dataclasses.replace(det, method="maha_sum+energy+knn").inputs()
    np.testing.assert_allclose(rel.scores(out), scores["rmaha_sum+energy+knn"])
    # the background survives the file ...
    (tmp_path / "new.npz").write_bytes(rel.to_bytes())
    again = type(det).load(tmp_path / "new.npz")
    np.testing.assert_allclose(again.scores(out), rel.scores(out))
    # ... a file from before it (its score the plain sum) loads without the relative
    # candidates ...
    plain = dataclasses.replace(det, method="maha_sum+energy+knn")
    old = type(det).load(_saved_without(plain, "bg_", tmp_path / "old.npz"))
    assert not old.gauss["features"].has_background
    assert "rmaha_features" not in old.all_scores(out)
    np.testing.assert_allclose(old.scores(out), plain.scores(out))
    # ... and one whose relative score lacks its background Gaussians is a clear error
    with pytest.raises(ValueError, match="background Gaussians"):
        type(det).load(_saved_without(rel, "bg_", tmp_path / "broken.npz"))


def _detector_with_a_virtual_logit(bundle_dir):
    """A detector fitted as training fits it, on enough synthetic training images for the
    virtual logit (two per feature channel; the shared fixture has fewer, and falls back to the
    sum without it)."""
    from training.bundle import load_bundle
    from training.detect import fit_model_detector

    model = load_bundle(bundle_dir).model
    x_train, y_train = detector_images(range(6), range(100, 122))
    x_val, y_val = detector_images(range(6), range(200, 205))
    return fit_model_detector(model, x_train, y_train, x_val, y_val, 6)


def test_the_virtual_logit_flags_features_off_the_training_subspace():
    """ViM: features outside the principal subspace of the training features score higher than
    features inside it, however large their logits."""
    from training.openset import VirtualLogit

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    inside = rng.normal(size=(400, 4)) * 3 @ basis[:, :4].T + 5      # a 4-D subspace around 5
    kernel, bias = rng.normal(size=(16, 3)), rng.normal(size=3)
    vim = VirtualLogit.fit(inside, kernel, bias, dim=4)
    assert vim.basis.shape == (16, 12) and vim.alpha > 0
    new_inside = rng.normal(size=(50, 4)) * 3 @ basis[:, :4].T + 5
    outside = new_inside + rng.normal(size=(50, 12)) @ basis[:, 4:].T * 3
    s_in = vim.score(new_inside, new_inside @ kernel + bias)
    s_out = vim.score(outside, outside @ kernel + bias)
    assert s_out.min() > np.median(s_in)
    # the scale fits the training images' largest logits: their residual logit matches them
    virtual = vim.alpha * np.linalg.norm((inside - vim.origin) @ vim.basis, axis=1)
    assert virtual.mean() == pytest.approx(abs((inside @ kernel + bias).max(axis=1).mean()))
    # too few training images for the residual to mean anything: no virtual logit
    assert VirtualLogit.fit(inside[:31], kernel, bias) is None


def test_the_virtual_logit_candidate_is_fitted_saved_and_reads_the_export(
        detector_bundle, unknown_classifier, tmp_path):
    """Every new detector with enough training images has the virtual-logit score, from the
    model's own classifier, and uses it; it reads only ``pool_features`` and ``logits``,
    survives the file, and a file without it still loads without that candidate. With too few
    training images (the shared fixture) the detector falls back to the sum without it."""
    from training.detect import load_detector
    from training.openset import DEFAULT_METHOD, FALLBACK_METHOD

    few = load_detector(detector_bundle)
    assert few.vim is None and few.method == FALLBACK_METHOD
    det = _detector_with_a_virtual_logit(detector_bundle)
    # the file keeps the k-NN bank in float32, which the stand-in's nearly equal features feel
    det = dataclasses.replace(det, bank=det.bank.astype(np.float32).astype(np.float64))
    assert det.method == DEFAULT_METHOD == "rmahastd_sum+energy+knn+vim+norm"
    assert det.vim is not None and det.vim.basis.shape[0] == det.vim.origin.shape[0]
    x = np.stack([np.repeat(texture(c, 64, seed=9)[..., None], 3, 2) for c in range(6)])
    out = unknown_classifier.backend.verdict(np.asarray(x, np.float32))
    scores = det.all_scores(out)
    np.testing.assert_allclose(scores["vim"], det.vim.score(out["pool_features"], out["logits"]))
    with_vim = dataclasses.replace(det, method="maha_sum+energy+knn+vim")
    assert dataclasses.replace(det, method="vim").inputs() == {"logits", "pool_features"}
    assert with_vim.inputs() == dataclasses.replace(det, method="maha_sum+energy+knn").inputs()
    z = (scores["vim"] - det.stats["vim"][0]) / det.stats["vim"][1]
    np.testing.assert_allclose(with_vim.scores(out), scores["maha_sum+energy+knn"] + z, rtol=1e-6)
    (tmp_path / "new.npz").write_bytes(with_vim.to_bytes())
    again = type(det).load(tmp_path / "new.npz")
    assert again.method == with_vim.method and again.vim.alpha == det.vim.alpha
    np.testing.assert_allclose(again.scores(out), with_vim.scores(out))
    before = dataclasses.replace(det, method="maha_sum+energy+knn")   # the default before it
    old = type(det).load(_saved_without(before, "vim_", tmp_path / "old.npz"))
    assert old.vim is None and "vim" not in old.all_scores(out)
    np.testing.assert_allclose(old.scores(out), before.scores(out))
    # a file whose score needs the virtual logit but lacks it: a clear error, and the bundle
    # loads without unknown detection rather than failing on every image
    with pytest.raises(ValueError, match="virtual-logit"):
        type(det).load(_saved_without(with_vim, "vim_", tmp_path / "broken.npz"))
    bundle = tmp_path / "bundle"
    shutil.copytree(detector_bundle, bundle)
    shutil.copy(tmp_path / "broken.npz", bundle / "unknown.npz")
    assert load_detector(bundle) is None
    (bundle / "unknown.npz").write_bytes(b"not a detector")
    assert load_detector(bundle) is None


def test_the_feature_norm_candidate_reads_the_pooled_features(detector_bundle,
                                                               unknown_classifier):
    """``norm``: minus the L2 norm of the pooled last features, from the outputs every export
    gives; the five-part sum adds it standardised on the validation images."""
    det = dataclasses.replace(_detector_with_a_virtual_logit(detector_bundle),
                              method="maha_sum+energy+knn+vim+norm")
    x = np.stack([np.repeat(texture(c, 64, seed=9)[..., None], 3, 2) for c in range(6)])
    out = unknown_classifier.backend.verdict(np.asarray(x, np.float32))
    scores = det.all_scores(out)
    np.testing.assert_allclose(scores["norm"], -np.linalg.norm(
        np.asarray(out["pool_features"], np.float64), axis=1))
    assert "norm" in det.stats and "pool_features" in det.inputs()
    z = (scores["norm"] - det.stats["norm"][0]) / det.stats["norm"][1]
    np.testing.assert_allclose(det.scores(out), scores["maha_sum+energy+knn+vim"] + z, rtol=1e-6)


def test_a_detector_file_from_before_the_std_views_still_loads(detector_bundle, tmp_path):
    import io
    import json

    from training.detect import load_detector

    det = load_detector(detector_bundle)
    old = dataclasses.replace(det, method="maha_sum+energy",
                              gauss={k: g for k, g in det.gauss.items() if "+" not in k})
    with np.load(io.BytesIO(old.to_bytes())) as z:
        arrays = dict(z)
    meta = json.loads(bytes(arrays["meta"]).decode())
    del meta["gauss"]  # the files written before the std views had no such entry
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "unknown.npz", **arrays)
    again = type(det).load(tmp_path / "unknown.npz")
    assert set(again.gauss) == set(old.gauss) and again.inputs() == old.inputs()
    x = {k: np.ones((2, g.means.shape[1])) for k, g in
         (("pool_" + v, old.gauss[v]) for v in old.views)}
    x["logits"] = np.zeros((2, det.num_classes))
    x["pool_features"] = np.ones((2, old.gauss["features"].means.shape[1]))
    np.testing.assert_allclose(again.scores(x), old.scores(x))


def test_an_image_the_runtime_gives_nan_for_is_unknown(unknown_classifier, classifier,
                                                       monkeypatch):
    """LiteRT gives NaN for an image without any contrast (a blank frame leaves the per-image
    standardisation nothing to divide by): even probabilities and flagged unknown, not NaN."""
    x = np.stack([np.repeat(texture(c, 64, seed=5)[..., None], 3, 2) for c in range(2)])
    for clf in (unknown_classifier, classifier):
        real = clf.backend.verdict

        def blank_first(batch, spread=True, real=real):
            out = {k: np.array(v, np.float32) for k, v in real(batch, spread).items()}
            for v in out.values():
                v[0] = np.nan
            return out

        monkeypatch.setattr(clf.backend, "verdict", blank_first)
        v = clf.judge(x)
        np.testing.assert_allclose(v.probs[0], 1 / v.probs.shape[1], rtol=1e-5)
        assert np.isfinite(v.probs).all()
        np.testing.assert_allclose(v.probs[1].sum(), 1, rtol=1e-5)
    v = unknown_classifier.judge(x)
    assert not v.known[0] and np.isinf(v.unknown_scores[0]) and np.isfinite(v.unknown_scores[1])
    from inspector.engine import normalize_map

    m = normalize_map(np.array([[np.nan, 1.0], [2.0, np.inf]]))
    assert np.isfinite(m).all() and m.max() == 1.0  # an attention map of such an image


def test_an_export_older_than_its_detector_falls_back_to_tensorflow(detector_bundle, tmp_path,
                                                                    monkeypatch, caplog):
    """A detector fitted after the LiteRT export (``calibrate`` without ``export``) may read
    outputs the export lacks: the engine says so and runs the Keras model instead of failing."""
    from inspector.engine import load_classifier
    from training.openset import UnknownDetector

    out = tmp_path / "stale"
    shutil.copytree(detector_bundle, out)
    monkeypatch.setattr(UnknownDetector, "inputs", lambda self: {"logits", "std_not_exported"})
    clf = load_classifier(out)
    assert "TensorFlow" in clf.device and "predates the unknown detector" in clf.device
    assert "re-export" in caplog.text
    assert clf.judge(np.zeros((1, clf.input_size, clf.input_size, 3), np.uint8)).unknown_scores \
        is not None


@pytest.fixture(scope="session")
def graph_score_bundle(detector_bundle, tmp_path_factory):
    """The detector bundle exported again: its fp32 model computes the detector's score in its
    graph (``training.score_graph``), as ``train`` and ``export`` write it."""
    from training.bundle import load_bundle
    from training.detect import load_detector
    from training.inspection_export import build_inspection, write_inspection

    out = tmp_path_factory.mktemp("graph") / "test-bundle"
    shutil.copytree(detector_bundle, out)
    x, y = detector_images(range(len(CLASSES)), range(300, 304))
    files, info = build_inspection(load_bundle(out).model, None, x, y, formats_wanted=("fp32",),
                                   detector=load_detector(out))
    write_inspection(out, files, info)
    return out


def _known_and_foreign(n=3):
    x, _ = detector_images(range(len(CLASSES)), range(400, 400 + n))
    foreign = np.stack([np.repeat(foreign_image(64, seed=s)[..., None], 3, 2) for s in range(n)])
    return np.concatenate([x, foreign])


def test_the_export_computes_the_unknown_score_in_its_graph(graph_score_bundle,
                                                            unknown_classifier):
    """One invoke gives the verdict: the engine reads the graph's score and probabilities (not
    the pooled features) and judges as the numpy detector does on the same images."""
    from inspector.engine import load_classifier
    from training.litert import read_info

    score = read_info(graph_score_bundle)["formats"]["fp32"]["score"]
    assert score["usable"] and score["max_score_diff"] <= score["score_atol"]
    clf = load_classifier(graph_score_bundle)
    assert clf.backend.graph_score and not unknown_classifier.backend.graph_score
    assert set(clf.backend.verdict_keys) == {"unknown_score", "unknown_probs"}
    x = _known_and_foreign()
    a, b = clf.judge(x), unknown_classifier.judge(x)
    np.testing.assert_allclose(a.unknown_scores, b.unknown_scores, atol=score["score_atol"])
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
    clear = np.abs(b.unknown_scores - clf.unknown_threshold) > score["score_atol"]
    np.testing.assert_array_equal(a.known[clear], b.known[clear])
    assert not a.known[-3:].any() and a.known[:-3].mean() > 0.5
    one = clf.inspect(x[-1])
    assert one.unknown_score == pytest.approx(a.unknown_scores[-1], abs=1e-4) and not one.known
    # a blank frame's NaN runs through the graph's score: flagged unknown, even probabilities
    out = clf.backend.verdict(x[:2].astype(np.float32))
    for v in out.values():
        v[0] = np.nan
    v = clf._verdicts(out)
    assert not v.known[0] and np.isinf(v.unknown_scores[0]) and v.known[1] == a.known[1]
    np.testing.assert_allclose(v.probs[0], 1 / len(CLASSES), rtol=1e-6)


def test_verdicts_run_on_the_verdict_only_files(graph_score_bundle, tmp_path, caplog):
    """The export also writes the model with only a verdict's outputs (colour and grey), checked
    against the inspection model; a verdict runs on it (the inspection model's tensors are not
    even allocated), an explanation on the inspection model; a verdict file that fails when it
    runs hands its images on; one of another export, or missing, is left out on reading."""
    import json

    from training.litert import (GRAPH_KEYS, INSPECT, INSPECTION_INFO, MAIN, VERDICT,
                                 VERDICT_FILES, VERDICT_GREY_FILES, InspectionRunner, open_runner,
                                 read_info)

    info = read_info(graph_score_bundle)
    entry = info["formats"]["fp32"]
    for twin, name in ((entry["verdict"], VERDICT_FILES["fp32"]),
                       (entry["grey"]["verdict"], VERDICT_GREY_FILES["fp32"])):
        assert twin["usable"] and twin["file"] == name and (graph_score_bundle / name).exists()
        assert twin["score"]["digest"] == entry["score"]["digest"]
        assert set(twin["outputs"]) == set(GRAPH_KEYS)
    runner = open_runner(graph_score_bundle, "fp32", info, num_threads=1, single_threads=1)
    assert set(runner.verdict_outputs) == set(GRAPH_KEYS)
    whole = InspectionRunner(graph_score_bundle / "inspect_fp32.tflite", entry["outputs"],
                             batch=False, num_threads=1, single_threads=1,
                             grey=(graph_score_bundle / entry["grey"]["file"],
                                   entry["grey"]["outputs"]))
    x = _known_and_foreign()
    x[1, ..., 0] = np.clip(x[1, ..., 0].astype(int) + 7, 0, 255)   # one colour image
    got = runner.run(x, list(GRAPH_KEYS))
    ref = whole.run(x, list(GRAPH_KEYS))
    for k in GRAPH_KEYS:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-6, atol=1e-6, err_msg=k)
    slot = runner._slots[0]
    assert slot.ready == {(VERDICT, False), (VERDICT, True)} and slot.n == 0
    maps = runner.run(x[:2])   # every output: the inspection model and its grey twin
    assert set(maps) == set(entry["outputs"]) and slot.n == 1 and (INSPECT, True) in slot.ready
    np.testing.assert_allclose(maps["unknown_score"], ref["unknown_score"][:2], atol=1e-6)

    class Failing:
        def allocate_tensors(self):
            pass

        def set_tensor(self, index, value):
            raise RuntimeError("no kernel for this op")

    slot.interpreters[(VERDICT, True)] = Failing()
    again = runner.run(x, list(GRAPH_KEYS))   # grey images now on the colour verdict model
    colour = InspectionRunner(graph_score_bundle / "inspect_fp32.tflite", entry["outputs"],
                              batch=False, num_threads=1, single_threads=1)
    np.testing.assert_allclose(again["unknown_score"],
                               colour.run(x, list(GRAPH_KEYS))["unknown_score"], atol=1e-6)
    assert (VERDICT, True) not in slot.interpreters and MAIN in slot.interpreters
    assert "grey verdict model failed" in caplog.text

    out = tmp_path / "bundle"
    shutil.copytree(graph_score_bundle, out)
    doc = json.loads((out / INSPECTION_INFO).read_text())
    doc["formats"]["fp32"]["verdict"]["score"]["digest"] = "another export"
    (out / INSPECTION_INFO).write_text(json.dumps(doc))
    (out / VERDICT_GREY_FILES["fp32"]).unlink()
    left = read_info(out)["formats"]["fp32"]
    assert "verdict" not in left and "verdict" not in left["grey"] and "grey" in left
    assert open_runner(out, "fp32", read_info(out)).verdict_outputs == ()
    # a grey verdict file serves grey images without the colour one; a file never gets a call
    # for keys it lacks
    grey_only = InspectionRunner(
        graph_score_bundle / "inspect_fp32.tflite", entry["outputs"], batch=False, num_threads=1,
        single_threads=1, grey=(graph_score_bundle / entry["grey"]["file"],
                                entry["grey"]["outputs"]),
        verdict_grey=(graph_score_bundle / VERDICT_GREY_FILES["fp32"],
                      {"unknown_score": entry["grey"]["verdict"]["outputs"]["unknown_score"]}))
    grey_x = x[:1]
    assert grey_x[0, ..., 0].tolist() == grey_x[0, ..., 1].tolist()
    grey_only.run(grey_x, ["unknown_score"])
    assert grey_only._slots[0].ready == {(VERDICT, True)}
    both = grey_only.run(grey_x, list(GRAPH_KEYS))   # probabilities too: the grey model
    assert (INSPECT, True) in grey_only._slots[0].ready and set(both) == set(GRAPH_KEYS)


def test_a_detector_fitted_anew_is_scored_in_numpy_until_the_export_is(graph_score_bundle,
                                                                        tmp_path):
    """The graph's score belongs to the detector it was exported with (its fingerprint): after
    ``calibrate`` fits another, the engine scores in numpy with the new one, not the old."""
    from inspector.engine import load_classifier
    from training.detect import load_detector, write_detector

    out = tmp_path / "recalibrated"
    shutil.copytree(graph_score_bundle, out)
    det = load_detector(out)
    new = dataclasses.replace(det, temperature=det.temperature * 3)
    write_detector(out, new)
    clf = load_classifier(out)
    assert not clf.backend.graph_score and "pool_features" in clf.backend.verdict_keys
    assert "unknown score in numpy: the export predates the detector" in clf.device
    x = _known_and_foreign(2)
    out_ = clf.backend.runner.run(x.astype(np.float32))
    np.testing.assert_allclose(clf.judge(x).unknown_scores, new.scores(out_), rtol=1e-9)
    # a new threshold alone (another acceptance) keeps the graph's score
    write_detector(out, dataclasses.replace(det, threshold=det.threshold + 0.5))
    assert load_classifier(out).backend.graph_score


def test_formats_are_timed_to_a_verdict_with_the_unknown_score(graph_score_bundle, tmp_path):
    """The format choice times what a verdict takes: the invoke alone where the score is in the
    format's graph, the invoke and the numpy scoring where it is not (int8, a stale export)."""
    from inspector.runtime import verdict_timer
    from training.detect import load_detector
    from training.litert import open_runner, read_info

    info = read_info(graph_score_bundle)
    det = load_detector(graph_score_bundle)
    asked = []

    class Spy:
        def __init__(self, runner):
            self.runner, self.keys = runner, runner.keys

        def run(self, x, keys=None):
            asked.append(sorted(keys))
            return self.runner.run(x, keys)

    spy = Spy(open_runner(graph_score_bundle, "fp32", info))
    x = _known_and_foreign(1)[:1].astype(np.float32)
    verdict_timer(spy, info["formats"]["fp32"], det)(x)
    assert asked[-1] == ["unknown_probs", "unknown_score"]
    stale = dataclasses.replace(det, temperature=det.temperature * 2)
    probs, scores = verdict_timer(spy, info["formats"]["fp32"], stale)(x)
    assert "pool_features" in asked[-1] and "unknown_score" not in asked[-1]
    assert scores.shape == (1,) and probs.shape == (1, len(CLASSES))


def test_calibrate_exports_again_so_the_new_detector_is_scored_in_the_graph(
        graph_score_bundle, tmp_path, monkeypatch, capsys):
    """``python -m training calibrate`` writes the new detector and exports the inspection model
    again, so the graph computes the new score; when that export fails the detector stays
    written, the app scores it in numpy and the command says so."""
    import training.detect
    import training.export
    from inspector.engine import load_classifier
    from training.cli import main
    from training.detect import load_detector, write_detector
    from training.litert import read_info

    out = tmp_path / "bundle"
    shutil.copytree(graph_score_bundle, out)
    det = load_detector(out)
    new = dataclasses.replace(det, temperature=det.temperature * 3)

    def fitted(*args, **kwargs):
        write_detector(out, new)
        return new

    monkeypatch.setattr(training.detect, "calibrate_bundle", fitted)
    # the stand-in has no data folder: no test split to check the export on, so it fails
    assert main(["calibrate", "--model", str(out)]) == 0
    assert "the export failed" in capsys.readouterr().err
    assert not load_classifier(out).backend.graph_score
    x, y = detector_images(range(len(CLASSES)), range(300, 304))
    monkeypatch.setattr(training.export, "split_images", lambda *a, **k: (x, y))
    assert main(["calibrate", "--model", str(out)]) == 0
    assert "fp32: unknown score in the graph" in capsys.readouterr().out
    assert read_info(out)["formats"]["fp32"]["score"]["digest"] == new.digest() != det.digest()
    clf = load_classifier(out)
    assert clf.backend.graph_score
    probe = _known_and_foreign(2)
    np.testing.assert_allclose(clf.judge(probe).unknown_scores,
                               new.scores(clf.backend.runner.run(probe.astype(np.float32))),
                               atol=2e-3)


# ---- classify CSV -----------------------------------------------------------------------------

@pytest.fixture
def flag_everything_bundle(detector_bundle, tmp_path):
    """The detector bundle with a threshold below every score: every image is flagged."""
    from training.detect import load_detector, write_detector

    out = tmp_path / "flag-all"
    shutil.copytree(detector_bundle, out)
    det = load_detector(out)
    write_detector(out, dataclasses.replace(det, threshold=-1e12, val_scores=None))
    return out


def test_classify_csv_has_the_unknown_columns(tmp_path, capsys, classifier, flag_everything_bundle):
    from inspector.engine import load_classifier

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for k in range(3):
        Image.fromarray(texture(k, 64, seed=k)).save(imgs / f"t{k}.png")
    out = tmp_path / "all.csv"
    clf = load_classifier(flag_everything_bundle)
    assert batch.main([str(imgs), "--out", str(out)], classifier=clf) == 0
    rows = list(csv.DictReader(out.open()))
    header = out.read_text().splitlines()[0].split(",")
    assert {"unknown_score", "known", "top_class"} <= set(header)
    assert len(rows) == 3
    for r in rows:
        assert r["label"] == UNKNOWN and r["known"] == "false"
        assert r["top_class"] in CLASSES and float(r["unknown_score"]) > -1e12
        assert float(r["confidence"]) == pytest.approx(float(r[r["top_class"]]))
    err = capsys.readouterr().err
    assert "accepting 95% of the model's known validation images (the model's own)" in err
    # without a detector: labels are classes, not judged (known empty, not "true"), no score
    out2 = tmp_path / "plain.csv"
    assert batch.main([str(imgs), "--out", str(out2)], classifier=classifier) == 0
    for r in csv.DictReader(out2.open()):
        assert r["label"] == r["top_class"] and r["known"] == "" and r["unknown_score"] == ""
    assert "unknown detection unavailable for this model" in capsys.readouterr().err


def test_classify_applies_the_windows_accept_setting_or_its_own(tmp_path, capsys,
                                                                flag_everything_bundle):
    """``inspector classify`` judges at the threshold the window is set to (the *Accept as
    known* share saved in settings.ini), and ``--accept`` overrides it."""
    from inspector.engine import load_classifier
    from inspector.settings import settings_path

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(texture(1, 64, seed=1)).save(imgs / "t.png")
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("[review]\nunknown_accept=0.8\n")
    clf = load_classifier(flag_everything_bundle)
    assert batch.main([str(imgs), "--out", str(tmp_path / "a.csv")], classifier=clf) == 0
    assert clf.accept == pytest.approx(0.8)
    assert "accepting 80% of the model's known validation images (the window's setting)" in \
        capsys.readouterr().err
    assert batch.main([str(imgs), "--out", str(tmp_path / "b.csv"), "--accept", "99"],
                      classifier=clf) == 0
    assert clf.accept == pytest.approx(0.99) and "(--accept)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        batch.build_parser().parse_args([str(imgs), "--accept", "30"])
    # a hand-edited share outside the window's range: the share the window would use
    settings_path().write_text("[review]\nunknown_accept=0.3\n")
    assert batch.main([str(imgs), "--out", str(tmp_path / "c.csv")], classifier=clf) == 0
    assert clf.accept == pytest.approx(0.8) and "accepting 80%" in capsys.readouterr().err


# ---- the session ------------------------------------------------------------------------------

def _session(tmp_path, n=4) -> ReviewSession:
    for k in range(n):
        Image.fromarray(texture(k, 32, seed=k)).save(tmp_path / f"i{k}.png")
    s = ReviewSession.open_folder(tmp_path, class_names=list(CLASSES[:3]))
    for i, score in enumerate([0.5, 2.0, 4.0, None][:n]):
        s.set_prediction(i, np.array([0.7, 0.2, 0.1]), score, score is None or score <= 1.0)
    return s


def test_rejudging_stored_scores_filter_and_summary(tmp_path):
    s = _session(tmp_path)
    assert [s.is_unknown(i) for i in range(4)] == [False, True, True, False]
    assert s.view(Filter(unknown=True)) == [1, 2]
    assert s.unknown_share() == (2, 3)
    summ = s.summary()
    assert summ["unknown"] == 2 and summ["unknown_judged"] == 3
    assert "2 unknown" in report.summary_text(summ)
    header, rows = report.summary_table(s)
    assert rows[0][header.index("unknown")] == 2
    assert s.rejudge_unknown(3.0) == [1]            # only the 2.0 changed
    assert s.view(Filter(unknown=True)) == [2]
    assert s.rejudge_unknown(None) == [2]           # no detector: everything known
    assert s.unknown_share() == (0, 3)
    assert report.unknown_rate_text(3, 25, 0.05) == "unknown 12% of 25 (model's validation: 5%)"
    assert report.unknown_rate_text(0, 0, None, False) == \
        "unknown detection unavailable for this model"


def test_an_unknown_image_is_not_accepted_as_its_closest_class(tmp_path):
    """Accepting the prediction of an image flagged unknown does nothing (its closest class is
    not the model's verdict and would become training data); a class given to it counts as an
    override; the per-class counts leave it out (it is counted as unknown, as the CSV labels
    it); the journal records that the model flagged it."""
    import json as json_mod

    s = _session(tmp_path)
    assert s.accept(1) is None and s.items[1].verdict is None
    assert s.accept(0).label == CLASSES[0] and not s.is_overridden(0)
    s.set_verdict(1, CLASSES[0])                 # the inspector names the closest class
    assert s.is_overridden(1)
    summ = s.summary()
    assert summ["per_class"][CLASSES[0]] == 2 and summ["unknown"] == 2   # items 0 and 3
    assert summ["accepted"] == 1 and summ["overrides"] == 1
    recs = [json_mod.loads(line) for line in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
    assert recs[-1]["known"] is False and recs[-1]["unknown_score"] == 2.0
    assert recs[0]["known"] is True and recs[0]["unknown_score"] == 0.5


def test_a_new_class_name_must_be_a_folder_name_everywhere_and_not_clash_by_case(tmp_path):
    from inspector.session import check_class_name

    for bad in ("CON", "nul.txt", "Com1", "scale.", "a\tb"):
        with pytest.raises(ValueError, match="folder name"):
            check_class_name(bad)
    with pytest.raises(ValueError, match="only in upper and lower case"):
        check_class_name("Red_Scale", ["crazing", "red_scale"])
    assert check_class_name(" red_scale ", ["red_scale"]) == "red_scale"
    s = _session(tmp_path)
    s.set_verdict(1, "red_scale", new_class=True)
    with pytest.raises(ValueError, match="only in upper and lower case"):
        s.set_verdict(2, "RED_SCALE", new_class=True)
    with pytest.raises(ValueError, match="only in upper and lower case"):
        s.set_verdict(2, CLASSES[0].upper(), new_class=True)


def test_a_new_class_verdict_is_journaled_and_offered_for_retraining(tmp_path):
    from inspector.gui.wizard.data_page import verdicts_text
    from inspector.retrain import gather_samples

    s = _session(tmp_path)
    with pytest.raises(ValueError):
        s.set_verdict(1, "red_scale")            # a typo is not a new class by accident
    s.set_verdict(1, " red_scale ", new_class=True)
    s.set_verdict(2, "red_scale", new_class=True)
    s.set_verdict(0, CLASSES[0])
    for bad in ("", "unknown", "Unsure", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            s.set_verdict(3, bad, new_class=True)
    assert s.new_class_names() == ["red_scale"]
    again = ReviewSession.open_folder(tmp_path, class_names=list(CLASSES[:3]))
    assert [it.verdict.label if it.verdict else None for it in again.items] == \
        [CLASSES[0], "red_scale", "red_scale", None]
    assert (tmp_path / JOURNAL_NAME).exists()
    verdicts = again.training_verdicts()
    samples, problems = gather_samples([], verdicts)
    assert not problems and sorted(x.label for x in samples).count("red_scale") == 2
    assert "new classes: red_scale (2)" in verdicts_text(verdicts, list(CLASSES[:3]))


# ---- the main window --------------------------------------------------------------------------

@pytest.fixture
def mixed_folder(tmp_path):
    root = tmp_path / "line-7"
    root.mkdir()
    for c in range(6):
        Image.fromarray(texture(c, 64, seed=300 + c)).save(root / f"a{c}_{CLASSES[c]}.png")
    for k in range(3):
        Image.fromarray(foreign_image(64, seed=k)).save(root / f"z{k}_foreign.png")
    return root


def _open(qtbot, classifier, folder):
    from inspector.gui.main_window import MainWindow

    w = MainWindow(classifier=classifier)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.classification_done, timeout=30000):
        w.open_folder(folder)
    return w


def _unknown_pixels(widget) -> int:
    """Pixels of the unknown colour in a widget's rendering."""
    from inspector.gui.charts import UNKNOWN_COLOUR

    img = widget.grab().toImage()
    w, h = img.width(), img.height()
    target = UNKNOWN_COLOUR.rgb() & 0xFFFFFF
    return sum(1 for y in range(0, h, 2) for x in range(0, w, 2)
               if img.pixel(x, y) & 0xFFFFFF == target)


def test_main_window_flags_filters_colours_and_rejudges(qtbot, unknown_classifier, mixed_folder):
    w = _open(qtbot, unknown_classifier, mixed_folder)
    s = w.session
    foreign = [i for i, it in enumerate(s.items) if "foreign" in it.path.name]
    assert all(s.is_unknown(i) for i in foreign)
    assert all(s.items[i].unknown_score is not None for i in range(len(s)))
    flagged = [i for i in range(len(s)) if s.is_unknown(i)]
    # the status bar: the share against the model's validation rate
    qtbot.waitUntil(lambda: "model's validation: 5%" in w.unknown_label.text())
    assert f"unknown {len(flagged) / len(s):.0%} of {len(s)}" in w.unknown_label.text()
    # the filter and the colour
    w.set_filter("Unknown")
    assert w.thumb_model.rows == flagged
    qtbot.waitUntil(lambda: _unknown_pixels(w.list.viewport()) > 50)
    assert UNKNOWN_TEXT in w.thumb_model.tooltip(foreign[0])
    w.select(foreign[0])
    qtbot.waitUntil(lambda: w.shown_index() == foreign[0], timeout=10000)
    assert UNKNOWN_TEXT in w.verdict_label.text()
    # Enter does not make a foreign image its closest class's training data
    assert not w.accept_prediction()
    assert s.items[foreign[0]].verdict is None and w.current_index() == foreign[0]
    assert "Flagged unknown" in w.statusBar().currentMessage()
    # the hint is about that image: gone when another one is shown
    w.select(next(i for i in w.thumb_model.rows if i != foreign[0]))   # in the filtered view
    assert w.statusBar().currentMessage() == ""
    w.select(foreign[0])
    # the setting: accepting 100% of the validation images flags fewer (or as many), re-judged
    # from stored scores; the setting is remembered
    w.unknown_accept.setValue(100)
    assert unknown_classifier.accept == 1.0
    t = unknown_classifier.unknown_threshold
    assert all(s.items[i].known == (s.items[i].unknown_score <= t) for i in range(len(s)))
    assert len(w.thumb_model.rows) <= len(flagged)
    from inspector.settings import Key

    assert w.settings.get_float(Key.UNKNOWN_ACCEPT) == 1.0
    # all known: the filter is empty and no thumbnail is violet
    w.session.rejudge_unknown(float("inf"))
    w.set_filter("All images")
    w.list.viewport().update()
    qtbot.waitUntil(lambda: _unknown_pixels(w.list.viewport()) == 0)
    w.close()


def test_new_class_verdict_typed_in_the_window(qtbot, unknown_classifier, mixed_folder):
    from PySide6.QtCore import Qt

    w = _open(qtbot, unknown_classifier, mixed_folder)
    idx = next(i for i, it in enumerate(w.session.items) if "foreign" in it.path.name)
    w.select(idx)
    qtbot.waitUntil(lambda: w.current_index() == idx and w.shown_index() == idx, timeout=10000)
    qtbot.keyClick(w.list, Qt.Key.Key_N)
    assert w.new_class_edit.hasFocus()
    w.last_message = None
    qtbot.keyClick(w.new_class_edit, Qt.Key.Key_Return)   # empty: left as Esc leaves it
    assert w.last_message is None and w.list.hasFocus() and w.session.items[idx].verdict is None
    qtbot.keyClick(w.list, Qt.Key.Key_N)
    qtbot.keyClicks(w.new_class_edit, "checker")
    qtbot.keyClick(w.new_class_edit, Qt.Key.Key_Return)
    assert w.session.items[idx].verdict.label == "checker"
    assert w.session.new_class_names() == ["checker"]
    assert w.current_index() != idx, "moves on like any verdict"
    assert '"checker"' in (mixed_folder / JOURNAL_NAME).read_text()
    w.close()


def test_without_a_detector_the_status_bar_says_so(qtbot, classifier, mixed_folder):
    w = _open(qtbot, classifier, mixed_folder)
    assert w.unknown_label.text() == "unknown detection unavailable for this model"
    assert not w.unknown_accept.isEnabled()
    assert not any(w.session.is_unknown(i) for i in range(len(w.session)))
    w.close()


# ---- the camera -------------------------------------------------------------------------------

def test_live_analysis_carries_unknown_verdicts_and_an_unknown_tile_wins(unknown_classifier):
    from inspector.camera import Frame, LiveConfig, Roi, UnknownRate, analyse

    img = np.zeros((64, 128), np.uint8)
    img[:, :64] = texture(2, 64, seed=400)
    img[:, 64:] = foreign_image(64)
    frame = Frame(np.repeat(img[..., None], 3, 2), 1, 0.0)
    whole = analyse(unknown_classifier, frame, LiveConfig(roi=Roi(64, 0, 64, 64)))
    assert not whole.known and whole.verdict_text.startswith(UNKNOWN_TEXT)
    tiled = analyse(unknown_classifier, frame, LiveConfig(tile=64))
    assert len(tiled.tiles) == 2 and tiled.unknown_tiles == [1] and not tiled.known
    with_map = analyse(unknown_classifier, frame, LiveConfig(tile=64, overlay="cam"))
    assert with_map.unknown_tiles == [1] and with_map.tile_unknown_scores.shape == (2,)
    rate = UnknownRate(window=4)
    for r in (whole, tiled):
        rate.record(r)
    assert rate.counts == (2, 2)


def test_camera_window_shows_unknown_live(qtbot, unknown_classifier, tmp_path):
    import cv2

    from inspector.camera import ReconnectPolicy, Source
    from inspector.gui.camera_window import CameraWindow
    from inspector.gui.charts import UNKNOWN_COLOUR

    path = tmp_path / "foreign.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 64))
    for k in range(30):
        vw.write(cv2.cvtColor(foreign_image(64, seed=k % 3), cv2.COLOR_GRAY2BGR))
    vw.release()
    win = CameraWindow(lambda: unknown_classifier, camera_probe=lambda: [],
                       policy=ReconnectPolicy(initial=0.02, factor=2.0, maximum=0.1,
                                              stall_timeout=2.0, open_timeout=2.0))
    qtbot.addWidget(win)
    win.show()
    try:
        win.open_source(Source.file(str(path)))
        qtbot.waitUntil(lambda: win.prediction_label.text().startswith(UNKNOWN_TEXT),
                        timeout=15000)
        assert UNKNOWN_COLOUR.name() in win.prediction_label.styleSheet()
        qtbot.waitUntil(lambda: "model's validation: 5%" in win.unknown_label.text(),
                        timeout=5000)
        assert win.unknown_label.text().startswith("unknown 100%")
    finally:
        win.close()


def test_the_threshold_accepts_at_least_the_stated_share():
    from training.openset import acceptance_threshold

    for n in (10, 100, 138, 1000):
        s = np.random.default_rng(n).normal(size=n)
        for pct in range(50, 101):
            share = pct / 100
            t = acceptance_threshold(s, share)
            k = min(n, int(np.ceil(share * (n + 1) - 1e-9)))
            assert (s <= t).sum() == k, (n, pct)      # at least the share, and no more
            if k < n:   # half-way to the next score: a margin for another runtime's last bits
                nxt = np.sort(s)[k]
                assert t < nxt and nxt - t == pytest.approx(t - np.sort(s)[k - 1])
    s = np.random.default_rng(0).normal(size=138)
    assert (s <= acceptance_threshold(s, 0.95)).sum() == 133   # the k-th of n: 132


def test_the_threshold_accepts_the_stated_share_of_new_images():
    """Set on n known images, the threshold accepts at least the stated share of the known
    images that follow, on average (split-conformal). Normal scores: a new image's chance of
    acceptance is the normal CDF at the threshold, averaged over 4,000 draws of the n."""
    from math import erf, sqrt

    from training.openset import acceptance_threshold

    rng = np.random.default_rng(7)
    for n, share in ((40, 0.9), (138, 0.95), (60, 0.8)):
        cover = np.mean([0.5 * (1 + erf(acceptance_threshold(rng.normal(size=n), share) / sqrt(2)))
                         for _ in range(4000)])
        assert cover >= share, (n, share, cover)   # the k-th of n: 0.890 for (40, 0.9)



def test_the_graph_score_skips_the_zero_blocks_of_the_whitening(detector_bundle, monkeypatch):
    """``training.score_graph`` multiplies by each non-zero block of the compiled score's
    block-diagonal matrix alone (a third of it to read) and gives what the whole product gives;
    a matrix with anything outside those blocks is multiplied whole."""
    import copy

    import tensorflow as tf

    from training import score_graph
    from training.detect import load_detector

    cs = load_detector(detector_bundle).compiled()
    blocks = score_graph._blocks(cs)
    assert blocks is not None and len(blocks) >= 2 * cs.layer_count
    assert sum((r1 - r0) * (c1 - c0) for (r0, r1), (c0, c1) in blocks) < cs.w.size
    rng = np.random.default_rng(0)
    u = (cs.center + rng.normal(size=(4, cs.w.shape[0]))).astype(np.float32)
    # the concatenated inputs as the first input, the others empty: the same ``u`` inside
    out = {k: tf.zeros((4, 0)) for k in cs.inputs}
    out[cs.inputs[0]] = tf.constant(u)
    out["logits"] = tf.constant(rng.normal(size=(4, cs.means.shape[0])).astype(np.float32))
    split = score_graph.score_outputs(cs, out)["unknown_score"].numpy()
    monkeypatch.setattr(score_graph, "_blocks", lambda cs: None)
    whole = score_graph.score_outputs(cs, out)["unknown_score"].numpy()
    np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-3)
    assert np.ptp(whole) > 1e-2   # the images' scores differ: the comparison means something
    monkeypatch.undo()
    bad = copy.copy(cs)
    bad.w = cs.w.copy()
    bad.w[0, -1] = 1.0
    assert score_graph._blocks(bad) is None


def test_evaluate_reports_the_unknown_protocol_given_the_model_file(detector_bundle, tmp_path,
                                                                     capsys, monkeypatch):
    """``python -m training evaluate --unknown`` (given the bundle's model file, as the other
    commands accept) reports the separation of a foreign folder and writes the reliability
    diagram."""
    from training.cli import main

    known, foreign = tmp_path / "known", tmp_path / "foreign"
    for c, name in enumerate(CLASSES):
        (known / name).mkdir(parents=True)
        for s in range(300, 303):
            Image.fromarray(texture(c, 64, seed=s)).save(known / name / f"{s}.png")
    foreign.mkdir()
    for s in range(6):
        Image.fromarray(foreign_image(64, seed=s)).save(foreign / f"f{s}.png")
    out, png = tmp_path / "r.json", tmp_path / "rel.png"
    assert main(["evaluate", "--model", str(detector_bundle / "model.keras"), "--data", str(known),
                 "--unknown", str(foreign), "--json", str(out), "--reliability-png", str(png)]) == 0
    r = json.loads(out.read_text())["unknown"]
    text = capsys.readouterr().out
    assert "AUROC" in text
    assert 0.0 <= r["auroc"] <= 1.0 and 0.0 <= r["known_accepted"] <= 1.0
    assert png.stat().st_size > 1000
    assert "unreadable_left_out" not in r
    # a damaged unknown image is named and left out, as a known one is
    (foreign / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    assert main(["evaluate", "--model", str(detector_bundle), "--data", str(known),
                 "--unknown", str(foreign), "--json", str(out)]) == 2
    assert "1 unreadable unknown image file(s) left out" in capsys.readouterr().err
    r = json.loads(out.read_text())["unknown"]
    assert len(r["unreadable_left_out"]) == 1 and "cut.png" in r["unreadable_left_out"][0]
    # a bundle without a detector is said before the known images are read and evaluated
    from training import cli
    plain = tmp_path / "plain"
    import shutil
    shutil.copytree(detector_bundle, plain)
    (plain / "unknown.npz").unlink()
    read = []
    real = cli._evaluation_images
    monkeypatch.setattr(cli, "_evaluation_images", lambda *a: read.append(1) or real(*a))
    assert main(["evaluate", "--model", str(plain), "--data", str(known),
                 "--unknown", str(foreign)]) == 2
    assert "has no unknown detector" in capsys.readouterr().err and not read
