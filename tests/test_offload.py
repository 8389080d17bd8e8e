"""inspector.offload: the window's background classification in a child process gives what the
window's own classifier gives, follows the unknown threshold in use, and hands its work back to
threads when the child cannot run."""
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from inspector.batch import WorkQueue
from inspector.offload import ENV_SWITCH, ChildClassifier, ChildFailed, ProcessSpec, process_spec
from synth import foreign_image, texture


def _images(folder: Path, n: int = 10) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = texture(i % 6, 64, seed=i) if i % 3 else foreign_image(64, seed=i)
        p = folder / f"img{i:02d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    bad = folder / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return paths + [bad]


def _serve(spec: ProcessSpec, paths: list[Path], accept) -> dict:
    """The child's results for ``paths``; ``accept``: the share in use (a number, or a function
    the parent asks each time)."""
    queue = WorkQueue()
    queue.add((i, p) for i, p in enumerate(paths))
    got: dict = {}
    idle = threading.Event()
    child = ChildClassifier(spec)
    try:
        child.serve(queue, lambda rs: got.update({r.key: r for r in rs}),
                    lambda: len(got) == len(paths) and idle.is_set(),
                    accept if callable(accept) else (lambda: accept), idle.set)
        if sys.platform.startswith("linux") and spec.nice is not None:
            # every thread of the child (its LiteRT and decoding threads, numpy's pool) runs
            # below the window
            tids = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
            assert len(tids) > 1
            assert min(os.getpriority(os.PRIO_PROCESS, t) for t in tids) == spec.nice
    finally:
        child.close()
    assert not child._proc.is_alive()
    return got


def test_the_child_gives_what_the_window_classifier_gives(unknown_classifier, tmp_path):
    clf = unknown_classifier
    paths = _images(tmp_path / "imgs")
    spec = process_spec(clf)
    assert spec is not None and spec.fmt == clf.runtime_format
    got = _serve(spec, paths, clf.accept)
    assert len(got) == len(paths)
    bad = got[len(paths) - 1]
    assert bad.probs is None and bad.error
    good = [clf.load(p) for p in paths[:-1]]
    want = clf.judge(np.stack(good))
    probs = np.stack([got[i].probs for i in range(len(good))])
    np.testing.assert_allclose(probs, want.probs, atol=2e-3)
    assert np.array_equal(probs.argmax(1), want.probs.argmax(1))
    scores = np.array([got[i].unknown_score for i in range(len(good))])
    np.testing.assert_allclose(scores, want.unknown_scores, rtol=1e-3, atol=1e-3)


def test_the_child_follows_the_unknown_threshold_in_use(unknown_classifier, tmp_path):
    """The threshold is a setting: what the parent's classifier accepts now, not what it
    accepted when the child started, decides ``known``."""
    clf = unknown_classifier
    paths = _images(tmp_path / "imgs")[:-1]
    spec = process_spec(clf)
    strict = 0.5
    got = _serve(spec, paths, strict)
    images = np.stack([clf.load(p) for p in paths])
    at_start = [bool(k) for k in clf.judge(images).known]   # the share the child started with
    clf.set_accept(strict)
    want = [bool(k) for k in clf.judge(images).known]
    assert [got[i].known for i in range(len(paths))] == want
    assert want != at_start   # the test means something: some images flip at 50%


def test_a_threshold_changed_while_parts_are_judged_applies_to_them(unknown_classifier,
                                                                     tmp_path):
    """The child judges parts of the next batches in its pool threads while it takes more work;
    when the threshold changes with a later batch, the results it sends are judged at the
    threshold they are sent with (the window compares only that)."""
    import dataclasses

    clf = unknown_classifier
    paths = _images(tmp_path / "imgs")[:-1]
    spec = dataclasses.replace(process_spec(clf), batch_size=3)
    calls = []

    def accept():   # the first batch at the child's start share, everything after at 50%
        calls.append(1)
        if len(calls) == 2:
            # the answer to the child's second request for work is held back a moment, so
            # that the first batch is judged before the change (the child's pool threads give
            # no signal across the process boundary to wait for)
            time.sleep(1.0)
        return clf.accept if len(calls) == 1 else 0.5

    got = _serve(spec, paths, accept)
    images = np.stack([clf.load(p) for p in paths])
    at_start = [bool(k) for k in clf.judge(images[:3]).known]
    clf.set_accept(0.5)
    want = [bool(k) for k in clf.judge(images).known]
    assert [got[i].known for i in range(len(paths))] == want
    assert want[:3] != at_start   # the test means something: the first batch has a flip


def test_a_child_that_cannot_load_the_model_says_why(classifier, tmp_path):
    _child_fails(ProcessSpec(str(tmp_path / "no-such-bundle"), "fp32", 0.95),
                 "cannot load the model")


def _child_fails(spec: ProcessSpec, match: str) -> None:
    """The child started with ``spec`` reports that it cannot classify, saying ``match``."""
    child = ChildClassifier(spec)
    try:
        with pytest.raises(ChildFailed, match=match):
            child.serve(WorkQueue(), lambda rs: None, lambda: False, lambda: 0.95)
    finally:
        child.close()


def test_a_child_refuses_a_model_replaced_since_the_window_loaded_it(classifier, tmp_path):
    """The child loads the bundle again from its folder: one replaced in the meantime (a
    training run given the same --out, a library version number given again) gave another
    model's probabilities under the window's class names."""
    from dataclasses import replace

    from inspector.offload import model_identity

    spec = process_spec(classifier)
    assert spec.identity == model_identity(classifier)
    # notes a command adds to an unchanged model's card (robustness, exports, history) do not
    # make it another model
    noted = dict(classifier.card, robustness={"keras": {}}, history=[{"step": "export"}])
    assert model_identity(SimpleNamespace(class_names=list(classifier.class_names), card=noted,
                                          detector=getattr(classifier, "detector", None))) \
        == spec.identity
    other = replace(spec, identity=model_identity(SimpleNamespace(
        class_names=list(classifier.class_names)[::-1], card=classifier.card)))
    _child_fails(other, "has changed since the window loaded it")


def test_only_a_litert_classifier_from_a_bundle_goes_to_a_child(classifier, monkeypatch):
    class StandIn:
        class_names = ["a", "b"]
        input_size = 64

    assert process_spec(StandIn()) is None
    assert process_spec(classifier) is not None
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert process_spec(classifier) is None


def test_the_child_below_the_window_takes_every_core(classifier, monkeypatch):
    """Like ``inspector classify``: an interpreter per core, the window's thread first anyway;
    where its priority cannot be lowered, the window's own thread count."""
    import inspector.offload as offload
    from training.litert import available_cores

    monkeypatch.setattr(offload, "child_nice", lambda: 10)
    assert process_spec(classifier).num_threads == max(available_cores(),
                                                       classifier.num_threads or 0)
    monkeypatch.setattr(offload, "child_nice", lambda: None)
    assert process_spec(classifier).num_threads == classifier.num_threads


def _run_worker(qtbot, spec: ProcessSpec, classifier, paths: list[Path], on_results) -> object:
    """Runs a ProcessClassifyWorker over ``paths`` until ``on_results`` has seen every key."""
    from inspector.gui.workers import ProcessClassifyWorker

    w = ProcessClassifyWorker(classifier, spec)
    seen: set = set()

    def results(rs):
        seen.update(r.key for r in rs)
        on_results(w, rs)

    w.results.connect(results)
    w.queue.add((i, p) for i, p in enumerate(paths))
    w.start()
    try:
        qtbot.waitUntil(lambda: len(seen) == len(paths), timeout=60000)
    finally:
        w.stop()
        w.wait()
    return w


def test_the_worker_falls_back_to_threads_and_loses_nothing(qtbot, qapp, classifier, tmp_path):
    """A child that fails (here: a bundle it cannot load) hands the work back; the worker then
    classifies every image in threads, as before."""
    from dataclasses import replace

    paths = _images(tmp_path / "imgs", 6)
    spec = replace(process_spec(classifier), bundle=str(tmp_path / "gone"))
    got = {}
    w = _run_worker(qtbot, spec, classifier, paths,
                    lambda w, rs: got.update({r.key: r for r in rs}))
    assert w.child_error and "cannot load the model" in w.child_error
    assert all(got[i].probs is not None for i in range(len(paths) - 1))
    assert got[len(paths) - 1].error


def test_a_child_that_dies_midway_hands_back_what_it_had(qtbot, qapp, classifier, tmp_path):
    """Killed after its first results: what it had taken and not returned is classified in
    threads, every image exactly once."""
    paths = _images(tmp_path / "imgs", 60)
    counts: dict = {}

    def on_results(w, rs):
        for r in rs:
            counts[r.key] = counts.get(r.key, 0) + 1
        if w.child is not None and w.child._proc.is_alive():
            w.child._proc.kill()

    w = _run_worker(qtbot, process_spec(classifier), classifier, paths, on_results)
    assert w.child_error and "ended" in w.child_error
    assert set(counts) == set(range(len(paths))) and set(counts.values()) == {1}


def test_the_window_classifies_in_a_child_and_stops_it(qtbot, classifier, tmp_path):
    from inspector.gui.main_window import MainWindow
    from inspector.gui.workers import ProcessClassifyWorker

    paths = _images(tmp_path / "imgs", 8)
    w = MainWindow(classifier=classifier)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.classification_done, timeout=60000):
        w.open_folder(tmp_path / "imgs")
    worker = w.background._worker
    assert isinstance(worker, ProcessClassifyWorker) and worker.child_error is None
    assert sum(it.probs is not None for it in w.session.items) == len(paths) - 1
    w.close()
    assert not worker.child._proc.is_alive() and worker.child._proc.exitcode is not None


def test_a_folder_opened_again_comes_from_the_result_cache(qtbot, classifier, tmp_path):
    """The second window on the same folder and model reads the results the first one kept
    (inspector.result_cache); the unreadable file is read again."""
    from inspector.gui.main_window import MainWindow

    paths = _images(tmp_path / "imgs", 8)
    got = []
    for _ in range(2):
        w = MainWindow(classifier=classifier)
        qtbot.addWidget(w)
        with qtbot.waitSignal(w.classification_done, timeout=60000):
            w.open_folder(tmp_path / "imgs")
        cached = w.background._worker.cached
        got.append(([None if it.probs is None else it.probs.copy() for it in w.session.items],
                    cached.cache.hits, cached.misses))
        w.close()
    (first, hits1, misses1), (again, hits2, misses2) = got
    assert (hits1, misses1) == (0, len(paths))
    assert (hits2, misses2) == (len(paths) - 1, 1)
    for a, b in zip(first, again):
        assert (a is None and b is None) or np.array_equal(a, b)
