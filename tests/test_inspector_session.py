"""The Qt-free review core: session, journal, filters, summary, export."""
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector import report
from inspector.batch import WorkQueue
from inspector.journal import JournalError
from inspector.session import (JOURNAL_NAME, UNSURE, Filter, Journal, ReviewSession, Sort,
                               scan_images)
from synth import CLASSES, texture

NAMES = list(CLASSES)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "batch 7"
    (root / "sub").mkdir(parents=True)
    for k in range(4):
        Image.fromarray(texture(k, 32, seed=k)).save(root / f"img{k + 1}.bmp")
    Image.fromarray(texture(5, 32)).save(root / "img10.png")
    Image.fromarray(texture(2, 32)).save(root / "sub" / "deep.tif")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"")
    return root


def one_hot(i, conf):
    p = np.full(len(NAMES), (1 - conf) / (len(NAMES) - 1), np.float32)
    p[i] = conf
    return p


def classified(folder, recursive=True):
    s = ReviewSession.open_folder(folder, recursive, NAMES, threshold=0.8)
    s.model_name, s.model_version = "Net", "1.2"
    for i, conf in enumerate([0.95, 0.5, 0.9, 0.7, 0.99, 0.6][:len(s)]):
        s.set_prediction(i, one_hot(i % len(NAMES), conf))
    return s


def test_scan_finds_images_in_natural_order(folder):
    rel = [p.relative_to(folder).as_posix() for p in scan_images(folder)]
    assert rel == ["img1.bmp", "img2.bmp", "img3.bmp", "img4.bmp", "img10.png", "sub/deep.tif"]
    assert len(scan_images(folder, recursive=False)) == 5


def test_verdicts_are_journalled_and_reloaded(folder):
    s = classified(folder)
    s.set_verdict(0, "crazing")            # agrees with the prediction
    s.set_verdict(1, "scratches")          # overrides "inclusion"
    s.set_verdict(2, UNSURE)
    s.set_verdict(3, "patches")
    s.set_verdict(3, None)                 # cleared again
    journal = folder / JOURNAL_NAME
    lines = journal.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[1])["verdict"] == "scratches"
    assert json.loads(lines[1])["path"] == "img2.bmp"      # relative to the folder

    again = ReviewSession.open_folder(folder, True, NAMES)
    got = {it.path.name: it.verdict.label if it.verdict else None for it in again.items}
    assert got == {"img1.bmp": "crazing", "img2.bmp": "scratches", "img3.bmp": UNSURE,
                   "img4.bmp": None, "img10.png": None, "deep.tif": None}


def test_undo_gives_back_each_verdict_in_turn_and_journals_it(folder, monkeypatch):
    s = classified(folder)
    assert not s.can_undo() and s.undo_verdict() is None
    s.set_verdict(0, "crazing")
    s.set_verdict(0, "rust", new_class=True)   # a new class, then
    s.set_verdict(2, UNSURE)
    s.accept(1)
    assert s.undo_verdict() == 1 and s.items[1].verdict is None
    assert s.undo_verdict() == 2 and s.items[2].verdict is None
    assert s.undo_verdict() == 0 and s.items[0].verdict.label == "crazing"
    s.set_verdict(0, "patches")
    assert s.undo_verdict() == 0 and s.items[0].verdict.label == "crazing"
    again = ReviewSession.open_folder(folder, True, NAMES)      # the journal agrees
    assert [it.verdict.label if it.verdict else None for it in again.items[:3]] == \
        ["crazing", None, None]
    s.set_verdict(5, "rust", new_class=True)
    s.set_verdict(5, "crazing")                # a slip, then a model with a class "Rust"
    s.class_names = [*s.class_names, "Rust"]
    assert s.undo_verdict() == 5 and s.items[5].verdict.label == "rust"   # as it was given
    s.set_verdict(3, "patches")
    monkeypatch.setattr(s.journal, "append", lambda rec: (_ for _ in ()).throw(
        JournalError("disk full")))
    with pytest.raises(JournalError):          # not saved: kept for another try
        s.undo_verdict()
    assert s.items[3].verdict.label == "patches" and s.can_undo()


def test_a_frozen_copy_keeps_what_it_was_given(folder):
    """What an export writes in the background: later verdicts and predictions do not reach
    it, and its per-folder summary is the session's at the moment it was taken."""
    s = classified(folder)
    s.set_verdict(0, "crazing")
    copy = s.frozen_copy()
    s.set_verdict(0, "patches")
    s.set_prediction(1, one_hot(2, 0.9))
    assert copy.items[0].verdict.label == "crazing" and copy.items[1].label_index == 1
    assert copy.journal is None and len(copy) == len(s)
    assert report.csv_text(report.session_rows(copy), NAMES) != \
        report.csv_text(report.session_rows(s), NAMES)
    assert copy.folder_summaries().keys() == s.folder_summaries().keys() == {"(all)", ".", "sub"}


def test_verdicts_given_in_another_window_are_taken_in_when_looked_again(folder):
    """Two windows on one folder (a second inspector, another PC): F5 reads the journal again,
    so that exports, filters, the retraining's labels and undo go by the latest verdicts, not by
    those seen when the folder was opened (an audit); one given here meanwhile stays."""
    a = classified(folder)
    b = classified(folder)
    a.set_verdict(0, "crazing")
    a.set_verdict(1, "scratches")
    b.set_verdict(0, "patches")            # later, in the other window
    b.set_verdict(2, UNSURE)
    b.set_verdict(1, None)                 # cleared there
    records = a.read_journal()             # F5's background task
    a.set_verdict(3, "inclusion")          # given here while the journal was being read
    assert sorted(a.take_journal(records)) == [0, 1, 2]
    got = [it.verdict.label if it.verdict else None for it in a.items]
    assert got == ["patches", None, UNSURE, "inclusion", None, None]
    assert a.take_journal(a.read_journal()) == []        # nothing new: nothing changes
    assert a.undo_verdict() == 3 and a.items[3].verdict is None
    assert a.undo_verdict() is None        # the undo of images judged elsewhere is dropped
    rows = report.session_rows(a)          # what an export writes: the latest
    assert [r["verdict"] for r in rows][:3] == ["patches", None, UNSURE]


def test_a_verdict_from_a_pc_whose_clock_runs_behind_is_taken_in_too(folder, monkeypatch):
    """The journal's append order decides, as when the folder is opened, not the clocks: PC B,
    two minutes behind, judges after A; F5 in A shows B's verdict (a review)."""
    from datetime import datetime, timedelta

    from inspector import session as session_module

    a, b = classified(folder), classified(folder)
    a.set_verdict(0, "crazing")
    behind = (datetime.now().astimezone() - timedelta(minutes=2)).isoformat(timespec="milliseconds")
    real = session_module.now_iso
    monkeypatch.setattr(session_module, "now_iso", lambda: behind)
    b.set_verdict(0, "patches")
    monkeypatch.setattr(session_module, "now_iso", real)
    assert ReviewSession.open_folder(folder, True, NAMES).items[0].verdict.label == "patches"
    assert a.take_journal(a.read_journal()) == [0]
    assert a.items[0].verdict.label == "patches"


def test_an_absurdly_nested_journal_line_is_a_damaged_line(folder):
    """It stopped the folder from opening (RecursionError in the JSON parser)."""
    s = classified(folder)
    s.set_verdict(0, "crazing")
    with open(folder / JOURNAL_NAME, "a") as f:
        f.write("[" * 100000 + "]" * 100000 + "\n")
    again = ReviewSession.open_folder(folder, True, NAMES)
    assert again.journal.skipped_lines == 1 and again.items[0].verdict.label == "crazing"


def test_a_journal_time_at_the_calendars_end_does_not_stop_the_folder(folder):
    """A hand-edited time without an offset at the calendar's ends ("0001-01-01" gave ValueError,
    "9999-12-31T23:59:59" OverflowError west of Greenwich) stopped the folder from opening."""
    import json

    s = classified(folder)
    s.set_verdict(0, "crazing")
    with open(folder / JOURNAL_NAME, "a") as f:
        f.write(json.dumps({"path": "img2.bmp", "verdict": "patches",
                            "time": "0001-01-01T00:00:00"}) + "\n")
    again = ReviewSession.open_folder(folder, True, NAMES)
    assert again.items[0].verdict.label == "crazing" and again.items[1].verdict.label == "patches"
    from inspector.journal import utc_seconds
    assert utc_seconds("0001-01-01T00:00:00") == float("-inf")


def test_torn_last_line_is_skipped_and_not_glued_to_the_next(folder):
    s = classified(folder)
    s.set_verdict(0, "crazing")
    with open(folder / JOURNAL_NAME, "a") as f:
        f.write('{"v":1,"path":"img2.bmp","verd')     # power cut in the middle of a write
    s2 = ReviewSession.open_folder(folder, True, NAMES)
    assert s2.journal.skipped_lines == 1
    s2.set_verdict(4, "scratches")
    s3 = ReviewSession.open_folder(folder, True, NAMES)
    assert s3.items[0].verdict.label == "crazing"
    assert s3.items[4].verdict.label == "scratches"


def test_a_line_torn_by_another_writer_while_the_folder_is_open_does_not_swallow_a_verdict(folder):
    s = classified(folder)
    s.set_verdict(0, "crazing")                           # this session has written here before
    with open(folder / JOURNAL_NAME, "a") as f:
        f.write('{"v":1,"path":"img2.bmp","verd')     # another PC's crash, mid-write, on a share
    s.set_verdict(1, "inclusion")
    again = ReviewSession.open_folder(folder, True, NAMES)
    assert again.journal.skipped_lines == 1
    assert again.items[1].verdict.label == "inclusion"


def test_a_failed_write_leaves_no_partial_line_behind(folder, monkeypatch):
    s = classified(folder)
    s.set_verdict(0, "crazing")
    before = (folder / JOURNAL_NAME).read_bytes()
    real_write = os.write

    def disk_fills(fd, data):                             # half the record, then the disk is full
        if len(data) > 8:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills)         # the fallback journal fails alike
    with pytest.raises(JournalError):
        s.set_verdict(1, "inclusion")
    assert (folder / JOURNAL_NAME).read_bytes() == before  # the folder's journal as it was
    monkeypatch.setattr(os, "write", real_write)
    s.set_verdict(2, "patches")                           # space again: nothing glued, nothing lost
    again = ReviewSession.open_folder(folder, True, NAMES)
    assert again.journal.skipped_lines == 0
    assert again.items[0].verdict.label == "crazing" and again.items[2].verdict.label == "patches"


def test_verdicts_given_in_a_parent_or_a_sub_folder_show_in_the_other(folder):
    sub = ReviewSession.open_folder(folder / "sub", True, NAMES)
    sub.set_verdict(0, "inclusion")                       # journalled in sub/
    top = ReviewSession.open_folder(folder, True, NAMES)
    deep = top.index_of(folder / "sub" / "deep.tif")
    assert top.items[deep].verdict.label == "inclusion"
    top.set_verdict(deep, "patches")                      # journalled in the top folder
    assert ReviewSession.open_folder(folder / "sub", True, NAMES).items[0].verdict.label == "patches"
    assert ReviewSession.open_folder(folder, True, NAMES).items[deep].verdict.label == "patches"


def test_a_clock_set_back_does_not_reorder_one_journal(folder):
    lines = [{"v": 1, "path": "img1.bmp", "verdict": "crazing", "time": "2026-03-29T02:59:00+01:00"},
             # a later verdict, written after the clock went back an hour (and in another zone)
             {"v": 1, "path": "img1.bmp", "verdict": "patches", "time": "2026-03-29T02:10:00+02:00"}]
    (folder / JOURNAL_NAME).write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert ReviewSession.open_folder(folder, True, NAMES).items[0].verdict.label == "patches"


def test_read_only_folder_uses_the_user_data_folder(folder, monkeypatch, tmp_path):
    monkeypatch.setattr("inspector.journal._folder_writable", lambda p: False)
    s = classified(folder)
    s.set_verdict(1, "patches")
    assert not (folder / JOURNAL_NAME).exists()
    assert s.journal.path.is_relative_to(tmp_path / "home")   # STEEL_INSPECTOR_HOME
    assert ReviewSession.open_folder(folder, True, NAMES).items[1].verdict.label == "patches"


def test_a_journal_that_cannot_be_read_is_named(folder, monkeypatch):
    """Its verdicts cannot be shown: the journal says which file and why, for the window."""
    s = classified(folder)
    s.set_verdict(0, "crazing")
    journal = folder / JOURNAL_NAME
    real = Path.read_text

    def refuse(self, *a, **k):
        if self == journal:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", refuse)
    again = ReviewSession.open_folder(folder, True, NAMES)
    assert again.items[0].verdict is None
    assert again.journal.unreadable == [f"{journal}: permission denied"]
    monkeypatch.setattr(Path, "read_text", real)
    assert ReviewSession.open_folder(folder, True, NAMES).journal.unreadable == []


def test_unwritable_journal_falls_back_when_writing_fails(folder, monkeypatch):
    s = classified(folder)
    real = Journal._append_to

    def refuse_local(self, path, line):
        if path == self.local_path:
            raise PermissionError(13, "Permission denied")
        real(self, path, line)

    monkeypatch.setattr(Journal, "_append_to", refuse_local)
    s.set_verdict(0, "crazing")
    j = s.journal
    assert j.fallback_path.exists() and "Permission denied" in j.fallback_reason
    # the folder is tried again: once it takes records, they go there (where other PCs look)
    monkeypatch.setattr(Journal, "_append_to", real)
    s.set_verdict(1, "patches")
    assert j.fallback_reason is None and j.local_path.exists()
    again = ReviewSession.open_folder(folder, class_names=s.class_names)
    assert [it.verdict.label for it in again.items[:2]] == ["crazing", "patches"]


def test_a_folder_read_only_from_the_start_says_where_its_verdicts_go(folder, monkeypatch):
    real = os.access
    monkeypatch.setattr("inspector.journal.os.access",
                        lambda p, mode: False if Path(p) == folder else real(p, mode))
    s = classified(folder)
    s.set_verdict(0, "crazing")
    j = s.journal
    assert j.path == j.fallback_path and j.fallback_path.exists()
    assert j.fallback_reason == f"{folder}: the folder is read-only"   # the window says so


def test_a_verdict_after_the_folder_has_gone_does_not_re_create_it(folder):
    import shutil

    s = classified(folder)
    shutil.rmtree(folder)                      # a network share that dropped
    s.set_verdict(0, "crazing")
    assert not folder.exists()
    assert s.journal.fallback_reason and s.journal.fallback_path.exists()


def test_filters_sorting_and_summary(folder):
    s = classified(folder)
    # confidences 0.95 0.5 0.9 0.7 0.99 0.6; labels = index
    assert s.view(Filter(needs_review=True)) == [1, 3, 5]
    assert s.view(Filter(predicted_class="patches")) == [2]
    assert s.view(sort=Sort.CONFIDENCE_ASC) == [1, 5, 3, 2, 0, 4]
    assert s.view(sort=Sort.CONFIDENCE_DESC)[:2] == [4, 0]
    s.set_verdict(0, "crazing")
    s.set_verdict(1, "scratches")
    s.set_verdict(2, UNSURE)
    assert s.view(Filter(overridden=True)) == [1]
    assert s.view(Filter(unreviewed=True)) == [3, 4, 5]
    assert s.view(Filter(needs_review=True, unreviewed=True)) == [3, 5]
    summ = s.summary()
    assert summ["per_class"]["crazing"] == 1 and summ["overrides"] == 1 and summ["unsure"] == 1
    assert summ["accepted"] == 1 and summ["reviewed"] == 3 and summ["needs_review"] == 3
    assert summ["mean_confidence"] == pytest.approx(np.mean([0.95, 0.5, 0.9, 0.7, 0.99, 0.6]))
    per_folder = s.folder_summaries()
    assert per_folder["sub"]["images"] == 1 and per_folder["."]["images"] == 5
    assert s.training_verdicts() == [(s.items[0].path, "crazing"), (s.items[1].path, "scratches")]


def test_unknown_class_verdict_is_refused(folder):
    s = classified(folder)
    with pytest.raises(ValueError):
        s.set_verdict(0, "rust")


def test_csv_and_json_export(folder, tmp_path):
    s = classified(folder)
    s.set_error(5, "damaged image data")
    s.set_verdict(1, "scratches")
    out = report.export_csv(s, tmp_path / "r.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    header = out.read_text().splitlines()[0].split(",")
    assert header[:3 + len(NAMES)] == ["path", "label", "confidence", *NAMES]
    assert {"error", "verdict", "model", "model_version", "time"} <= set(header)
    assert len(rows) == 6
    r1 = rows[1]
    assert r1["label"] == "inclusion" and float(r1["confidence"]) == pytest.approx(0.5)
    assert float(r1["inclusion"]) == pytest.approx(0.5) and float(r1["crazing"]) == pytest.approx(0.1)
    assert r1["verdict"] == "scratches" and r1["overridden"] == "yes"
    assert r1["model"] == "Net" and r1["model_version"] == "1.2" and r1["time"]
    assert rows[5]["error"] == "damaged image data" and rows[5]["label"] == ""

    doc = json.loads(report.export_json(s, tmp_path / "r.json").read_text())
    assert doc["model"] == {"name": "Net", "version": "1.2"}
    assert doc["results"][1]["probabilities"]["inclusion"] == pytest.approx(0.5)
    assert doc["summary"]["(all)"]["overrides"] == 1
    header, table = report.summary_table(s)
    assert table[0][0] == "(all)" and table[0][header.index("images")] == 6


def test_work_queue_takes_what_is_visible_first():
    q = WorkQueue()
    q.add((i, f"{i}.png") for i in range(10))
    assert [k for k, _ in q.take(2)] == [0, 1]
    q.prioritize([7, 8, 1])            # 1 was already taken
    assert [k for k, _ in q.take(3)] == [7, 8, 2]
    assert [k for k, _ in q.take(10)] == [3, 4, 5, 6, 9]
    assert q.take(5) == [] and len(q) == 0
