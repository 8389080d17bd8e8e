"""The LiteRT inspection export (training.inspection_export, training.litert) and the runtime
the app picks (inspector.runtime): outputs as Keras gives them, the fastest allowed format, the
TensorFlow paths (a GPU, a bundle without the export) and a review path free of TensorFlow."""
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from synth import CLASSES, PROB_ATOL, make_dataset, texture

ROOT = Path(__file__).resolve().parents[1]
# Feature maps and pooled features: CPU kernels of Keras and LiteRT sum in other orders.
OUTPUT_ATOL = 1e-4


def images(n, size=64, seed=0):
    return np.stack([np.repeat(texture(i % 6, size, seed=seed + i)[..., None], 3, axis=2)
                     for i in range(n)])


@pytest.mark.parametrize("design,norm,formats", [("A", "rescale", ("fp32",)),
                                                 ("B", "rescale", ("fp32",)),
                                                 ("A", "standardize", ("fp32", "int8")),
                                                 ("B", "standardize", ("fp32",)),
                                                 ("A", "standardize_colour", ("fp32",))])
def test_inspection_export_gives_what_keras_gives(tmp_path, design, norm, formats):
    import keras

    from training.inspection_export import build_inspection, keras_outputs, write_inspection
    from training.litert import open_runner, read_info
    from training.model import build_ssdc_mininet, inspection_model

    keras.utils.set_random_seed(1)
    model = build_ssdc_mininet(design, 6, 64, input_norm=norm)
    x = images(24).astype(np.float32)
    for _ in range(5):   # batch-norm statistics of textures, so that outputs differ per image
        model(x, training=True)
    labels = np.arange(24) % 6
    files, info = build_inspection(model, x if "int8" in formats else None, x, labels,
                                   formats_wanted=formats)
    write_inspection(tmp_path, files, info)
    info = read_info(tmp_path)
    assert set(info["formats"]) >= {"fp32"} and info["input_size"] == 64
    ref = keras_outputs(inspection_model(model), x)
    runner = open_runner(tmp_path, "fp32", info)
    got = runner.run(x)
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=OUTPUT_ATOL, err_msg=k)
    np.testing.assert_allclose(got["probs"], ref["probs"], atol=PROB_ATOL)
    assert np.array_equal(got["probs"].argmax(1), ref["probs"].argmax(1))
    kernel = np.load(tmp_path / "classifier_kernel.npy")
    np.testing.assert_array_equal(kernel, np.asarray(model.get_layer("classifier").kernel))
    # grey images ran on the grey twin; colour images run on the colour model and also match
    assert info["formats"]["fp32"]["grey"]["usable"] and runner.has_grey
    colour = np.round(x * np.array([1.0, 0.8, 0.6], np.float32))
    ref_c, got_c = keras_outputs(inspection_model(model), colour), runner.run(colour)
    for k in ref_c:
        np.testing.assert_allclose(got_c[k], ref_c[k], atol=OUTPUT_ATOL, err_msg=k)
    if "int8" in formats:
        assert "grey" not in info["formats"]["int8"]
        entry = info["formats"]["int8"]
        assert "test_accuracy" in entry and entry["representative_images"] == 24
        q = open_runner(tmp_path, "int8", info).run(x[:3])
        assert q["probs"].shape == (3, 6) and q["probs"].dtype == np.float32


@pytest.mark.parametrize("norm", ["rescale", "standardize", "standardize_colour"])
def test_the_grey_model_gives_what_the_model_gives_on_grey_images(norm):
    """One grey channel and the first convolution's kernel summed over the colour channels: the
    same network on images whose three channels are equal."""
    import keras

    from training.model import build_ssdc_mininet, grey_model

    keras.utils.set_random_seed(2)
    model = build_ssdc_mininet("A", 6, 64, input_norm=norm)
    x = images(6).astype(np.float32)
    model(x, training=True)
    grey = grey_model(model)
    assert grey.input_shape == (None, 64, 64, 1) and grey.count_params() < model.count_params()
    assert grey_model(grey) is grey
    np.testing.assert_allclose(np.asarray(grey(x[..., :1])), np.asarray(model(x)), atol=1e-5)


def test_an_image_is_grey_only_when_every_pixel_is():
    from training.litert import grey_images

    x = images(6)
    x[1, -1, -1, 2] += 1      # one pixel of the last row: past the first row's quick look
    x[2, 0, 0, 1] += 1        # one pixel of the first row
    x[4, 3, 5, 0] += 1        # a first channel inside the image (against the second)
    x[5, 2, 1, 2] += 1        # a last channel inside the image (against the first)
    want = [True, False, False, True, False, False]
    assert grey_images(x).tolist() == want
    assert grey_images(x.astype(np.float32)).tolist() == want
    assert grey_images(x[:, :, 1:]).tolist() == [True, False, True, True, False, False]   # a view
    assert grey_images(x[:0]).shape == (0,)


def test_grey_images_run_on_the_grey_twin_and_colour_images_on_the_model(tmp_path):
    """A runner gives each image whose channels are equal to the grey twin and the others to the
    colour model, also within one batch: shown with a twin made from other weights, whose
    outputs differ. A twin that does not fit the model is refused; without its file, the export
    runs every image in colour."""
    import keras

    from training.inspection_export import build_inspection, write_inspection
    from training.litert import GREY_FILES, INSPECT, InspectionRunner, open_runner, read_info
    from training.model import build_ssdc_mininet

    GREY_TWIN = (INSPECT, True)
    x = images(4).astype(np.float32)
    blobs = []
    for seed in (3, 4):
        keras.utils.set_random_seed(seed)
        model = build_ssdc_mininet("A", 6, 64, input_norm="standardize")
        model(x, training=True)
        files, info = build_inspection(model, None, x, np.arange(4), formats_wanted=("fp32",))
        entry = info["formats"]["fp32"]
        blobs.append((files["inspect_fp32.tflite"], entry["outputs"],
                      files[GREY_FILES["fp32"]], entry["grey"]["outputs"]))
    (a, a_out, a_grey, a_grey_out), (_, _, b_grey, b_grey_out) = blobs
    own = InspectionRunner(a, a_out, batch=False, num_threads=1, grey=(a_grey, a_grey_out))
    mixed = InspectionRunner(a, a_out, batch=False, num_threads=1, grey=(b_grey, b_grey_out))
    plain = InspectionRunner(a, a_out, batch=False, num_threads=1)
    colour = x.copy()
    colour[1, ..., 2] = np.clip(colour[1, ..., 2] + 9, 0, 255)
    colour[3, ..., 0] = np.clip(colour[3, ..., 0] - 9, 0, 255)
    ref = plain.run(colour, ["probs"])["probs"]
    np.testing.assert_allclose(own.run(colour, ["probs"])["probs"], ref, atol=1e-5)
    got = mixed.run(colour, ["probs"])["probs"]
    np.testing.assert_allclose(got[[1, 3]], ref[[1, 3]], atol=1e-6)   # colour: the model
    assert np.abs(got[[0, 2]] - ref[[0, 2]]).max() > 1e-3          # grey: the other twin
    with pytest.raises(ValueError, match="grey model"):
        InspectionRunner(a, a_out, batch=False, grey=(a_grey, {"probs": a_grey_out["probs"]}))
    # the twins' tensors are allocated on their first grey image, not before
    fresh = InspectionRunner(a, a_out, batch=False, num_threads=1, grey=(a_grey, a_grey_out))
    assert GREY_TWIN not in fresh._slots[0].ready
    fresh.run(x[:1], ["probs"])
    assert GREY_TWIN in fresh._single.ready or GREY_TWIN in fresh._slots[0].ready

    # a twin that fails when it runs hands its images to the colour model
    class Failing:
        def allocate_tensors(self):
            pass

        def set_tensor(self, index, value):
            raise RuntimeError("no kernel for this op")

    broken = InspectionRunner(a, a_out, batch=False, num_threads=1, single_threads=1,
                              grey=(b_grey, b_grey_out))
    broken._slots[0].interpreters[GREY_TWIN] = Failing()
    np.testing.assert_allclose(broken.run(colour, ["probs"])["probs"], ref, atol=1e-6)
    assert GREY_TWIN not in broken._slots[0].interpreters

    write_inspection(tmp_path, files, info)
    entry = info["formats"]["fp32"]
    assert entry["grey"]["test_accuracy"] == entry["test_accuracy"]   # grey test images alike
    (tmp_path / GREY_FILES["fp32"]).unlink()
    info = read_info(tmp_path)
    assert "grey" not in info["formats"]["fp32"]
    assert not open_runner(tmp_path, "fp32", info).has_grey


def test_a_twin_from_another_export_or_that_fails_to_convert_is_left_out(tmp_path, monkeypatch,
                                                                         caplog):
    """A grey entry whose score fingerprint is not the colour file's is dropped on reading; a
    twin whose conversion raises is recorded as not usable and the export goes on; a damaged
    colour file is the error, named, without a word about its twin."""
    import keras

    import training.inspection_export as ie
    from training.litert import (GREY_FILES, INSPECTION_INFO, ExportLoadError, open_runner,
                                 read_info)
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(5)
    model = build_ssdc_mininet("A", 6, 64, input_norm="standardize")
    x = images(4).astype(np.float32)
    model(x, training=True)
    files, info = ie.build_inspection(model, None, x, np.arange(4), formats_wanted=("fp32",))
    ie.write_inspection(tmp_path, files, info)
    raw = json.loads((tmp_path / INSPECTION_INFO).read_text())
    raw["formats"]["fp32"]["grey"]["score"] = {"usable": True, "digest": "another detector"}
    (tmp_path / INSPECTION_INFO).write_text(json.dumps(raw))
    assert "grey" not in read_info(tmp_path)["formats"]["fp32"]

    def fail(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(ie._GreyCheck, "export", fail)
    files, info = ie.build_inspection(model, None, x, np.arange(4), formats_wanted=("fp32",))
    assert info["formats"]["fp32"]["grey"] == {"usable": False,
                                               "reason": "RuntimeError: converter crashed"}
    assert GREY_FILES["fp32"] not in files and info["formats"]["fp32"]["usable"]

    ie.write_inspection(tmp_path, *ie.build_inspection(model, None, x, np.arange(4),
                                                       formats_wanted=("fp32",)))
    monkeypatch.undo()
    (tmp_path / "inspect_fp32.tflite").write_bytes(b"not a model")
    with caplog.at_level("WARNING"), pytest.raises(ExportLoadError, match="inspect_fp32.tflite"):
        open_runner(tmp_path, "fp32", read_info(tmp_path))
    assert "grey" not in caplog.text


def test_batches_and_single_images_agree(classifier):
    x = np.stack([classifier.prepare(texture(i % 6, 64, seed=i)) for i in range(7)])
    whole = classifier.classify(x)
    one = np.concatenate([classifier.classify(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(whole, one, atol=PROB_ATOL)


def test_the_stand_in_runs_on_litert_without_a_keras_model(classifier, stand_in_bundle):
    assert "LiteRT" in classifier.device and classifier.model is None
    kernel = np.load(stand_in_bundle / "classifier_kernel.npy")
    np.testing.assert_array_equal(classifier.classifier_weights, kernel)


def test_a_damaged_fp32_export_falls_back_to_the_keras_model(classifier, stand_in_bundle,
                                                             tmp_path, monkeypatch):
    """A half-copied inspect_fp32.tflite refused the whole bundle with a traceback, though its
    Keras model was whole: it runs on TensorFlow instead, with the same results, and says why."""
    import shutil

    from inspector import format_cache
    from inspector.engine import load_classifier

    monkeypatch.setattr(format_cache, "remember", lambda *a, **k: None)   # a fresh choice
    m = tmp_path / "m"
    shutil.copytree(stand_in_bundle, m)
    (m / "inspect_fp32.tflite").write_bytes((m / "inspect_fp32.tflite").read_bytes()[:1000])
    clf = load_classifier(m, measure=lambda fmt, runner: 1.0)
    assert "TensorFlow: its LiteRT export cannot be opened" in clf.device
    assert "inspect_fp32.tflite" in clf.device
    from inspector import runtime

    monkeypatch.setattr(runtime, "litert_available", lambda: False)
    keras_clf = load_classifier(stand_in_bundle)   # the whole bundle, on TensorFlow
    assert "TensorFlow" in keras_clf.device
    x = np.stack([classifier.prepare(texture(i, 64, seed=i)) for i in range(6)])
    np.testing.assert_allclose(clf.classify(x), keras_clf.classify(x), atol=PROB_ATOL)


def test_classify_is_thread_safe(classifier):
    from concurrent.futures import ThreadPoolExecutor

    batches = [np.stack([classifier.prepare(texture(i % 6, 64, seed=10 * b + i)) for i in range(b + 1)])
               for b in range(6)]
    expected = [classifier.classify(b) for b in batches]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(classifier.classify, batches * 3))
    for e, g in zip(expected * 3, got):
        np.testing.assert_allclose(g, e, atol=PROB_ATOL)


def test_side_by_side_interpreters_give_what_one_gives(stand_in_bundle):
    """The export runs one image per invoke; a runner given n threads runs n single-threaded
    interpreters on shares of a batch, and concurrent calls each get their own images' outputs."""
    from concurrent.futures import ThreadPoolExecutor

    from training.litert import open_runner, read_info

    info = read_info(stand_in_bundle)
    assert info["formats"]["fp32"]["batch"] is False
    one = open_runner(stand_in_bundle, "fp32", info, num_threads=1)
    three = open_runner(stand_in_bundle, "fp32", info, num_threads=3)
    assert (one.interpreters, three.interpreters) == (1, 3)
    x = images(7, size=info["input_size"]).astype(np.float32)
    ref = one.run(x)
    got = three.run(x)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-6, err_msg=k)
    parts = [x[i:] for i in range(len(x))] * 2
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda b: three.run(b, ["probs"])["probs"], parts))
    for b, o in zip(parts, outs):
        np.testing.assert_allclose(o, ref["probs"][len(x) - len(b):], atol=1e-6)


def test_one_image_alone_runs_on_every_core(stand_in_bundle):
    """A single image (the camera's frame, the large view's image) is a matter of latency: it runs
    on one more interpreter with every core's thread, giving what a batch interpreter gives; a
    runner given one thread for it keeps none."""
    from training.litert import INSPECT, open_runner, read_info

    info = read_info(stand_in_bundle)
    lat = open_runner(stand_in_bundle, "fp32", info, num_threads=1, single_threads=3)
    plain = open_runner(stand_in_bundle, "fp32", info, num_threads=1, single_threads=1)
    assert (lat.single_threads, lat.interpreters) == (3, 1)
    assert (plain.single_threads, plain._single) == (1, None)
    x = images(3, size=info["input_size"]).astype(np.float32)
    batch = plain.run(x)
    for i in range(len(x)):
        alone = lat.run(x[i:i + 1])
        # the single-image interpreters ran it (the inspection model or its grey twin), no
        # batch interpreter
        assert lat._single.n == 1 or (INSPECT, True) in lat._single.ready
        assert lat._slots[0].n == 0 and not lat._slots[0].ready
        for k in batch:
            np.testing.assert_allclose(alone[k], batch[k][i:i + 1], atol=1e-5, err_msg=k)


def test_a_call_not_spread_runs_on_one_free_interpreter(stand_in_bundle):
    """``run(..., spread=False)`` takes one batch interpreter no other thread runs (waiting for
    one when all are busy) and gives what a spread batch gives."""
    import threading

    from training.litert import open_runner, read_info

    info = read_info(stand_in_bundle)
    runner = open_runner(stand_in_bundle, "fp32", info, num_threads=2, single_threads=1)
    x = images(5, size=info["input_size"])
    ref = runner.run(x, ["probs"])["probs"]
    np.testing.assert_allclose(runner.run(x, ["probs"], spread=False)["probs"], ref, atol=1e-6)
    held = [runner._take_slot(), runner._take_slot()]   # both busy
    assert held[0] is not held[1]
    done = threading.Event()
    got = {}

    def call():
        got.update(runner.run(x[:2], ["probs"], spread=False))
        done.set()

    t = threading.Thread(target=call)
    t.start()
    assert not done.wait(0.2)        # waits for a free interpreter
    runner._give_back(held[1])
    assert done.wait(30)
    t.join()
    np.testing.assert_allclose(got["probs"], ref[:2], atol=1e-6)
    runner._give_back(held[0])
    assert not any(s.lock.locked() for s in runner._slots)


def _with_int8(stand_in_bundle, tmp_path, loss_points):
    """A copy of the stand-in bundle whose export claims fp16 and int8 models (copies of the
    fp32 file), int8 with a test accuracy ``loss_points`` below fp32's."""
    out = tmp_path / "bundle"
    shutil.copytree(stand_in_bundle, out)
    info = json.loads((out / "inspection.json").read_text())
    formats = info["formats"]
    formats["fp32"]["test_accuracy"] = 0.9
    for fmt in ("fp16", "int8"):
        shutil.copy(out / "inspect_fp32.tflite", out / f"inspect_{fmt}.tflite")
    formats["fp16"] = dict(formats["fp32"], file="inspect_fp16.tflite")
    formats["int8"] = dict(formats["fp32"], file="inspect_int8.tflite",
                           test_accuracy=0.9 - loss_points / 100)
    (out / "inspection.json").write_text(json.dumps(info))
    return out


STAND_IN_TIMES = {"fp32": 0.004, "fp16": 0.003, "int8": 0.001}


def test_the_fastest_format_is_chosen(stand_in_bundle, tmp_path):
    from inspector.engine import load_classifier

    clf = load_classifier(_with_int8(stand_in_bundle, tmp_path, 0.4),
                          measure=lambda fmt, runner: STAND_IN_TIMES[fmt])
    assert clf.device.startswith("CPU, LiteRT int8 (fastest here: fp32 4.0 ms, fp16 3.0 ms, "
                                 "int8 1.0 ms")


class _StubRunner:
    """A runner whose invoke busy-waits: ``seconds``, the first ``first``; ``clock`` (shared
    by the stubs of one test) slows every invoke ``slow`` times while its count is under
    ``slow_calls``: a slow moment of the machine."""
    input_shape = (8, 8, 3)

    def __init__(self, seconds, first=None, clock=None):
        self.seconds, self.first, self.calls = seconds, first, 0
        self.clock = clock if clock is not None else {"calls": 0, "slow_calls": 0, "slow": 1}

    def run(self, x, keys):
        self.calls += 1
        self.clock["calls"] += 1
        wait = self.first if self.calls == 1 and self.first is not None else self.seconds
        if self.clock["calls"] <= self.clock["slow_calls"]:
            wait *= self.clock["slow"]
        t = time.perf_counter()
        while time.perf_counter() - t < wait:
            pass


def test_formats_are_timed_on_a_grey_and_a_colour_image():
    """fp32 and fp16 run grey images on their twins, int8 has none: each format is timed on
    one image of each kind, both with texture (not blank)."""
    from inspector.runtime import time_formats
    from training.litert import grey_images

    seen = []

    class Recording(_StubRunner):
        def run(self, x, keys):
            seen.append(np.array(x))
            super().run(x, keys)

    seconds, failed = time_formats({"fp32": Recording(0.0005)})
    assert not failed and seconds["fp32"] > 0
    kinds = {bool(grey_images(x)[0]) for x in seen}
    assert kinds == {True, False}
    assert all(x.std() > 10 for x in seen)


def test_a_clearly_slower_format_is_timed_by_its_second_invoke_only():
    """A format whose first timed invoke (after the warm-up) takes SLOWER times the best of its
    turn is not timed further (model ready sooner); a format whose slow warm-up only prepares
    the graph is timed on and can win."""
    from inspector.runtime import SLOWER, time_formats

    fast = 0.004 / (SLOWER + 1)
    slow = _StubRunner(0.02)   # 30x the others: dropped however busy the machine is
    cold_start = _StubRunner(fast / 2, first=0.02)   # a warm-up 20x the later invokes
    seconds, failed = time_formats({"fp32": _StubRunner(fast), "fp16": cold_start, "int8": slow})
    assert not failed
    # each invoke of the timing is a grey and a colour image: the warm-up pair and one timed pair
    assert slow.calls == 4 and seconds["int8"] >= 0.02
    assert cold_start.calls > 4 and seconds["fp16"] < seconds["fp32"]


def test_a_format_twice_as_slow_after_two_turns_is_timed_no_further(monkeypatch):
    """A format over SLOWER_AFTER_TWO times the fastest in its best of two timed invokes is not
    timed on; the others are, for MIN_TURNS turns at least; a runner without a file for grey
    images is timed on one image (its grey and colour images take the same graph). On a clock
    that only the runners move: the same on any machine, however busy."""
    from inspector import runtime
    from inspector.runtime import MIN_TURNS, SLOWER, SLOWER_AFTER_TWO, time_formats

    clock = [0.0]

    class Clock:
        @staticmethod
        def perf_counter():
            return clock[0]

    class Ticking:
        input_shape = (8, 8, 3)

        def __init__(self, seconds, grey_files=True):
            self.seconds, self.grey_files, self.calls = seconds, grey_files, 0

        def run(self, x, keys):
            self.calls += 1
            clock[0] += self.seconds

    monkeypatch.setattr(runtime, "time", Clock)
    monkeypatch.setattr(runtime, "MEASURE_BUDGET_S", 0.0)   # the fewest turns allowed
    fast = 0.001
    slow = Ticking(fast * (SLOWER_AFTER_TWO + SLOWER) / 2, grey_files=False)   # one turn kept
    fp16 = Ticking(fast * 1.2)
    seconds, failed = time_formats({"fp32": Ticking(fast), "fp16": fp16, "int8": slow})
    assert not failed and min(seconds, key=seconds.get) == "fp32"
    assert seconds["int8"] == pytest.approx(slow.seconds)   # per image, as the others
    assert slow.calls == 1 + 2                # one image: the warm-up, two timed turns
    assert fp16.calls == 2 + 2 * MIN_TURNS    # a warm-up pair, MIN_TURNS timed pairs


def test_formats_are_timed_in_turns_so_a_slow_moment_does_not_choose(monkeypatch):
    """The machine is three times slower for the first 22 invokes: timed one after another (up
    to 11 invokes each), fp32 and fp16 would be timed in the slow moment only and int8 chosen;
    timed in turns, fp32, twice as fast as int8, is the fastest. A format that fails to run is
    reported, not chosen."""
    from inspector import runtime
    from inspector.runtime import time_formats

    # every turn, however busy the machine; turns enough that not every fast one of fp32 can
    # be delayed past fp16's (it failed once in 15 runs with 10 turns, next to a training)
    monkeypatch.setattr(runtime, "MEASURE_BUDGET_S", 10.0)
    monkeypatch.setattr(runtime, "MEASURE_MAX_RUNS", 40)
    clock = {"calls": 0, "slow_calls": 22, "slow": 3}
    runners = {"fp32": _StubRunner(0.001, clock=clock), "fp16": _StubRunner(0.0012, clock=clock),
               "int8": _StubRunner(0.002, clock=clock)}

    class Broken(_StubRunner):
        def run(self, x, keys):
            raise RuntimeError("no kernel for this op")

    runners["int16"] = Broken(0.0)
    seconds, failed = time_formats(runners)
    assert min(seconds, key=seconds.get) == "fp32"
    assert set(failed) == {"int16"} and "int16" not in seconds


def test_int8_is_left_out_when_it_loses_accuracy(stand_in_bundle, tmp_path):
    from inspector.engine import load_classifier

    clf = load_classifier(_with_int8(stand_in_bundle, tmp_path, 0.6),
                          measure=lambda fmt, runner: STAND_IN_TIMES[fmt])
    assert clf.device.startswith("CPU, LiteRT fp16 ")
    assert "int8 not used: test accuracy 0.6 points below fp32" in clf.device


def test_int8_without_a_recorded_accuracy_is_left_out(stand_in_bundle, tmp_path):
    from inspector.runtime import excluded_formats

    info = json.loads((_with_int8(stand_in_bundle, tmp_path, 0.0) / "inspection.json").read_text())
    del info["formats"]["int8"]["test_accuracy"]
    assert excluded_formats(info) == {"int8": "no test accuracy recorded"}


def test_a_format_that_failed_its_export_check_is_left_out():
    from inspector.runtime import excluded_formats

    info = {"formats": {"fp32": {"test_accuracy": 1.0, "usable": True},
                        "fp16": {"usable": False, "reason": "outputs differ from Keras"}}}
    assert excluded_formats(info) == {"fp16": "outputs differ from Keras"}


def test_the_real_measurement_is_short(stand_in_bundle):
    import time

    from inspector.runtime import choose_format
    from training.litert import read_info

    t = time.perf_counter()
    choice = choose_format(stand_in_bundle, read_info(stand_in_bundle))
    assert time.perf_counter() - t < 1.0
    assert set(choice.seconds) == {"fp32"} and choice.fmt == "fp32"


def test_a_bundle_without_the_export_runs_on_tensorflow(stand_in_bundle, classifier, tmp_path):
    from inspector.engine import load_classifier

    out = tmp_path / "old"
    shutil.copytree(stand_in_bundle, out)
    (out / "inspection.json").unlink()
    old = load_classifier(out)
    assert "TensorFlow" in old.device and "no LiteRT export" in old.device
    assert old.model is not None
    x = np.stack([classifier.prepare(texture(i % 6, 64, seed=i)) for i in range(5)])
    # The stand-in's classes differ in the fifth digit of its features, so the two runtimes'
    # rounding moves its probabilities by up to what the export measured (a trained model's
    # by ~1e-6: see test_inspection_export_gives_what_keras_gives).
    measured = json.loads((stand_in_bundle / "inspection.json").read_text())["formats"]["fp32"]
    p_old, p_new = old.classify(x), classifier.classify(x)
    np.testing.assert_allclose(p_old, p_new, atol=PROB_ATOL + 2 * measured["max_prob_diff"])
    assert np.array_equal(p_old.argmax(1), p_new.argmax(1))
    a, b = old.inspect(x[2]), classifier.inspect(x[2])
    np.testing.assert_allclose(a.features, b.features, atol=OUTPUT_ATOL)
    assert [s.name for s in a.se_blocks] == [s.name for s in b.se_blocks]


def test_a_gpu_that_tensorflow_sees_gets_the_tensorflow_path(stand_in_bundle, monkeypatch):
    from inspector import runtime
    from inspector.engine import load_classifier

    monkeypatch.setattr(runtime, "gpu_hint", lambda: True)
    monkeypatch.setattr(runtime, "tensorflow_gpu", lambda: "Test GPU 9000")
    clf = load_classifier(stand_in_bundle)
    assert clf.device == "Test GPU 9000, TensorFlow" and clf.model is not None
    monkeypatch.setattr(runtime, "tensorflow_gpu", lambda: None)   # a driver, but no GPU for TF
    assert "LiteRT" in load_classifier(stand_in_bundle).device


def test_the_gpu_hint_needs_no_tensorflow(monkeypatch):
    from inspector import runtime

    monkeypatch.delenv(runtime.GPU_ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(runtime.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    assert runtime.gpu_hint()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not runtime.gpu_hint()
    monkeypatch.setenv(runtime.GPU_ENV, "1")
    assert runtime.gpu_hint()
    monkeypatch.setenv(runtime.GPU_ENV, "0")
    assert not runtime.gpu_hint()


def test_review_camera_and_classify_never_import_tensorflow(stand_in_bundle, tmp_path):
    folder = make_dataset(tmp_path / "images", CLASSES[:2], per_class=3)
    script = textwrap.dedent(f"""
        import sys
        import inspector.app, inspector.batch, inspector.session, inspector.camera, inspector.engine
        import inspector.tiles, inspector.report, inspector.library
        import inspector.gui.main_window.window, inspector.gui.camera_window
        import training.bundle, training.images, training.detect, training.calibration
        loaded = [m for m in ("tensorflow", "keras") if m in sys.modules]
        assert not loaded, f"imported: {{loaded}}"
        from inspector import batch
        rc = batch.main([{str(folder)!r}, "--model", {str(stand_in_bundle)!r},
                         "--out", {str(tmp_path / "out.csv")!r}])
        assert rc == 0, rc
        loaded = [m for m in ("tensorflow", "keras") if m in sys.modules]
        assert not loaded, f"classify imported: {{loaded}}"
        print("no tensorflow")
    """)
    env = {k: v for k, v in __import__("os").environ.items()}
    env.update(QT_QPA_PLATFORM="offscreen", STEEL_INSPECTOR_GPU="0")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no tensorflow" in r.stdout
    assert "LiteRT" in r.stderr   # the log says which runtime and why
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 7


def test_native_banners_are_dropped_and_everything_else_passes(tmp_path):
    """A child process whose native stderr writes go through ``banners_dropped``."""
    import subprocess
    import sys

    code = ("import os\nfrom training.litert import banners_dropped, NATIVE_BANNERS\n"
            "with banners_dropped():\n"
            "    os.write(2, (NATIVE_BANNERS[0] + '\\n').encode())\n"
            "    os.write(2, b'ERROR: a real problem\\n')\n"
            "    os.write(2, (NATIVE_BANNERS[0] + '\\n').encode())\n"
            "os.write(2, b'after\\n')\n")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "ERROR: a real problem\nafter\n"


def test_the_format_choice_is_remembered_per_machine_and_export(stand_in_bundle, monkeypatch):
    """The first two loads time the formats; once they agree, the next opens only the
    remembered format and says when it was timed; another export, or a request to
    re-measure, times again."""
    from inspector import format_cache, runtime
    from training.litert import read_info

    monkeypatch.delenv(format_cache.REMEASURE_ENV, raising=False)
    timed = []
    real = runtime.time_formats
    monkeypatch.setattr(runtime, "time_formats", lambda *a, **k: timed.append(1) or real(*a, **k))
    info = read_info(stand_in_bundle)
    first = runtime.choose_format(stand_in_bundle, info)
    assert timed == [1] and first.measured is None and "timed 20" not in first.reason
    assert format_cache.cache_file().is_file()
    second = runtime.choose_format(stand_in_bundle, info)   # one timing alone decides nothing
    assert timed == [1, 1] and second.fmt == first.fmt
    again = runtime.choose_format(stand_in_bundle, info)
    assert timed == [1, 1], "the remembered choice was timed again"
    assert again.fmt == first.fmt and again.seconds == second.seconds
    assert again.measured is not None and ", timed 20" in again.reason
    assert again.runner.run(np.zeros((1, 64, 64, 3), np.uint8), ["probs"])["probs"].shape == (1, 6)
    other = dict(info, check_images=int(info.get("check_images", 0)) + 1)   # another export
    runtime.choose_format(stand_in_bundle, other)
    assert timed == [1, 1, 1]
    monkeypatch.setenv(format_cache.REMEASURE_ENV, "1")
    runtime.choose_format(stand_in_bundle, info)
    assert timed == [1, 1, 1, 1]


def test_a_remembered_format_that_no_longer_runs_is_timed_again(stand_in_bundle, monkeypatch):
    from inspector import format_cache, runtime
    from training.litert import read_info

    monkeypatch.delenv(format_cache.REMEASURE_ENV, raising=False)
    info = read_info(stand_in_bundle)
    key = format_cache.choice_key(info, None, None)
    for _ in range(format_cache.AGREEING_LOADS):
        format_cache.remember(key, "fp32", {"fp32": 0.001})

    class Failing:
        input_shape = (64, 64, 3)

        def run(self, x, keys):
            raise RuntimeError("the interpreter failed")

    opened = []
    real_open = runtime.open_runner
    monkeypatch.setattr(runtime, "open_runner", lambda *a: opened.append(a[1]) or (
        Failing() if len(opened) == 1 else real_open(*a)))
    timed = []
    real = runtime.time_formats
    monkeypatch.setattr(runtime, "time_formats", lambda *a, **k: timed.append(1) or real(*a, **k))
    choice = runtime.choose_format(stand_in_bundle, info)
    assert opened == ["fp32", "fp32"] and timed == [1]
    assert choice.fmt == "fp32" and choice.measured is None
    assert choice.seconds["fp32"] != 0.001   # measured anew, and remembered so
    assert json.loads(format_cache.cache_file().read_text())[key]["seconds"] == choice.seconds


def test_the_format_cache_forgets_old_and_broken_entries(monkeypatch, tmp_path):
    from inspector import format_cache

    monkeypatch.delenv(format_cache.REMEASURE_ENV, raising=False)
    format_cache.remember("k", "fp32", {"fp32": 0.001, "fp16": 0.002}, now=990.0)
    format_cache.remember("k", "fp16", {"fp32": 0.002, "fp16": 0.001}, now=995.0)
    assert format_cache.recall("k", now=1000.0) is None   # the two loads disagreed
    format_cache.remember("k", "fp16", {"fp32": 0.002, "fp16": 0.001}, now=1000.0)
    assert format_cache.recall("k", now=1000.0 + 60)["format"] == "fp16"
    assert format_cache.recall("k", now=1000.0 + format_cache.MAX_AGE_S + 1) is None
    assert format_cache.recall("k", now=900.0) is None   # measured in the future: a clock change
    assert format_cache.recall("other", now=1000.0) is None
    # two formats within TIE of each other, the fastest by a hair in turn: the first stands
    tied = 1 + format_cache.TIE / 2
    format_cache.remember("tie", "fp32", {"fp32": 0.0015, "fp16": 0.0015 * tied}, now=1000.0)
    assert format_cache.recall("tie", now=1000.0) is None   # one load so far
    format_cache.remember("tie", "fp16", {"fp32": 0.0015 * tied, "fp16": 0.0015}, now=1000.0)
    assert format_cache.recall("tie", now=1000.0)["format"] == "fp32"
    for n in range(format_cache.MAX_ENTRIES + 5):
        format_cache.remember(f"e{n}", "fp32", {"fp32": 0.001}, now=2000.0 + n)
    kept = json.loads(format_cache.cache_file().read_text())
    assert len(kept) == format_cache.MAX_ENTRIES and "e0" not in kept and "k" not in kept
    good = {"format": "fp32", "seconds": {"fp32": 1}, "measured": 1e9, "loads": 2}
    for text in ("{not json", "[1, 2]", "[" * 100_000 + "]" * 100_000,
                 json.dumps({"k": {"format": "fp32"}}),
                 json.dumps({"k": dict(good, seconds={"fp16": 1})}),
                 json.dumps({"k": dict(good, measured=10 ** 400)}),
                 json.dumps({"k": dict(good, loads="two")})):
        format_cache.cache_file().write_text(text)
        assert format_cache.recall("k", now=1e9) is None
        format_cache.remember("k2", "fp32", {"fp32": 0.001})   # writes over it, raises nothing
    format_cache.cache_file().write_text(json.dumps({"k": good}))
    assert format_cache.recall("k", now=1e9)["format"] == "fp32"
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("STEEL_INSPECTOR_HOME", str(blocked / "home"))   # a file in the way
    format_cache.remember("k", "fp32", {"fp32": 0.001})   # logged, not raised
    assert format_cache.recall("k") is None


def test_a_format_whose_conversion_fails_is_left_out_but_fp32_is_not(monkeypatch):
    """fp16 (or int8) that the converter refuses is recorded as unusable and the export goes
    on; fp32 is what the app falls back to, so its failure is the export's."""
    import keras

    from training import inspection_export as ie
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(6)
    model = build_ssdc_mininet("A", 6, 64, input_norm="standardize")
    x = images(4).astype(np.float32)
    model(x, training=True)
    real, refused = ie.convert_inspection, {"fp16"}

    def refuses(im, size, fmt, *args):
        if fmt in refused:
            raise RuntimeError(f"converter: {fmt} is not supported here\nstack")
        return real(im, size, fmt, *args)

    monkeypatch.setattr(ie, "convert_inspection", refuses)
    files, info = ie.build_inspection(model, None, x, np.arange(4), formats_wanted=("fp32", "fp16"))
    assert info["formats"]["fp32"]["usable"] and "inspect_fp32.tflite" in files
    assert info["formats"]["fp16"] == {
        "usable": False,
        "reason": "the conversion failed (RuntimeError: converter: fp16 is not supported here)"}
    refused = {"fp32"}
    with pytest.raises(RuntimeError, match="fp32 is not supported"):
        ie.build_inspection(model, None, x, np.arange(4), formats_wanted=("fp32",))


def test_ctrl_c_while_the_inspection_files_are_written_waits_until_all_are(tmp_path, monkeypatch):
    """Stopped half-way, new LiteRT files sat beside the old description of their tensors."""
    import os
    import signal

    from training import bundle
    from training.inspection_export import INSPECTION_INFO, write_inspection

    real = bundle.replace_file_atomic
    calls = []

    def ctrl_c_on_the_first(path, data):
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(bundle, "replace_file_atomic", ctrl_c_on_the_first)
    from training.cancel import ends_as_interrupts, interrupted

    with ends_as_interrupts():
        try:
            write_inspection(tmp_path, {"inspect_fp32.tflite": b"a", "verdict_fp32.tflite": b"b"},
                             {"formats": {}})
        except KeyboardInterrupt:   # (not let through: it would end the whole test run)
            pytest.fail("Ctrl+C stopped the inspection export half-way")
        assert interrupted() == signal.SIGINT   # not lost: remembered for what comes after
    assert (tmp_path / "verdict_fp32.tflite").read_bytes() == b"b"
    assert (tmp_path / INSPECTION_INFO).is_file()
