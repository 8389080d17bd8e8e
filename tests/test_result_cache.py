"""inspector.result_cache: results kept between sessions, reused only for the same file, model
and tile settings."""
import os
import sqlite3
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fake_tiles import BrightnessClassifier, write_large
from inspector import result_cache
from inspector.batch import WorkQueue, classify_stream
from inspector.result_cache import CachedQueue, ResultCache, model_key
from inspector.tiles import TileSettings

TILING = TileSettings(size=100, overlap=0.0)


class Counting(BrightnessClassifier):
    """The brightness stand-in with a bundle folder (what the cache keys a model by)."""

    def __init__(self, bundle: Path):
        super().__init__()
        self.bundle = types.SimpleNamespace(path=bundle)

    @property
    def images_judged(self) -> int:
        return sum(self.calls)


@pytest.fixture
def bundle(tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "model_card.json").write_text("{}")
    return folder


def images(folder: Path, n: int = 6) -> list[Path]:
    folder.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(np.full((40, 40), 30 + 40 * i, np.uint8)).save(p)
        out.append(p)
    out.append(write_large(folder / "large.png", width=400, height=300,
                           patch=(250, 150, 60, 60)))   # tiled
    return out


def run(clf, paths, tiling=TILING, threshold=lambda: 0.5):
    """Classifies ``paths`` through the cache as the window's worker does; the results by key."""
    queue = WorkQueue()
    queue.add(enumerate(paths))
    cache = ResultCache(model_key(clf, tiling), clf.class_names)
    got = {}

    def emit(results):
        got.update((r.key, r) for r in results)

    cached = CachedQueue(queue, cache, emit, threshold)
    classify_stream(clf, cached.take, lambda rs: emit(cached.stored(rs)), batch_size=4,
                    tiling=tiling)
    cache.close()
    return got


def same(a, b):
    assert a.path == b.path and a.error == b.error and a.known == b.known
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.unknown_score == b.unknown_score and a.padding == b.padding
    assert (a.tiles is None) == (b.tiles is None)
    if a.tiles is not None:
        for name in ("tiles", "grid", "shape", "overlap", "winner", "class_names"):
            assert getattr(a.tiles, name) == getattr(b.tiles, name), name
        for name in ("probs", "unknown_scores", "known", "padding", "tile_scores"):
            x, y = getattr(a.tiles, name), getattr(b.tiles, name)
            assert (x is None) == (y is None), name
            if x is not None:
                np.testing.assert_array_equal(x, y)
                assert np.asarray(x).dtype == np.asarray(y).dtype


def test_a_folder_opened_again_is_not_classified_again(tmp_path, bundle):
    paths = images(tmp_path / "imgs")
    first_clf = Counting(bundle)
    first = run(first_clf, paths)
    assert first_clf.images_judged > len(paths)    # the large image's tiles besides the rest
    assert first[len(paths) - 1].tiles is not None
    again_clf = Counting(bundle)
    again = run(again_clf, paths)
    assert again_clf.images_judged == 0
    assert sorted(again) == sorted(first)
    for k in first:
        same(first[k], again[k])


def test_a_changed_file_model_or_tiling_is_classified_again(tmp_path, bundle):
    paths = images(tmp_path / "imgs")
    run(Counting(bundle), paths)
    # the file changed: written anew (another size and time)
    Image.fromarray(np.full((50, 50), 200, np.uint8)).save(paths[0])
    clf = Counting(bundle)
    got = run(clf, paths)
    assert clf.images_judged == 1
    assert got[0].probs.argmax() == 2   # bright now
    # another tile size: all again
    clf = Counting(bundle)
    run(clf, paths, tiling=TileSettings(size=150, overlap=0.0))
    assert clf.images_judged > len(paths)
    # the model retrained in place (a file of its bundle changed): all again
    (bundle / "model_card.json").write_text('{"version": "2"}')
    clf = Counting(bundle)
    run(clf, paths)
    assert clf.images_judged > len(paths)


def test_known_is_judged_again_at_the_threshold_in_use(tmp_path, bundle):
    p = tmp_path / "white.png"
    img = np.full((40, 40), 128, np.uint8)
    img[:10] = 255   # a quarter white: score 0.25
    Image.fromarray(img).save(p)
    assert run(Counting(bundle), [p], tiling=None, threshold=lambda: 0.5)[0].known
    got = run(Counting(bundle), [p], tiling=None, threshold=lambda: 0.1)[0]
    assert got.unknown_score == pytest.approx(0.25) and not got.known


def test_errors_are_not_kept(tmp_path, bundle):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert run(Counting(bundle), [bad])[0].error
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(bad)   # repaired
    got = run(Counting(bundle), [bad])[0]
    assert got.error is None and got.probs is not None


def test_a_damaged_cache_file_is_set_aside_and_started_anew(tmp_path, bundle):
    result_cache.cache_file().parent.mkdir(parents=True)
    result_cache.cache_file().write_bytes(b"garbage " * 200)
    paths = images(tmp_path / "imgs", 2)
    run(Counting(bundle), paths)
    assert result_cache.cache_file().with_name(result_cache.FILE_NAME + ".damaged").exists()
    clf = Counting(bundle)
    run(clf, paths)
    assert clf.images_judged == 0


def test_a_cache_that_cannot_be_opened_only_means_classifying(tmp_path, bundle, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file where the folder should be")
    paths = images(tmp_path / "imgs", 2)
    for _ in range(2):
        clf = Counting(bundle)
        got = run(clf, paths)
        assert clf.images_judged > 0 and all(r.error is None for r in got.values())


def test_a_name_that_is_not_utf8_is_kept_and_found_again(tmp_path, bundle):
    """A file name that is not UTF-8 on disk (bytes from another system): a first open
    classifies every image of the folder (it once stopped the worker with the rest of its
    batch), a second finds them all."""
    paths = images(tmp_path / "imgs", 3)
    odd = paths[0].with_name(os.fsdecode(b"b\xffx.png"))
    paths[0].rename(odd)
    paths[0] = odd
    first_clf = Counting(bundle)
    first = run(first_clf, paths)
    assert sorted(first) == list(range(len(paths))) and all(r.error is None for r in first.values())
    again_clf = Counting(bundle)
    again = run(again_clf, paths)
    assert again_clf.images_judged == 0
    same(first[0], again[0])


def test_a_cache_that_fails_unexpectedly_loses_no_image(tmp_path, bundle, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("an error the cache does not expect")

    monkeypatch.setattr(ResultCache, "lookup", broken)
    monkeypatch.setattr(ResultCache, "store", broken)
    paths = images(tmp_path / "imgs", 3)
    got = run(Counting(bundle), paths)
    assert sorted(got) == list(range(len(paths))) and all(r.error is None for r in got.values())


def test_a_damaged_row_is_classified_again(tmp_path, bundle):
    paths = images(tmp_path / "imgs", 2)
    run(Counting(bundle), paths)
    with sqlite3.connect(result_cache.cache_file()) as db:
        db.execute("UPDATE results SET data = ? WHERE path = ?",
                   (b"junk", os.path.normcase(os.path.abspath(paths[0]))))
    clf = Counting(bundle)
    got = run(clf, paths)
    assert clf.images_judged == 1 and got[0].error is None


def test_old_rows_are_dropped(tmp_path, bundle, monkeypatch):
    paths = images(tmp_path / "imgs", 2)
    run(Counting(bundle), paths)
    with sqlite3.connect(result_cache.cache_file()) as db:
        db.execute("UPDATE results SET used = used - ?", (result_cache.MAX_AGE_DAYS * 86400 + 60,))
    clf = Counting(bundle)
    run(clf, paths)
    assert clf.images_judged > 0


def test_switched_off_by_the_environment(tmp_path, bundle, monkeypatch, qtbot):
    from inspector.gui.workers import ClassifyWorker

    def through(worker):
        queue, _ = worker._through_cache()
        return queue if worker.cached is None else worker.cached

    monkeypatch.setenv(result_cache.DISABLE_ENV, "1")
    w = ClassifyWorker(Counting(bundle))
    assert through(w) is w.queue
    monkeypatch.delenv(result_cache.DISABLE_ENV)
    w = ClassifyWorker(Counting(bundle))
    assert isinstance(through(w), CachedQueue)
    w = ClassifyWorker(BrightnessClassifier())   # no bundle folder
    assert through(w) is w.queue


def test_taken_beyond_the_batch_goes_back_to_the_front_in_order():
    q = WorkQueue()
    q.add((i, Path(f"{i}.png")) for i in range(10))
    q.put_back(q.take(6)[2:], q.epoch)
    assert [k for k, _ in q.take(10)] == [2, 3, 4, 5, 6, 7, 8, 9]
    q.add((i, Path(f"{i}.png")) for i in range(10))
    q.prioritize([8, 9])   # on screen
    epoch = q.epoch
    taken = q.take(6)
    q.prioritize([6, 7])   # scrolled while those were looked up: these stay first
    q.put_back(taken[2:], epoch)
    assert [k for k, _ in q.take(10)] == [6, 7, 0, 1, 2, 3, 4, 5]
    assert len(q) == 0
    q.add((i, Path(f"{i}.png")) for i in range(3))
    epoch = q.epoch
    taken = q.take(3)
    q.clear()   # another folder opened meanwhile: what was taken is not put back
    q.add([("new", Path("new.png"))])
    q.put_back(taken, epoch)
    assert [k for k, _ in q.take(10)] == ["new"]


def test_the_window_worker_reuses_results(qtbot, tmp_path, classifier):
    """The real engine on the stand-in bundle, as the window's background worker runs it."""
    from inspector.gui.workers import ClassifyWorker

    paths = images(tmp_path / "imgs", 3)

    def classify_all():
        worker = ClassifyWorker(classifier, tiling=TileSettings())
        got = {}
        worker.results.connect(lambda rs: got.update((r.key, r) for r in rs))
        worker.queue.add(enumerate(paths))
        with qtbot.waitSignal(worker.idle, timeout=60000):
            worker.start()
        worker.stop()
        worker.wait()
        return got

    calls = []
    first = classify_all()
    judge = classifier.judge
    try:
        classifier.judge = lambda *a, **k: calls.append(1) or judge(*a, **k)
        again = classify_all()
    finally:
        del classifier.judge
    assert not calls and sorted(again) == sorted(first) == list(range(len(paths)))
    for k in first:
        same(first[k], again[k])


def test_skim_hands_out_what_is_cached_and_keeps_the_rest_in_order(tmp_path, bundle):
    paths = images(tmp_path / "imgs", 6)
    run(Counting(bundle), paths[:4])
    clf = Counting(bundle)
    queue = WorkQueue()
    queue.add(enumerate(paths))
    got = []
    cache = ResultCache(model_key(clf, TILING), clf.class_names)
    cached = CachedQueue(queue, cache, got.extend)
    assert cached.skim() == 4
    assert sorted(r.key for r in got) == [0, 1, 2, 3]
    assert [k for k, _ in queue.take(10)] == [4, 5, 6]
    cache.close()


def test_the_key_follows_the_code_that_reads_and_judges_images(bundle, monkeypatch):
    clf = Counting(bundle)
    key = model_key(clf, TILING)
    assert key == model_key(Counting(bundle), TILING)
    monkeypatch.setattr(result_cache, "code_fingerprint", lambda: "another build")
    assert model_key(clf, TILING) not in (None, key)
    monkeypatch.setattr(result_cache, "code_fingerprint", lambda: None)   # unreadable code
    assert model_key(clf, TILING) is None
    monkeypatch.undo()
    clf.runtime_format = "fp16"    # fp32, fp16 and TensorFlow count as one; int8 does not
    assert model_key(clf, TILING) == key
    clf.runtime_format = "int8"
    assert model_key(clf, TILING) != key


def test_a_frame_overwritten_with_the_same_size_and_time_is_classified_again(tmp_path, bundle):
    p = tmp_path / "frame.bmp"
    Image.fromarray(np.full((40, 40), 30, np.uint8)).save(p)
    st = os.stat(p)
    assert run(Counting(bundle), [p], tiling=None)[0].probs.argmax() == 1   # dark
    Image.fromarray(np.full((40, 40), 220, np.uint8)).save(p)   # a BMP: the same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))             # a coarse clock: the same time
    assert os.stat(p).st_size == st.st_size
    clf = Counting(bundle)
    assert run(clf, [p], tiling=None)[0].probs.argmax() == 2 and clf.images_judged == 1


def test_a_cache_file_of_another_layout_is_started_anew(tmp_path, bundle):
    result_cache.cache_file().parent.mkdir(parents=True)
    with sqlite3.connect(result_cache.cache_file()) as db:
        db.execute("CREATE TABLE results (model TEXT, path TEXT, data BLOB)")
        db.execute("PRAGMA user_version = 0")
    paths = images(tmp_path / "imgs", 2)
    run(Counting(bundle), paths)
    clf = Counting(bundle)
    run(clf, paths)
    assert clf.images_judged == 0


def test_over_its_size_the_least_recently_used_go_first(tmp_path, bundle):
    paths = images(tmp_path / "imgs", 6)
    run(Counting(bundle), paths[:3])
    run(Counting(bundle), paths[3:])   # used later
    with sqlite3.connect(result_cache.cache_file()) as db:
        sizes = dict(db.execute("SELECT path, bytes FROM results"))
        keep = sum(sizes.values()) - sum(sizes[os.path.normcase(os.path.abspath(p))]
                                         for p in paths[:3])
        assert sum(sizes.values()) > keep * 5 // 4 + 1   # over the cap: pruned to 4/5 of it
        ResultCache._prune(db, max_bytes=keep * 5 // 4 + 1)
        left = {row[0] for row in db.execute("SELECT path FROM results")}
    assert left == {os.path.normcase(os.path.abspath(p)) for p in paths[3:]}


def test_a_look_through_a_cached_folder_stops_when_the_worker_stops(tmp_path, bundle):
    paths = images(tmp_path / "imgs", 6)
    run(Counting(bundle), paths)
    clf = Counting(bundle)
    queue = WorkQueue()
    queue.add(enumerate(paths))
    got, stop = [], []
    cache = ResultCache(model_key(clf, TILING), clf.class_names)

    def emit(results):
        got.extend(results)
        stop.append(True)   # the window closes after the first hits

    cached = CachedQueue(queue, cache, emit, should_stop=lambda: bool(stop))
    assert cached.take(1) == [] and len(got) == 1 and len(queue) == len(paths) - 1
    cache.close()


def test_each_image_counts_once_and_a_first_open_reads_no_file_twice(tmp_path, bundle,
                                                                     monkeypatch):
    paths = images(tmp_path / "imgs", 6)
    run(Counting(bundle), paths[:3])
    sampled = []
    real = result_cache.file_sample
    monkeypatch.setattr(result_cache, "file_sample",
                        lambda p, stat=None: sampled.append(Path(p).name) or real(p, stat))
    clf = Counting(bundle)
    queue = WorkQueue()
    queue.add(enumerate(paths))
    got = {}
    cache = ResultCache(model_key(clf, TILING), clf.class_names)
    cached = CachedQueue(queue, cache, lambda rs: got.update((r.key, r) for r in rs))
    cached.skim()
    classify_stream(clf, cached.take, lambda rs: got.update((r.key, r) for r in cached.stored(rs)),
                    batch_size=2, tiling=TILING)
    assert sorted(got) == list(range(len(paths)))
    assert (cache.hits, cached.misses, cache.stored) == (3, 4, 4)
    # the cached three read for their check, the four classified once each, after classifying
    assert sorted(sampled) == sorted(p.name for p in paths)
    cache.close()


def test_a_file_changed_while_it_was_classified_is_not_kept(tmp_path, bundle):
    p = tmp_path / "frame.png"
    Image.fromarray(np.full((40, 40), 30, np.uint8)).save(p)
    stat = result_cache.file_stat(p)
    clf = Counting(bundle)
    cache = ResultCache(model_key(clf, None), clf.class_names)
    result = run(clf, [p], tiling=None)[0]   # (stored under the file as it was)
    Image.fromarray(np.full((60, 60), 220, np.uint8)).save(p)   # the camera wrote it anew
    assert cache.store([(result, stat)]) == 0
    cache.close()
