"""inspector.report: result rows, CSV and JSON exports of a review session, the per-folder
summary, written atomically."""
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector import report
from inspector.tiles import Roi
from inspector.session import UNSURE, ReviewSession
from synth import texture

NAMES = ["a", "b", "c"]


def test_a_row_has_every_class_and_the_predicted_label():
    row = report.make_row("x.png", NAMES, np.array([0.1, 0.7, 0.2]), model="m", time="t")
    assert list(row)[:3] == ["path", "label", "confidence"]
    assert row["label"] == "b" and row["confidence"] == 0.7
    assert [row[n] for n in NAMES] == [0.1, 0.7, 0.2]
    empty = report.make_row("y.png", NAMES, None, "cannot read")
    assert empty["label"] is None and empty["error"] == "cannot read"
    assert all(empty[n] is None for n in NAMES)
    assert report.columns(NAMES) == ["path", "label", "confidence", *NAMES, "unknown_score",
                                     "known", "top_class", *report.TAIL_COLUMNS]


def test_a_flagged_row_is_labelled_unknown_and_keeps_its_top_class():
    row = report.make_row("x.png", NAMES, np.array([0.1, 0.7, 0.2]), unknown_score=3.5,
                          known=False)
    assert row["label"] == "unknown" and row["top_class"] == "b" and row["confidence"] == 0.7
    assert row["unknown_score"] == 3.5 and row["known"] is False
    ok = report.make_row("y.png", NAMES, np.array([0.1, 0.7, 0.2]), unknown_score=0.5)
    assert ok["label"] == "b" and ok["known"] is True
    table = list(csv.reader(io.StringIO(report.csv_text([row, ok], NAMES))))
    col = table[0].index("known")
    assert [r[col] for r in table[1:]] == ["false", "true"]
    assert table[1][table[0].index("label")] == "unknown"


def test_csv_cells():
    rows = [report.make_row("x.png", NAMES, np.array([0.25, 0.5, 0.25]), overridden=True),
            report.make_row("y.png", NAMES, None, "broken")]
    table = list(csv.reader(io.StringIO(report.csv_text(rows, NAMES))))
    assert table[0] == report.columns(NAMES)
    first = dict(zip(table[0], table[1]))
    assert first["b"] == "0.500000" and first["overridden"] == "yes" and first["verdict"] == ""
    assert dict(zip(table[0], table[2]))["error"] == "broken"


def test_json_nests_the_probabilities():
    rows = [report.make_row("x.png", NAMES, np.array([0.2, 0.3, 0.5]))]
    doc = report.json_document(rows, NAMES, model="m", model_version="1", summary={"k": 1})
    assert doc["model"] == {"name": "m", "version": "1"} and doc["class_names"] == NAMES
    assert doc["results"][0]["probabilities"] == {"a": 0.2, "b": 0.3, "c": 0.5}
    assert "a" not in doc["results"][0] and doc["summary"] == {"k": 1}


def make_session(tmp_path):
    for k in range(3):
        Image.fromarray(texture(k, 32)).save(tmp_path / f"img{k}.png")
    s = ReviewSession.open_folder(tmp_path, class_names=NAMES)
    s.set_prediction(0, np.array([0.9, 0.05, 0.05]))
    s.set_prediction(1, np.array([0.1, 0.2, 0.7]))
    s.set_error(2, "damaged")
    s.set_verdict(0, "b")
    s.set_verdict(1, UNSURE)
    return s


def test_a_csv_for_excel_on_a_pc_with_a_decimal_comma(tmp_path):
    """German, Polish, Czech or Brazilian Excel opens a double-clicked CSV with ";" between
    cells and "," in numbers, and reads it in the old code page without a byte-order mark: the
    plain CSV came in as one column of garbled text (a locale audit). The plain one is as it
    was (scripts read it)."""
    (tmp_path / "imgs").mkdir()
    s = make_session(tmp_path / "imgs")
    plain = report.export_csv(s, tmp_path / "plain.csv").read_bytes()
    assert not plain.startswith(b"\xef\xbb\xbf") and b";" not in plain
    comma = report.export_csv(s, tmp_path / "de.csv", fmt=report.spreadsheet_csv(","))
    raw = comma.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    plain_rows = list(csv.DictReader(io.StringIO(plain.decode("utf-8"))))
    assert [r["path"] for r in rows] == [r["path"] for r in plain_rows]
    assert rows[0]["a"] == plain_rows[0]["a"].replace(".", ",") and "," in rows[0]["a"]
    assert rows[0]["verdict"] == "b"
    point = report.export_csv(s, tmp_path / "en.csv", fmt=report.spreadsheet_csv("."))
    assert point.read_bytes() == b"\xef\xbb\xbf" + plain
    summary = report.export_summary_csv(s, tmp_path / "sum.csv", report.spreadsheet_csv(","))
    head = summary.read_text(encoding="utf-8-sig").splitlines()[0]
    assert head.startswith("folder;images;classified")


def test_session_exports_and_summary(tmp_path):
    (tmp_path / "imgs").mkdir()
    s = make_session(tmp_path / "imgs")
    out = report.export_csv(s, tmp_path / "out" / "r.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows] == ["a", "c", ""]
    assert rows[0]["verdict"] == "b" and rows[0]["overridden"] == "yes"
    assert rows[1]["verdict"] == UNSURE and rows[1]["overridden"] == ""
    assert rows[2]["error"] == "damaged"
    doc = json.loads(report.export_json(s, tmp_path / "out" / "r.json").read_text())
    assert len(doc["results"]) == 3 and doc["folder"] == str(s.root)
    header, table = report.summary_table(s)
    assert header[:2] == ["folder", "images"] and table[0][1] == 3
    text = report.summary_text(s.summary())
    assert text.startswith("2/3 classified") and "1 unreadable" in text
    assert "a 1" in text and "c 1" in text   # per-class counts
    short = report.summary_text(s.summary(), per_class=False)   # the status bar's
    assert short.startswith("2/3 classified") and "a 1" not in short and "c 1" not in short
    assert not [p for p in (tmp_path / "out").iterdir() if p.suffix not in (".csv", ".json")]


def test_device_status_text_keeps_the_choice_and_its_reason_not_the_times():
    full = "CPU, LiteRT fp16 (fastest here: fp32 2.1 ms, fp16 1.7 ms, int8 2.8 ms)"
    assert report.device_status_text(full) == "device: CPU, LiteRT fp16 (fastest here)"
    excluded = "CPU, LiteRT fp32 (fastest here: fp32 2.0 ms, fp16 2.4 ms; int8 not used: 1.2 points)"
    assert report.device_status_text(excluded) == "device: CPU, LiteRT fp32 (fastest here)"
    one = "CPU, LiteRT fp32 (2.0 ms)"   # a single format: its time is all the reason there is
    assert report.device_status_text(one) == "device: CPU, LiteRT fp32 (2.0 ms)"
    assert report.device_status_text("GPU 0: NVIDIA H200, TensorFlow") == \
        "device: GPU 0: NVIDIA H200, TensorFlow"


def test_a_file_name_that_is_not_utf8_is_written_escaped_and_the_batch_goes_on(tmp_path, capsys,
                                                                              classifier):
    """A name of undecodable bytes (a Windows share's, on Linux) is written as \\xNN in the CSV
    and the JSON, and its verdict is journaled; the rest of the batch is not lost."""
    import os
    import sys

    from PIL import Image

    from inspector import batch
    from inspector.session import ReviewSession
    from synth import texture

    if sys.platform == "win32":
        pytest.skip("Windows file names are UTF-16")
    folder = tmp_path / "imgs"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    Image.fromarray(texture(0, 64)).save(os.fsdecode(odd))
    Image.fromarray(texture(1, 64)).save(folder / "plain.png")
    out, js = tmp_path / "r.csv", tmp_path / "r.json"
    assert batch.main([str(folder), "--out", str(out), "--json", str(js)],
                      classifier=classifier) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(Path(r["path"]).name for r in rows) == ["caf\\xe9.png", "plain.png"]
    assert all(r["label"] for r in rows)
    assert "caf\\\\xe9.png" in js.read_text(encoding="utf-8")
    s = ReviewSession.open_folder(folder, class_names=list(classifier.class_names))
    i = next(i for i, it in enumerate(s.items) if it.path.name != "plain.png")
    s.set_verdict(i, classifier.class_names[0])
    again = ReviewSession.open_folder(folder, class_names=list(classifier.class_names))
    assert again.items[i].verdict.label == classifier.class_names[0]


def test_a_cell_a_spreadsheet_would_run_is_written_as_text():
    names = ["=cmd", "b"]
    rows = [report.make_row("=HYPERLINK(\"http://x\").png", names, np.array([0.75, 0.25]),
                            unknown_score=np.float32(-1.5)),
            report.make_row("-x.png", names, None, "@SUM(1) cannot be read")]
    table = list(csv.reader(io.StringIO(report.csv_text(rows, names))))
    header = table[0]
    assert "'=cmd" in header
    first, second = dict(zip(header, table[1])), dict(zip(header, table[2]))
    assert first["path"] == "'=HYPERLINK(\"http://x\").png" and first["label"] == "'=cmd"
    assert first["'=cmd"] == "0.750000"
    assert first["unknown_score"] == "-1.500000"     # a number is not text: no apostrophe
    assert second["path"] == "'-x.png" and second["error"] == "'@SUM(1) cannot be read"
    assert report.text_cell("x=1") == "x=1" and report.text_cell("\tx") == "'\tx"


@pytest.mark.parametrize("count", [0, 3])
def test_the_json_export_is_written_as_it_is_made_with_the_same_text(tmp_path, count):
    """Written one result at a time (a 30,000-image document held whole took about 7 KB of
    memory an image), the file reads exactly as json.dumps(document, indent=1) of old."""
    names = ["a", "b\u2028c", "é"]
    folder = tmp_path / "coil\u2028 7"
    folder.mkdir()
    for k in range(count):
        Image.fromarray(texture(k, 32)).save(folder / f"img{k}\u00e9.png")
    s = ReviewSession.open_folder(folder, class_names=names)
    s.model_name, s.model_version = "Net \"x\"", "1"
    for i in range(count):
        s.set_prediction(i, np.array([0.2, 0.5, 0.3]), unknown_score=float(i) - 1, known=i != 2)
    if count:
        s.set_verdict(0, "b\u2028c")
    tiles = {report.path_text(s.items[0].path): [report.make_row(
        s.items[0].path, names, np.array([0.1, 0.1, 0.8]), tile=Roi(0, 0, 16, 16))]} if count \
        else None
    out = report.export_json(s, tmp_path / "r.json", tiles=tiles)
    doc = report.json_document(report.session_rows(s), names, model=s.model_name,
                               model_version="1", summary=s.folder_summaries(), tiles=tiles)
    doc["folder"] = str(folder)
    assert out.read_text(encoding="utf-8") == json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    assert len(json.loads(out.read_text(encoding="utf-8"))["results"]) == count


def test_temporary_files_of_killed_writes_are_cleared_by_the_next_write(tmp_path):
    """A write killed half-way leaves its temporary file beside the target (a crash audit found
    them piling up in an export folder); the next write of the same file removes those old
    enough to be a dead writer's, and leaves a recent one (another writer at work) alone."""
    import os
    import time

    from inspector import report
    from training.bundle import STALE_TEMP_S, TEMP_SUFFIX

    out = tmp_path / "r[1].csv"   # glob characters in the name
    dead = tmp_path / f".{out.name}.abc123{TEMP_SUFFIX}"
    busy = tmp_path / f".{out.name}.def456{TEMP_SUFFIX}"
    other = tmp_path / f".other.csv.ghi789{TEMP_SUFFIX}"
    for p in (dead, busy, other):
        p.write_text("half")
    old = time.time() - STALE_TEMP_S - 60
    for p in (dead, other):
        os.utime(p, (old, old))
    report.write_text_atomic(out, "a,b\n")
    assert out.read_text() == "a,b\n"
    assert not dead.exists() and busy.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, busy.name, other.name])


def test_session_tile_rows_are_made_as_they_are_written_and_keep_their_columns(tmp_path):
    """The window's tile rows: made per image as the export writes it (a folder of large
    frames held every tile row at once), only for images still classified, and the tile
    columns are there even when no image was tiled, as `inspector classify --tiles` writes."""
    from inspector.tiles import TiledVerdict
    from synth import texture

    names = ["a", "b"]
    folder = tmp_path / "f"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(texture(k, 32)).save(folder / f"img{k}.png")
    s = ReviewSession.open_folder(folder, class_names=names)
    for i in range(2):
        s.set_prediction(i, np.array([0.3, 0.7]), unknown_score=1.0, known=True)
    t = TiledVerdict([Roi(0, 0, 16, 16), Roi(16, 0, 16, 16)], (1, 2), (16, 32), 0.0, names,
                     np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0.5, 2.0]),
                     np.array([True, False]), 1)
    rows = report.SessionTileRows(s, {0: t, 2: t, 7: t})   # 2: not classified; 7: not there
    assert list(rows) == [report.path_text(s.items[0].path)] and rows.count() == 2
    out = report.export_csv(s, tmp_path / "r.csv", tiles=rows)
    got = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["tile_x"] for r in got] == ["", "0", "16", "", ""]
    assert [r["label"] for r in got[1:3]] == ["a", "unknown"]
    none = report.export_csv(s, tmp_path / "n.csv", tiles=report.SessionTileRows(s, {}))
    none = list(csv.DictReader(none.open(encoding="utf-8")))
    assert len(none) == 3 and "tile_x" in none[0]
    plain = list(csv.DictReader(report.export_csv(s, tmp_path / "p.csv").open(encoding="utf-8")))
    assert "tile_x" not in plain[0]
