"""``inspector classify``: good files, broken files, exit codes, CSV/JSON, progress output."""
import csv
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from inspector import batch
from synth import PROB_ATOL, texture

ROOT = Path(__file__).resolve().parent.parent


def write_images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(5):
        p = folder / f"grey_{k}.bmp"
        Image.fromarray(texture(k, 64 + 20 * k, seed=k)).save(p)
        paths.append(p)
    rgb = np.stack([texture(1, 90), texture(2, 90), texture(3, 90)], axis=2)
    Image.fromarray(rgb).save(folder / "colour.jpg", quality=90)
    Image.fromarray((texture(4, 70).astype(np.uint16) * 257)).save(folder / "deep16.tif")
    return sorted(folder.iterdir())


def broken_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    trunc = folder / "truncated.png"
    Image.fromarray(texture(0, 64)).save(trunc)
    trunc.write_bytes(trunc.read_bytes()[:200])
    fake = folder / "fake.bmp"
    fake.write_bytes(b"this is not a bitmap")
    text = folder / "notes.txt"
    text.write_text("hello")
    return {"truncated": trunc, "fake": fake, "text": text, "missing": folder / "missing.png"}


def run(argv, classifier, capsys):
    code = batch.main(argv, classifier=classifier)
    out, err = capsys.readouterr()
    return code, out, err


def test_good_folder_exit_0_and_probabilities_match(tmp_path, classifier, capsys):
    images = write_images(tmp_path / "imgs")
    out_csv = tmp_path / "res" / "results.csv"
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out_csv), "--batch-size", "3"],
                       classifier, capsys)
    assert code == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    header = out_csv.read_text().splitlines()[0].split(",")
    names = list(classifier.class_names)
    assert header[:3 + len(names)] == ["path", "label", "confidence", *names]
    assert "error" in header
    assert [Path(r["path"]).name for r in rows] == [p.name for p in images]
    # images over 1.5x the stand-in's 64 px input are tiled by default (inspector.tiles)
    # (judged in the command's batches: 3 images, their inputs 3 at a time)
    from inspector.tiles import TileSettings, judge_prepared, prepare_image
    from training.images import decode_image

    preps = [prepare_image(classifier, decode_image(p), TileSettings()) for p in images]
    expected = np.stack([v.probs for k in range(0, len(preps), 3)
                         for v in judge_prepared(classifier, preps[k:k + 3], 3)])
    assert sum(max(decode_image(p).shape) > 96 for p in images) == 3   # some were tiled
    got = np.array([[float(r[n]) for n in names] for r in rows])
    np.testing.assert_allclose(got, expected, atol=PROB_ATOL)
    assert all(r["label"] == names[int(np.argmax(e))] for r, e in zip(rows, expected))
    assert all(r["error"] == "" for r in rows)
    assert not (tmp_path / "res" / "results.csv.partial").exists()
    assert "7 of 7 files classified" in err
    # stderr is no terminal here: plain progress lines, no carriage returns
    assert "\r" not in err and "classifying: 7/7 (100%" in err


def test_side_by_side_parts_give_the_same_results_in_order(tmp_path, stand_in_bundle,
                                                           monkeypatch):
    """``inspector classify`` cuts each batch into a part per interpreter, each decoded and
    judged by one thread on one interpreter: the same results, in order, errors kept, as the
    batch shared among the interpreters."""
    import threading

    from inspector.engine import load_classifier
    from inspector.tiles import TileSettings

    clf = load_classifier(stand_in_bundle, num_threads=3)
    assert clf.interpreters == 3
    paths = write_images(tmp_path / "imgs") + list(broken_files(tmp_path / "bad").values())
    plain = list(batch.classify_paths(clf, paths, batch_size=5, tiling=TileSettings()))
    calls = []
    real = clf.judge

    def judge(images, spread=True):
        calls.append((spread, threading.current_thread().name))
        return real(images, spread)

    monkeypatch.setattr(clf, "judge", judge)
    parts = list(batch.classify_paths(clf, paths, batch_size=5, tiling=TileSettings(),
                                      side_by_side=True))
    assert [r.key for r in parts] == [r.key for r in plain] == list(range(len(paths)))
    assert [r.error for r in parts] == [r.error for r in plain]
    assert sum(r.error is not None for r in parts) == 4
    for a, b in zip(parts, plain):
        if b.probs is not None:
            np.testing.assert_allclose(a.probs, b.probs, atol=PROB_ATOL)
            assert a.known == b.known and (a.tiles is None) == (b.tiles is None)
    assert calls and all(spread is False for spread, _ in calls)
    assert len({name for _, name in calls}) >= 2


def test_broken_files_get_error_rows_and_exit_2(tmp_path, classifier, capsys):
    write_images(tmp_path / "imgs")
    bad = broken_files(tmp_path / "bad")
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    argv = [str(tmp_path / "imgs"), *(str(p) for p in bad.values()), "--out", str(out_csv),
            "--json", str(out_json)]
    code, _, err = run(argv, classifier, capsys)
    assert code == 2
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out_csv.open())}
    assert len(rows) == 7 + 4
    assert "damaged" in rows["truncated.png"]["error"]
    assert "not an image" in rows["fake.bmp"]["error"]
    assert "not an image" in rows["notes.txt"]["error"]
    assert rows["missing.png"]["error"] == "file not found"
    for name in ("truncated.png", "fake.bmp", "notes.txt", "missing.png"):
        assert rows[name]["label"] == "" and rows[name]["confidence"] == ""
        assert f"{name}: " in err                                  # named on stderr
    assert sum(1 for r in rows.values() if r["error"] == "") == 7
    assert "Traceback" not in err
    doc = json.loads(out_json.read_text())
    assert len(doc["results"]) == 11 and doc["summary"]["(all)"]["errors"] == 4
    assert doc["class_names"] == list(classifier.class_names)


def test_csv_to_stdout_without_out(tmp_path, classifier, capsys):
    write_images(tmp_path / "imgs")
    code, out, err = run([str(tmp_path / "imgs" / "grey_1.bmp"), "-q"], classifier, capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("path,label,confidence,") and len(lines) == 2


def test_nothing_to_classify_exit_1(tmp_path, classifier, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run([str(tmp_path / "empty")], classifier, capsys)
    assert code == 1 and "no image files" in err


def test_tty_progress_bar_redraws_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    bar = batch.ProgressBar(3, s)
    for i in range(1, 4):
        bar._last_draw = 0
        bar.update(i)
    assert s.getvalue().count("\r") == 3 and s.getvalue().endswith("\n") and "3/3" in s.getvalue()


@pytest.mark.slow
def test_command_line_entry_point(tmp_path, stand_in_bundle):
    """``python -m inspector classify`` in a fresh process (the console script's code path)."""
    write_images(tmp_path / "imgs")
    bad = broken_files(tmp_path / "bad")
    out = tmp_path / "out.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "inspector", "classify", str(tmp_path / "imgs"),
                           str(bad["fake"]), "--model", str(stand_in_bundle), "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "fake.bmp: not an image" in proc.stderr
    assert len(out.read_text().splitlines()) == 1 + 8
    assert "on CPU, LiteRT" in proc.stderr              # LiteRT ran, and its banner was dropped
    assert "XNNPACK delegate" not in proc.stderr

    proc = subprocess.run([sys.executable, "-m", "inspector", "classify", str(tmp_path / "imgs"),
                           "--model", str(tmp_path / "no-such-bundle")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1 and "cannot load the model" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_names_the_program_and_the_bundled_model(capsys):
    """``inspector --version``: the program's version, the same as the package's, and the
    bundled model's from its card."""
    import tomllib

    from inspector import __version__, app

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
    card = json.loads((ROOT / "resources" / "ssdc-mininet" / "model_card.json").read_text())
    assert app.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"Steel Inspector {__version__}; bundled model {card['name']} {card['version']}")


def test_a_damaged_active_model_falls_back_to_the_bundled_one(tmp_path, stand_in_bundle,
                                                            monkeypatch, capsys):
    from inspector import paths
    from inspector.library import ModelLibrary

    lib = ModelLibrary()
    active = lib.add(stand_in_bundle, name="broken")
    lib.activate(active)
    (active / "model.keras").write_bytes(b"PK not a keras file")
    (active / "inspect_fp32.tflite").write_bytes(b"not a LiteRT model")  # what the app runs
    monkeypatch.setattr(paths, "bundled_model_dir", lambda: Path(stand_in_bundle))
    write_images(tmp_path / "imgs")
    out = tmp_path / "r.csv"
    code = batch.main([str(tmp_path / "imgs"), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 0 and out.is_file()
    assert "cannot load the active model" in err and active.name in err and "bundled" in err
    # a model the user named does not fall back
    code = batch.main([str(tmp_path / "imgs"), "--model", str(active), "-q"])
    assert code == 1 and "cannot load the model" in capsys.readouterr().err
    # a damaged model card, a version folder that has gone: said too, not a silent swap
    (active / "model_card.json").write_text("{ damaged")
    assert batch.main([str(tmp_path / "imgs"), "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "cannot load the active model" in err and "damaged model card" in err
    shutil.rmtree(active)
    assert batch.main([str(tmp_path / "imgs"), "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "cannot load the active model" in err and active.name in err


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_batch_size_and_workers_must_be_positive_whole_numbers(value, capsys):
    with pytest.raises(SystemExit) as exc:
        batch.build_parser().parse_args(["x", "--batch-size", value])
    assert exc.value.code == 1     # nothing was run (2 is "some files could not be read")
    err = capsys.readouterr().err
    assert "--batch-size" in err and ("at least 1" in err or "whole number" in err)
    with pytest.raises(SystemExit):
        batch.build_parser().parse_args(["x", "--workers", value])
    assert "--workers" in capsys.readouterr().err


@pytest.mark.parametrize("value, ok", [("0", True), ("16", True), ("8", False), ("-1", False)])
def test_tile_size_is_none_or_a_texture_sized_tile(value, ok, capsys):
    if ok:
        assert batch.build_parser().parse_args(["x", "--tile-size", value]).tile_size == int(value)
        return
    with pytest.raises(SystemExit):
        batch.build_parser().parse_args(["x", "--tile-size", value])
    err = capsys.readouterr().err
    assert "--tile-size" in err and "0 (no tiles) or at least 16 pixels" in err


def test_outputs_that_cannot_be_written_or_would_replace_an_input_are_refused_first(
        tmp_path, classifier, capsys):
    images = write_images(tmp_path / "imgs")
    (tmp_path / "file").write_text("")
    before = {p: p.read_bytes() for p in images}
    calls = []

    class Watch:      # no work may start before the outputs are known to be writable
        def __getattr__(self, name):
            calls.append(name)
            return getattr(classifier, name)

    (tmp_path / "link.csv").symlink_to(images[0])     # an output that is a link to an input
    (tmp_path / "imgs" / "z_link.png").symlink_to(tmp_path / "target.csv")   # and the reverse
    (tmp_path / "target.csv").write_bytes(images[2].read_bytes())
    cases = [(["--out", str(images[0])], "replace an image"),
             (["--json", str(images[1])], "replace an image"),
             (["--out", str(tmp_path / "link.csv")], "replace an image"),
             (["--out", str(tmp_path / "target.csv")], "replace an image"),
             (["--out", str(tmp_path / "r.png")], "replace an image"),
             (["--out", str(tmp_path / "x"), "--json", str(tmp_path / "x")], "same file"),
             (["--out", str(tmp_path / "imgs")], "is a folder"),
             (["--out", str(tmp_path / "r.xlsx")], "--out writes CSV, not .xlsx"),
             (["--json", str(tmp_path / "r.csv")], "--json writes JSON, not .csv"),
             (["--json", str(tmp_path / "file" / "r.json")], f"{tmp_path / 'file'} is a file, "
                                                               "not a folder"),
             (["--out", str(tmp_path / "file" / "sub" / "r.csv")], "is a file, not a folder"),
             (["--out", str(tmp_path / ("x" * 300 + ".csv"))], "too long"),
             # a name the file system takes, but not with the run's temporary suffix
             (["--out", str(tmp_path / ("x" * 247 + ".csv"))], "file name is too long"),
             (["--json", str(tmp_path / ("x" * 232 + ".json"))], "file name is too long")]
    for extra, says in cases:
        code, _, err = run([str(tmp_path / "imgs"), *extra], Watch(), capsys)
        assert code == 1 and says in err and "Traceback" not in err, (extra, err)
        assert len(err.strip().splitlines()) == 1
    assert calls == []
    assert all(p.read_bytes() == b for p, b in before.items())


def test_a_name_too_long_is_one_error_row_and_empty_paths_are_refused(tmp_path, classifier,
                                                                      capsys):
    images = write_images(tmp_path / "imgs")
    too_long = tmp_path / ("z" * 300 + ".png")
    code, out, err = run([str(images[0]), str(too_long), str(images[1])], classifier, capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 2 and "Traceback" not in err and len(rows) == 3
    assert [r["error"] != "" for r in rows] == [False, True, False]
    assert "File name too long" in rows[1]["error"]
    for argv in ([""], [str(images[0]), "--out", ""], [str(images[0]), "--json", " "]):
        with pytest.raises(SystemExit):   # never the current folder, never "not given"
            batch.main(argv, classifier=classifier)
        assert "an empty path" in capsys.readouterr().err


def test_the_longest_output_names_allowed_are_written(tmp_path, classifier, capsys):
    """The name-length limit is the one the writes need: a name at it runs to the end (one
    byte over the JSON's once passed the check and failed after the whole run)."""
    import re

    write_images(tmp_path / "imgs")
    names = {}
    for opt, suffix in (("--out", ".csv"), ("--json", ".json")):
        code, _, err = run([str(tmp_path / "imgs"), opt, str(tmp_path / ("x" * 250 + suffix))],
                           classifier, capsys)
        assert code == 1
        most = int(re.search(r"at most (\d+) bytes", err).group(1))
        names[opt] = tmp_path / ("y" * (most - len(suffix)) + suffix)
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(names["--out"]), "--json",
                        str(names["--json"])], classifier, capsys)
    assert code == 0, err
    assert len(json.loads(names["--json"].read_text())["results"]) == 7
    assert len(names["--out"].read_text().splitlines()) == 1 + 7


def test_a_write_that_fails_during_the_run_is_one_line_and_keeps_what_was_done(
        tmp_path, classifier, capsys, monkeypatch):
    from inspector import report

    write_images(tmp_path / "imgs")
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "export_json", full)
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out_csv), "--json", str(out_json)],
                       classifier, capsys)
    assert code == 1 and "Traceback" not in err
    assert f"cannot write {out_json}: No space left on device" in err
    # the CSV was complete: kept, named, but not put in place beside no JSON (the two results of
    # a run take their places together, or neither does)
    partial = tmp_path / "r.csv.partial"
    assert not out_csv.exists() and f"results so far are in {partial}" in err
    assert len(list(csv.DictReader(partial.open()))) == 7
    assert not list(tmp_path.glob(".r.json.ready-*"))


def test_a_run_s_csv_and_json_take_their_places_together(tmp_path, classifier, capsys,
                                                          monkeypatch):
    """Both results are complete before either replaces the one before, and a stop that comes
    meanwhile waits (a kill between the two used to leave the new CSV beside the old JSON)."""
    import json

    write_images(tmp_path / "imgs")
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    out_csv.write_text("old\n")
    out_json.write_text('"old"')
    placed = []
    real_replace = os.replace

    def replace(src, dst):
        placed.append((Path(src).name, Path(dst).name, out_json.read_text() == '"old"'))
        return real_replace(src, dst)

    monkeypatch.setattr(batch.os, "replace", replace)
    code, _, _ = run([str(tmp_path / "imgs"), "--out", str(out_csv), "--json", str(out_json)],
                     classifier, capsys)
    assert code == 0
    finals = [p for p in placed if p[1] in ("r.csv", "r.json")]
    assert [p[1] for p in finals] == ["r.csv", "r.json"]
    assert finals[0][0] == "r.csv.partial" and finals[1][0].startswith(".r.json.ready-")
    assert len(json.loads(out_json.read_text())["results"]) == 7


def test_a_reader_that_goes_away_stops_the_run_quietly(tmp_path, classifier):
    write_images(tmp_path / "imgs")

    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    args = batch.build_parser().parse_args([str(tmp_path / "imgs"), "-q"])
    assert batch.run(args, classifier, stderr=err, stdout=Closed()) == 141
    assert err.getvalue() == ""


def test_an_interrupted_run_keeps_its_json_so_far(tmp_path, classifier, capsys, monkeypatch):
    images = write_images(tmp_path / "imgs")
    real = batch.classify_paths

    def interrupted(*a, **k):
        for n, r in enumerate(real(*a, **k)):
            if n == 3:
                raise KeyboardInterrupt
            yield r

    monkeypatch.setattr(batch, "classify_paths", interrupted)
    out_json = tmp_path / "r.json"
    code, _, err = run([str(tmp_path / "imgs"), "--json", str(out_json)], classifier, capsys)
    assert code == 130 and "interrupted after 3 of 7" in err and f"{out_json}.partial" in err
    doc = json.loads((tmp_path / "r.json.partial").read_text())
    assert [Path(r["path"]).name for r in doc["results"]] == [p.name for p in images[:3]]
    assert not out_json.exists()
    # run again to the end: the stale partial goes
    monkeypatch.setattr(batch, "classify_paths", real)
    code, _, err = run([str(tmp_path / "imgs"), "--json", str(out_json)], classifier, capsys)
    assert code == 0 and out_json.exists() and not (tmp_path / "r.json.partial").exists()


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM") or os.name == "nt",
                    reason="a POSIX signal sent to this process")
def test_a_run_asked_to_end_keeps_what_it_did(tmp_path, classifier, capsys, monkeypatch):
    """SIGTERM (a logoff, a service manager, kill) ends the run as Ctrl+C does: the CSV and the
    JSON so far are kept as .partial and named; every row written is in the file."""
    import signal

    images = write_images(tmp_path / "imgs")
    real = batch.classify_paths
    rows_on_disk = []

    def ended(*a, **k):
        for n, r in enumerate(real(*a, **k)):
            if n == 4:
                rows_on_disk.append(len((tmp_path / "r.csv.partial").read_text().splitlines()))
                os.kill(os.getpid(), signal.SIGTERM)
            yield r

    monkeypatch.setattr(batch, "classify_paths", ended)
    before = signal.getsignal(signal.SIGTERM)
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    code = batch.main([str(tmp_path / "imgs"), "--out", str(out_csv), "--json", str(out_json)],
                      classifier=classifier)
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM and "stopped after 4 of 7" in err, err
    assert rows_on_disk == [1 + 4]          # flushed row by row: the header and four rows
    assert len(list(csv.DictReader((tmp_path / "r.csv.partial").open()))) == 4
    doc = json.loads((tmp_path / "r.json.partial").read_text())
    assert [Path(r["path"]).name for r in doc["results"]] == [p.name for p in images[:4]]
    assert signal.getsignal(signal.SIGTERM) == before     # the handler is put back
    # a signal set to be ignored (nohup's SIGHUP) stays ignored while a run goes on
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with batch.ends_as_interrupts():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (before, signal.SIG_IGN)
            stop = signal.getsignal(signal.SIGINT)
            with batch.signals_held():   # while what was done is saved: Ctrl+C waits
                assert signal.getsignal(signal.SIGINT) not in (stop, signal.SIG_IGN)
            assert signal.getsignal(signal.SIGINT) is stop
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_json_has_no_infinity_for_a_blank_image():
    from inspector import report

    row = report.make_row(Path("blank.png"), ["a", "b"], np.array([0.5, 0.5]), None,
                          unknown_score=float("inf"), known=False)
    doc = report.json_document([row], ["a", "b"])
    text = json.dumps(doc, allow_nan=False)           # raises on inf / nan
    result = json.loads(text)["results"][0]
    assert result["unknown_score"] is None and result["label"] == "unknown"
    # even probabilities: no closest class; the note says why it is unknown
    assert result["top_class"] is None and result["note"] == report.BLANK_TEXT
    line = report.csv_text([row], ["a", "b"]).splitlines()[1]
    assert "inf" not in line and "no contrast" in line
    # an image with texture has no note
    plain = report.make_row(Path("x.png"), ["a", "b"], np.array([0.3, 0.7]), None,
                            unknown_score=50.0, known=False)
    assert plain["note"] is None and plain["top_class"] == "b" and plain["unknown_score"] == 50.0


def test_the_live_verdict_of_a_blank_frame_says_why():
    from inspector.camera.live import LiveResult

    assert "no contrast" in LiveResult.verdict_text.fget(SimpleNamespace(
        known=False, tile_unknown_scores=np.array([np.inf, np.inf]), winner=1, label_name="a",
        confidence=0.5))
    assert "closest a" in LiveResult.verdict_text.fget(SimpleNamespace(
        known=False, tile_unknown_scores=np.array([12.0]), winner=0, label_name="a",
        confidence=0.5))
    # a blank tile beside a foreign one: the foreign tile decides, and says its closest class
    assert "closest a" in LiveResult.verdict_text.fget(SimpleNamespace(
        known=False, tile_unknown_scores=np.array([12.0, np.inf]), winner=0, label_name="a",
        confidence=0.5))


def test_a_model_card_of_another_model_is_refused(tmp_path, stand_in_bundle, capsys):
    card = json.loads((stand_in_bundle / "model_card.json").read_text())
    shutil.copytree(stand_in_bundle, tmp_path / "m")
    card["class_names"] = card["class_names"][:4]
    (tmp_path / "m" / "model_card.json").write_text(json.dumps(card))
    write_images(tmp_path / "imgs")
    code = batch.main([str(tmp_path / "imgs"), "--model", str(tmp_path / "m"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "names 4 classes" in err and "Traceback" not in err


@pytest.mark.parametrize("damage", ["input_size", "inspection", "kernel"])
def test_a_damaged_bundle_is_one_line_naming_it(tmp_path, stand_in_bundle, capsys, damage):
    """Hand-edited or half-copied bundles: the window showed raw errors (a TensorFlow binding
    error quoting kilobytes of arrays, an AttributeError) that named no file."""
    card = json.loads((stand_in_bundle / "model_card.json").read_text())
    m = tmp_path / "m"
    shutil.copytree(stand_in_bundle, m)
    if damage == "kernel":
        kernels = sorted(m.glob("*.npy"))
        assert kernels
        for k in kernels:
            k.write_bytes(b"\x93NUMPY" + b"\x20\x67" + b"x" * 40)
    elif damage == "inspection":   # the export's description, its sections of the wrong type
        info = json.loads((m / "inspection.json").read_text())
        info["formats"] = {fmt: "x" for fmt in info["formats"]}
        (m / "inspection.json").write_text(json.dumps(info))
    else:
        card["input_size"] //= 2
        (m / "model_card.json").write_text(json.dumps(card))
    write_images(tmp_path / "imgs")
    code = batch.main([str(tmp_path / "imgs"), "--model", str(m), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and str(m) in err and "Traceback" not in err and len(err) < 600, err
    if damage == "input_size":
        assert "the card belongs to another model" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line(tmp_path, classifier, capsys):
    write_images(tmp_path / "imgs")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "r.csv.partial").symlink_to("/dev/full")
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(tmp_path / "out" / "r.csv"), "-q"],
                       classifier, capsys)
    assert code == 1 and "No space left on device" in err and "Traceback" not in err


def test_excel_writes_the_csv_for_this_pcs_spreadsheet(tmp_path, classifier, capsys,
                                                      monkeypatch):
    write_images(tmp_path / "imgs")
    out = tmp_path / "r.csv"
    monkeypatch.setattr(batch, "system_decimal_point", lambda: ",")
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out), "--excel", "-q"], classifier,
                       capsys)
    assert code == 0, err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 7
    assert all("," in r[n] and "." not in r[n] for r in rows for n in classifier.class_names)


def test_two_runs_given_one_out_never_share_its_partial_file(tmp_path, classifier, capsys):
    """Two runs with the same --out truncated and wrote one .partial at their own offsets (NUL
    bytes, rows of both), moved it from under each other, and one said nothing (an audit): the
    second is refused while the first holds it, and the first's results stay whole."""
    from inspector.locks import try_lock, unlock

    write_images(tmp_path / "imgs")
    out = tmp_path / "r.csv"
    partial = tmp_path / "r.csv.partial"
    partial.write_text("the other run's rows\n", encoding="utf-8")
    fd = os.open(partial, os.O_RDWR)              # the first run, still writing
    try:
        assert try_lock(fd) is True
        code, _, err = run([str(tmp_path / "imgs"), "--out", str(out), "-q"], classifier, capsys)
        assert code == 1 and "another inspector classify is writing" in err, err
        assert str(out) in err and "Traceback" not in err
        assert partial.read_text(encoding="utf-8") == "the other run's rows\n"   # untouched
        assert not out.exists()
        unlock(fd)
    finally:
        os.close(fd)
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out), "-q"], classifier, capsys)
    assert code == 0, err
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 7
    assert "\x00" not in out.read_text(encoding="utf-8") and not partial.exists()


def test_a_partial_renamed_into_place_before_the_lock_is_not_truncated(tmp_path, monkeypatch):
    """The other run renamed its .partial to the CSV between this run's open and its lock (a
    review): that inode is the finished CSV now; the run opens a new .partial instead."""
    partial, out = tmp_path / "r.csv.partial", tmp_path / "r.csv"
    partial.write_text("the other run's finished rows\n", encoding="utf-8")
    real, calls = batch.try_lock, []

    def lock(fd):
        if not calls:
            os.replace(partial, out)          # the other run's last step, just now
        calls.append(fd)
        return real(fd)

    monkeypatch.setattr(batch, "try_lock", lock)
    stream = batch.open_partial(partial)
    stream.write("mine\n")
    stream.close()
    assert len(calls) == 2
    assert out.read_text(encoding="utf-8") == "the other run's finished rows\n"
    assert partial.read_text(encoding="utf-8") == "mine\n"


def test_a_run_that_wrote_nothing_points_at_no_empty_file(tmp_path, classifier, capsys,
                                                          monkeypatch):
    """A disk full from the first row: no "results so far are in r.csv.partial" for an empty
    file; it is removed."""
    write_images(tmp_path / "imgs")
    out = tmp_path / "r.csv"

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_full(partial):
        partial.write_bytes(b"")
        return Full()

    monkeypatch.setattr(batch, "open_partial", open_full)
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out), "-q"], classifier, capsys)
    assert code == 1 and "No space left on device" in err, err
    assert "results so far" not in err and not (tmp_path / "r.csv.partial").exists()


def refuse_listing(monkeypatch, folder: Path) -> None:
    """``folder`` cannot be listed, as a folder without read permission (root may read any)."""
    real = os.scandir

    def scandir(path="."):
        if os.path.abspath(os.fspath(path)) == str(folder.absolute()):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, classifier, capsys, monkeypatch):
    """Its images are not silently left out: classify names it and exits 2; the window's
    session lists it; the rest of the batch is classified."""
    from inspector.session import ReviewSession, scan_images

    write_images(tmp_path / "imgs")
    locked = tmp_path / "imgs" / "night"
    write_images(locked)
    refuse_listing(monkeypatch, locked)
    with pytest.raises(PermissionError):
        scan_images(tmp_path / "imgs")
    out = tmp_path / "r.csv"
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out)], classifier, capsys)
    assert code == 2 and f"{locked}: cannot list this folder (permission denied)" in err
    assert "Traceback" not in err and len(list(csv.DictReader(out.open()))) == 7
    code, _, err = run([str(locked), "--no-recursive", "--out", str(out)], classifier, capsys)
    assert code == 1 and "cannot list this folder" in err and "Traceback" not in err
    session = ReviewSession.open_folder(tmp_path / "imgs", journal=False)
    assert len(session) == 7 and len(session.listing_problems) == 1
    assert str(locked) in session.listing_problems[0]


def test_paths_may_follow_options(tmp_path, classifier, capsys, monkeypatch):
    images = write_images(tmp_path / "imgs")
    (tmp_path / "more").mkdir()
    shutil.copy(images[0], tmp_path / "more" / "x.bmp")
    out = tmp_path / "r.csv"
    code, _, err = run([str(images[1]), "--no-recursive", str(tmp_path / "more"), "-q",
                        "--out", str(out)], classifier, capsys)
    assert code == 0, err
    assert len(list(csv.DictReader(out.open()))) == 2
    dashed = tmp_path / "-dashed.bmp"               # after "--", a path may start with a dash
    shutil.copy(images[0], dashed)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["-q", "--out", str(out), "--", dashed.name], classifier, capsys)
    assert code == 0, err
    assert len(list(csv.DictReader(out.open()))) == 1


def test_images_of_other_formats_in_a_folder_are_mentioned(tmp_path, classifier, capsys):
    write_images(tmp_path / "imgs")
    for name in ("a.webp", "b.webp", "c.jfif", "notes.txt", "results.csv"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(tmp_path / "r.csv")], classifier,
                       capsys)
    assert code == 0
    assert "3 image file(s) of other formats are left out (2 .webp, 1 .jfif: " in err
    note = next(line for line in err.splitlines() if "other formats" in line)
    assert all(str(tmp_path / "imgs" / n) in note for n in ("a.webp", "b.webp", "c.jfif"))
    assert ".txt" not in note and ".csv" not in note    # other files are not images
    from inspector.session import ReviewSession    # the window says the same as it opens

    session = ReviewSession.open_folder(tmp_path / "imgs", journal=False)
    assert session.left_out_note == note.split("note: ", 1)[1].replace(
        str(tmp_path / "imgs") + os.sep, "")      # named within the folder
    # not silenced by -q; a named folder without images is named, the rest still classified
    (tmp_path / "empty").mkdir()
    code, _, err = run([str(tmp_path / "imgs"), str(tmp_path / "empty"), "-q",
                        "--out", str(tmp_path / "r.csv")], classifier, capsys)
    assert code == 0 and "a.webp" in err
    assert f"no image files found in {tmp_path / 'empty'}" in err
    assert len(list(csv.DictReader((tmp_path / "r.csv").open()))) == 7


def test_ctrl_c_while_the_command_loads_is_one_line(monkeypatch, capsys):
    """A Ctrl+C in the second or two before ``inspector classify`` handles it itself (its
    libraries loading) printed a traceback."""
    import sys
    import types

    from inspector import app

    class Loading(types.ModuleType):
        def __getattr__(self, name):   # the user's key press lands while it loads
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "inspector.batch", Loading("inspector.batch"))
    assert app.main(["classify", "x.png"]) == 130
    assert capsys.readouterr().err.strip() == "inspector classify: interrupted while starting"


def test_a_file_named_with_a_leading_dash_is_a_path_not_an_option(tmp_path, classifier,
                                                                monkeypatch):
    """``inspector classify *.png`` with a file -x.png among them ended the whole batch with
    "unrecognized arguments"; an option's value and names after -- are left as they are."""
    write_images(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path / "imgs")
    Path("grey_0.bmp").rename("-x.bmp")
    names = sorted(str(p) for p in Path(".").glob("*.bmp"))
    out = tmp_path / "r.csv"
    assert batch.main([*names, "--out", str(out), "-q"], classifier=classifier) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(names) == 5 and not any(r["error"] for r in rows)
    assert any(r["path"].endswith("-x.bmp") for r in rows)
    parser = batch.build_parser()
    assert batch._dash_names_as_paths(["--out", "-x.png", "-q"], parser) == ["--out", "-x.png", "-q"]
    assert batch._dash_names_as_paths(["a", "--", "-x.png"], parser) == ["a", "--", "-x.png"]


def test_an_earlier_result_keeps_its_permissions_and_a_read_only_one_is_refused(
        tmp_path, classifier, monkeypatch):
    """A results file made read-only was silently replaced (replacing needs only the folder's
    permission), and every replaced result came back as 0644."""
    import stat

    from inspector import report

    write_images(tmp_path / "imgs")
    out = tmp_path / "r.csv"
    out.write_text("earlier\n")
    os.chmod(out, 0o640)
    assert batch.main([str(tmp_path / "imgs"), "--out", str(out), "-q"], classifier=classifier) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and out.read_text() != "earlier\n"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if Path(p) == out and m & os.W_OK
                        else real(p, m, *a, **k))   # as a user who is not root sees it
    kept = out.read_text()
    assert batch.main([str(tmp_path / "imgs"), "--out", str(out), "-q"], classifier=classifier) == 1
    assert out.read_text() == kept
    assert report.export_path_problem(out) == f"{out}: {report.READ_ONLY_TEXT}"
    monkeypatch.setattr(os, "access", real)
    report.write_text_atomic(out, "the window's export\n")   # the window's export: the same
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_large_frames_are_decoded_one_at_a_time(tmp_path, monkeypatch):
    """Four 13000 x 13000 frames decoded at once peaked at 3.6 GB; frames over
    LARGE_FRAME_PIXELS (from their headers) take turns, smaller ones go in parallel."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    paths = write_images(tmp_path / "imgs")[:4]          # 90, 70, 64 and 84 px a side
    monkeypatch.setattr(batch, "LARGE_FRAME_PIXELS", 80 * 80)
    monkeypatch.setattr(batch, "LARGE_FRAME_BYTES", 0)
    monkeypatch.setattr(batch, "COMPRESSED_FRAME_BYTES", 0)
    now, most = [0], []
    lock = threading.Lock()

    def load(path):
        with lock:
            now[0] += 1
            most.append(now[0])
        time.sleep(0.1)
        with lock:
            now[0] -= 1
        return np.zeros((2, 2, 3), np.uint8)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: batch._decode(load, p), paths))
    large = sum(1 for p in paths if np.prod(Image.open(p).size) > 80 * 80)
    assert large == 2 and max(most) == 3                  # the two large ones never together


def test_a_json_that_cannot_take_its_place_says_where_each_result_is(tmp_path, classifier,
                                                                     capsys, monkeypatch):
    """The JSON held open by another program (Windows refuses to replace it) after the CSV took
    its place: the message says the CSV is this run's and where this run's JSON is."""
    import json

    write_images(tmp_path / "imgs")
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    out_json.write_text('"old"')
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == out_json:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(batch.os, "replace", replace)
    code, _, err = run([str(tmp_path / "imgs"), "--out", str(out_csv), "--json", str(out_json)],
                       classifier, capsys)
    assert code == 1 and "Traceback" not in err
    assert f"cannot write {out_json} ({out_csv} holds this run's results)" in err
    assert f"results so far are in {out_json}.partial" in err
    assert len(list(csv.DictReader(out_csv.open()))) == 7 and out_json.read_text() == '"old"'
    assert len(json.loads(Path(f"{out_json}.partial").read_text())["results"]) == 7
    assert not list(tmp_path.glob(".r.json.*"))


def test_a_blank_frame_without_a_detector_is_no_class():
    """A model without unknown detection wrote a capped lens (even probabilities, all padding)
    as its first class, crazing, and counted it there."""
    from inspector import report

    row = report.make_row(Path("black.png"), ["a", "b"], np.array([0.5, 0.5]), None,
                          unknown_score=None, known=True, padding=1.0)
    assert row["label"] == "unknown" and row["top_class"] is None
    assert row["known"] is None and row["note"] == report.BLANK_TEXT
    # read by TensorFlow, whose epsilon keeps a blank image's score finite: not "known" either
    tf = report.make_row(Path("black.png"), ["a", "b"], np.array([0.5, 0.5]), None,
                         unknown_score=3.0, known=True, padding=1.0)
    assert tf["label"] == "unknown" and tf["known"] is False
    # the engine's verdict without a detector survives a threshold applied later (the window's
    # classification process and the result cache apply the one in use to every result)
    from inspector.batch import Result
    from inspector.session import ReviewSession

    r = Result(0, Path("black.png"), np.array([0.5, 0.5]), None, unknown_score=None, known=False)
    r.rejudge(None)
    assert r.known is False
    s = ReviewSession(["a", "b"])
    s.add_paths([Path("black.png")])
    s.set_prediction(0, np.array([0.5, 0.5]), None, False, 1.0)
    assert s.rejudge_unknown(None) == [] and s.is_unknown(0)
    assert s.summary()["per_class"] == {"a": 0, "b": 0}


def test_one_file_under_two_spellings_is_one_row_with_one_time(tmp_path, classifier, capsys,
                                                               monkeypatch):
    """``classify d $PWD/d`` wrote every image twice in the CSV and once in the JSON; the CSV's
    and the JSON's times of one image differed by milliseconds."""
    write_images(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    out, js = tmp_path / "r.csv", tmp_path / "r.json"
    code, _, err = run(["imgs", str(tmp_path / "imgs"), "imgs/../imgs/grey_0.bmp", "--out",
                        str(out), "--json", str(js), "-q"], classifier, capsys)
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    doc = json.loads(js.read_text())
    assert len(rows) == len(doc["results"]) == 7
    times = {Path(r["path"]).name: r["time"] for r in rows}
    assert {Path(r["path"]).name: r["time"] for r in doc["results"]} == times


def test_a_closed_standard_output_is_an_error_not_a_silent_success(tmp_path, classifier,
                                                                   monkeypatch, capsys):
    write_images(tmp_path / "imgs")
    monkeypatch.setattr(sys, "stdout", None)
    assert batch.main([str(tmp_path / "imgs"), "-q"], classifier=classifier) == 1
    assert "standard output is closed" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="names of undecodable bytes are POSIX's")
def test_a_folder_name_that_is_not_utf8_opens_and_exports(tmp_path, classifier, capsys):
    """Opening a folder with such a sub-folder raised UnicodeEncodeError (the journal's key);
    the JSON summary keyed it by a lone surrogate that JSON readers refuse."""
    from inspector import report
    from inspector.session import ReviewSession

    sub = os.path.join(os.fsencode(tmp_path / "coil"), b"lat\xe9")
    os.makedirs(sub)
    Image.fromarray(texture(1, 64)).save(os.fsdecode(os.path.join(sub, b"a.png")))
    s = ReviewSession.open_folder(tmp_path / "coil", True, list(classifier.class_names))
    assert len(s) == 1
    s.set_prediction(0, np.full(len(classifier.class_names), 1 / len(classifier.class_names)))
    path = report.export_json(s, tmp_path / "s.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert "lat\\xe9" in doc["summary"] and json.dumps(doc).encode("utf-8")
    header, rows = report.summary_table(s)
    assert [r[0] for r in rows] == ["(all)", "lat\\xe9"]


def test_a_class_named_like_a_column_keeps_its_probability():
    """A plant's classes "note" and "time": the CSV had two "time" columns, and the class's
    probability was overwritten by the timestamp (in the JSON too)."""
    from inspector import report

    names = ["good", "note", "time"]
    row = report.make_row(Path("x.png"), names, np.array([0.1, 0.2, 0.7]), None,
                          time="2026-12-07T12:00:00")
    header = report.columns(names)
    assert len(header) == len(set(header)) and "time (probability)" in header
    line = next(csv.DictReader(io.StringIO(report.csv_text([row], names))))
    assert float(line["time (probability)"]) == pytest.approx(0.7)
    assert line["time"] == "2026-12-07T12:00:00"
    result = report.json_document([row], names)["results"][0]
    assert result["probabilities"] == pytest.approx({"good": 0.1, "note": 0.2, "time": 0.7})
    assert result["time"] == "2026-12-07T12:00:00" and result["note"] is None


def test_a_sub_folder_named_all_keeps_the_totals(tmp_path):
    from inspector.session import ReviewSession

    for rel in ("(all)/p.png", "b/q.png", "r.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(texture(1, 32)).save(tmp_path / rel)
    s = ReviewSession.open_folder(tmp_path, True, ["a", "b"], journal=False)
    sums = s.folder_summaries()
    assert sums["(all)"]["images"] == 3 and sums["./(all)"]["images"] == 1


def test_the_json_summary_counts_needs_review_at_the_windows_threshold(tmp_path, classifier,
                                                                         capsys):
    from inspector.settings import settings_path

    write_images(tmp_path / "imgs")
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("[review]\nthreshold=0.999\n")
    js = tmp_path / "r.json"
    code, _, err = run([str(tmp_path / "imgs"), "--json", str(js), "-q"], classifier, capsys)
    assert code == 0, err
    assert json.loads(js.read_text())["summary"]["(all)"]["threshold"] == 0.999
