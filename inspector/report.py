"""Results as CSV and JSON (the GUI's export and the headless batch command write the same
columns) and the per-folder summary. Qt-free.

CSV columns: ``path, label, confidence, <one column per class name>, unknown_score, known,
top_class, error, note, verdict, verdict_time, overridden, model, model_version, time`` (``time``:
when the image was classified). ``label`` is ``unknown`` when the unknown detector flags the image
(``known`` false); ``top_class`` is then still the most probable class, and ``confidence`` its
probability. An image without any contrast (a capped lens, a black or saturated frame) is unknown
with an empty ``unknown_score`` (infinite: JSON null) and ``top_class`` (its probabilities are
even), and ``note`` says why; ``note`` also names the share of an image (or a tile) that is padding
around its surface (training.padding: a turned or letterboxed frame's constant fill, replaced
by the surface beside it before the model reads it). ``unknown_score`` is empty for a model
without a detector. With tile rows
(``inspector classify --tiles``), ``tile_x, tile_y, tile_w, tile_h`` follow ``path``: empty in an
image's row, the tile's rectangle in image pixels in each of its tiles' rows. In JSON each tiled
image's result holds its tile rows as a list ``tiles``. A tiled image's ``unknown_score`` and its
tiles' are on the scale of one image (``inspector.tiles.on_image_scale``: set against the number
of tiles, so that the *Accept as known* share holds for images), comparable with a whole image's.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
from collections import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TextIO

import numpy as np

from training.bundle import replace_file_atomic
from training.images import is_image_file
from training.padding import MOSTLY

from .engine import BLANK_TEXT, UNKNOWN, is_blank_score
from .session import UNSURE, ReviewSession

UNKNOWN_COLUMNS = ("unknown_score", "known", "top_class")
TILE_COLUMNS = ("tile_x", "tile_y", "tile_w", "tile_h")
TAIL_COLUMNS = ("error", "note", "verdict", "verdict_time", "overridden", "model", "model_version", "time")


FIXED_COLUMNS = frozenset(("path", *TILE_COLUMNS, "label", "confidence", *UNKNOWN_COLUMNS,
                           *TAIL_COLUMNS))


def probability_column(class_name: str) -> str:
    """The column of a class's probability: its name, or for a class named like a fixed column
    (a plant's class "note" or "time") its name with " (probability)": the CSV had two "time"
    columns, and the class's probability was overwritten by the timestamp."""
    return f"{class_name} (probability)" if class_name in FIXED_COLUMNS else class_name


def columns(class_names: Sequence[str], tiles: bool = False) -> list[str]:
    return ["path", *(TILE_COLUMNS if tiles else ()), "label", "confidence",
            *map(probability_column, class_names), *UNKNOWN_COLUMNS, *TAIL_COLUMNS]


def path_text(path: str | Path) -> str:
    """A path as text any UTF-8 file can hold: a file name that is not valid UTF-8 (copied from
    a Windows share or a USB stick, which Linux reads as undecodable bytes) keeps its other
    characters, and its odd bytes are written as \\xNN."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def make_row(path: str | Path, class_names: Sequence[str], probs: np.ndarray | None = None,
             error: str | None = None, *, model: str = "", model_version: str = "",
             time: str | None = None, verdict: str | None = None, verdict_time: str | None = None,
             overridden: bool | None = None, unknown_score: float | None = None,
             known: bool = True, tile=None, padding: float = 0.0) -> dict:
    """One result as a dict: probabilities under each class name, None where not classified;
    ``label`` is ``unknown`` for an image the unknown detector flags; ``known`` is None (an
    empty cell) when no detector judged it (``unknown_score`` None). ``tile`` (an
    inspector.tiles.Roi) makes it a tile's row."""
    row: dict = {"path": path_text(path), "label": None, "confidence": None}
    for c, v in zip(TILE_COLUMNS, (tile.x, tile.y, tile.w, tile.h) if tile else (None,) * 4):
        row[c] = v
    top = None
    # a frame of one colour throughout (padding 1.0) is blank with or without a detector
    blank = probs is not None and (is_blank_score(unknown_score) or padding >= 1.0)
    if probs is not None:
        probs = np.asarray(probs, np.float64)
        li = int(np.argmax(probs))
        top = class_names[li] if li < len(class_names) else str(li)
        row["label"] = top if known and not blank else UNKNOWN
        row["confidence"] = float(probs[li])
    for ci, name in enumerate(class_names):
        row[probability_column(name)] = (float(probs[ci]) if probs is not None
                                         and ci < len(probs) else None)
    row["unknown_score"] = unknown_score if probs is not None and not blank else None
    # not judged (no detector): empty, not "true", which would read as accepted by one
    row["known"] = (bool(known) and not blank) if probs is not None and unknown_score is not None \
        else None
    row["top_class"] = None if blank else top   # even probabilities: no class is closest
    note = (BLANK_TEXT if blank else padding_note(padding)) \
        if probs is not None else None
    row.update(error=error, note=note, verdict=verdict,
               verdict_time=verdict_time, overridden=overridden, model=model,
               model_version=model_version, time=time)
    return row


def padding_note(share: float) -> str | None:
    """The ``note`` of an image (or tile) with padding around its surface (training.padding)."""
    if not share:
        return None
    if share < MOSTLY:
        return (f"padding: {share:.0%} of the frame is fill around its surface (a turned or "
                "letterboxed frame), read as the surface beside it")
    return (f"mostly padding: {share:.0%} of the frame is fill around its surface, too little "
            "surface to read well")


def tile_rows(path: str | Path, t, class_names: Sequence[str], *, model: str = "",
              model_version: str = "", time: str | None = None) -> list[dict]:
    """A tiled image's rows, one per tile with its rectangle (``t``: its
    inspector.tiles.TiledVerdict): in a CSV after the image's row, in JSON as the image's
    ``tiles``. ``inspector classify --tiles`` and the window's export write the same."""
    return [make_row(path, class_names, t.probs[i], model=model, model_version=model_version,
                     time=time, unknown_score=t.score(i), known=bool(t.known[i]), tile=box,
                     padding=0.0 if t.padding is None else float(t.padding[i]))
            for i, box in enumerate(t.tiles)]


class SessionTileRows(abc.Mapping):
    """The tile rows of a session's tiled images (``tiles``: session index -> its TiledVerdict),
    by the ``path`` text of the image's row, as ``export_csv`` and ``export_json`` take them:
    each image's rows made when they are written (a folder of 16-megapixel frames has hundreds
    of tiles an image, about 1 kB a row). An image whose result was taken back (classified
    again, an error) is left out."""

    def __init__(self, session: ReviewSession, tiles: Mapping[int, object]):
        self._session = session
        self._index = {}
        for i, t in tiles.items():
            if 0 <= i < len(session.items) and t is not None \
                    and session.items[i].probs is not None:
                self._index[path_text(session.items[i].path)] = (i, t)

    def __getitem__(self, path: str) -> list[dict]:
        i, t = self._index[path]
        s, it = self._session, self._session.items[i]
        return tile_rows(it.path, t, s.class_names, model=s.model_name,
                         model_version=s.model_version, time=it.classified_at)

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def count(self) -> int:
        """How many tile rows there are."""
        return sum(len(t.tiles) for _, t in self._index.values())


def session_rows(session: ReviewSession, indices: Iterable[int] | None = None) -> list[dict]:
    return list(iter_session_rows(session, indices))


def iter_session_rows(session: ReviewSession, indices: Iterable[int] | None = None):
    """``session_rows`` one at a time (a large export never holds them all)."""
    idx = range(len(session.items)) if indices is None else indices
    for i in idx:
        it = session.items[i]
        v = it.verdict
        yield make_row(
            it.path, session.class_names, it.probs, it.error,
            model=session.model_name, model_version=session.model_version, time=it.classified_at,
            verdict=v.label if v else None, verdict_time=v.time if v else None,
            overridden=session.is_overridden(i) if (v and v.label != UNSURE) else None,
            unknown_score=it.unknown_score, known=it.known, padding=it.padding)


# A cell starting with one of these is read as a formula by Excel and LibreOffice (a file
# named "=HYPERLINK(...).png", a class folder named "+cmd"); OWASP's advice is a leading
# apostrophe, which the spreadsheet hides and keeps the text as text. Numbers are not text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(text: str) -> str:
    """``text`` as a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV is written: the plain format (``,`` between cells, ``.`` in numbers, no
    byte-order mark) that scripts read, or a spreadsheet's (``spreadsheet_csv``)."""
    delimiter: str = ","
    decimal: str = "."
    bom: bool = False


PLAIN_CSV = CsvFormat()


def spreadsheet_csv(decimal_point: str) -> CsvFormat:
    """The CSV that Excel opens by a double click on a PC whose numbers use ``decimal_point``:
    UTF-8 with a byte-order mark (without it Excel reads the file in the PC's old code page:
    "Kontrola_jakoĹ›ci"), and where the decimal mark is a comma (German, Polish, Czech,
    Brazilian... settings) ``;`` between cells and ``,`` in numbers, as Excel writes its own
    CSV there (with ``,`` every row landed in one column; a locale audit)."""
    if decimal_point == ",":
        return CsvFormat(";", ",", True)
    return CsvFormat(",", ".", True)


def csv_writer(stream: TextIO, fmt: CsvFormat = PLAIN_CSV):
    """A ``csv.writer`` in ``fmt`` on ``stream``, the byte-order mark written first if it has
    one."""
    if fmt.bom:
        stream.write("\ufeff")
    return csv.writer(stream, lineterminator="\n", delimiter=fmt.delimiter)


def _cell(value, decimal: str = ".") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):   # Python's and NumPy's floats alike
        text = f"{float(value):.6f}"
        return text.replace(".", decimal) if decimal != "." else text
    return text_cell(str(value))


def _known_cell(value) -> str:
    return "" if value is None else ("true" if value else "false")


class CsvWriter:
    """Writes rows one at a time (flushed), e.g. while a batch runs."""

    def __init__(self, stream: TextIO, class_names: Sequence[str], tiles: bool = False,
                 fmt: CsvFormat = PLAIN_CSV):
        self.columns = columns(class_names, tiles)
        self._stream = stream
        self._decimal = fmt.decimal
        self._w = csv_writer(stream, fmt)
        self._w.writerow([text_cell(c) for c in self.columns])

    def write(self, row: dict) -> None:
        self._w.writerow([_known_cell(row.get(c)) if c == "known"
                          else _cell(row.get(c), self._decimal) for c in self.columns])
        # each row reaches the file at once: a run killed outright (the out-of-memory killer, a
        # power cut of the process) keeps every row written before
        self._stream.flush()

    def flush(self) -> None:
        self._stream.flush()


def csv_text(rows: Iterable[dict], class_names: Sequence[str], fmt: CsvFormat = PLAIN_CSV,
             tiles: Mapping[str, list[dict]] | None = None) -> str:
    """The rows as CSV; with ``tiles`` (tile rows by their image's ``path`` text, even none)
    the tile columns, and each tiled image's tile rows after its own row."""
    buf = io.StringIO()
    w = CsvWriter(buf, class_names, tiles=tiles is not None, fmt=fmt)
    for r in rows:
        w.write(r)
        if tiles is not None and r["path"] in tiles:
            for t in tiles[r["path"]]:
                w.write(t)
    return buf.getvalue()


def _json_result(row: dict, class_names: Sequence[str]) -> dict:
    # JSON has no infinity (a blank image's unknown score is +inf: nothing like the training
    # images); null keeps the file readable by every JSON parser
    r = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    r["probabilities"] = {c: r.pop(probability_column(c)) for c in class_names}
    return r


def json_document(rows: list[dict], class_names: Sequence[str], *, model: str = "",
                  model_version: str = "", summary: dict | None = None,
                  tiles: Mapping[str, list[dict]] | None = None) -> dict:
    """``tiles``: tile rows (``make_row(..., tile=...)``) by their image's ``path`` text; each
    such image's result gets them as a list ``tiles``, with their rectangles."""
    doc = {"model": {"name": model, "version": model_version}, "class_names": list(class_names),
           "results": list(_json_results(rows, class_names, tiles))}
    if summary is not None:
        doc["summary"] = summary
    return doc


def _json_results(rows: Iterable[dict], class_names: Sequence[str],
                  tiles: Mapping[str, list[dict]] | None):
    for row in rows:
        r = _json_result(row, class_names)
        if tiles and r["path"] in tiles:
            r["tiles"] = [_json_result(t, class_names) for t in tiles[r["path"]]]
        yield r


def _json_text(value, depth: int) -> str:
    """``value`` as ``json.dumps(..., indent=1)`` writes it at ``depth`` inside a document (a
    JSON string never holds a raw line break, so every one is a line of the layout)."""
    return json.dumps(value, indent=1, ensure_ascii=False).replace("\n", "\n" + " " * depth)


def write_json_document(f: TextIO, head: Mapping, results: Iterable[dict], tail: Mapping) -> None:
    """Writes ``{**head, "results": [...], **tail}`` as ``json.dumps(doc, indent=1)`` would,
    one result at a time: a 30,000-image document held as one string (and its bytes) took
    about 7 KB of memory an image."""
    f.write("{")
    for key, value in head.items():
        f.write(f"\n {json.dumps(key)}: {_json_text(value, 1)},")
    f.write('\n "results": [')
    first = True
    for r in results:
        f.write(("\n  " if first else ",\n  ") + _json_text(r, 2))
        first = False
    f.write("]" if first else "\n ]")
    for key, value in tail.items():
        f.write(f",\n {json.dumps(key)}: {_json_text(value, 1)}")
    f.write("\n}\n")


READ_ONLY_TEXT = ("the file is read-only (an earlier result kept on purpose?); give another "
                  "name, or make it writable")


def read_only_problem(path: Path) -> str | None:
    """An earlier results file made read-only, in words: replacing it would succeed (it needs
    only the folder's permission), so it is refused instead. None otherwise."""
    return f"{path}: {READ_ONLY_TEXT}" if path.is_file() and not os.access(path, os.W_OK) else None


def export_path_problem(path: str | Path, kinds: Sequence[str] = ("csv", "json")) -> str | None:
    """Why the window cannot export to ``path`` (a message naming it), or None: an image file
    (results written over an image under review), a folder, a suffix other than the formats
    written (a results.xlsx would silently hold CSV), or a folder that is gone (a network
    share's mount point that dropped: writing would make a new folder on the local disk)."""
    path = Path(path)
    try:
        if path.is_dir():
            return f"{path}: is a folder; give a file name"
        if is_image_file(path):
            return f"{path}: is an image file name; the results would replace an image"
        suffix = path.suffix.lower().lstrip(".")
        if suffix not in kinds:
            wanted = " or ".join(f".{k}" for k in kinds)
            return (f"{path}: results are written as {wanted}, not "
                    f"{'.' + suffix if suffix else 'a file without a suffix'}; give a {wanted} "
                    "name")
        if not path.parent.is_dir():
            return f"{path}: the folder {path.parent} does not exist (any more)"
        return read_only_problem(path)
    except OSError as exc:   # a name too long, a folder on the way without permission
        return f"{path}: cannot write there ({exc.strerror or exc})"


def with_suffix_for(path: str, kind: str) -> str:
    """A name typed in the save dialog, with ``.kind`` added unless it already ends in a results
    format or names an image (which the export then refuses): "coil 12.5mm" becomes
    "coil 12.5mm.csv", not a refusal of the suffix ".5mm"."""
    if Path(path).suffix.lower() in (".csv", ".json") or is_image_file(Path(path)):
        return path
    return f"{path}.{kind}"


def write_text_atomic(path: str | Path, text: str | Callable[[TextIO], None]) -> Path:
    """Writes a file via a temporary file beside it, so that a crash never leaves half a file;
    ``text`` the text, or a function that writes it to the open file (a large document written
    as it is made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not callable(text):
        # backslashreplace: a folder name that is not valid UTF-8 (in a summary) cannot stop it
        replace_file_atomic(path, text.encode("utf-8", "backslashreplace"))
        return path

    def write(binary) -> None:
        stream = io.TextIOWrapper(binary, encoding="utf-8", errors="backslashreplace",
                                  newline="\n")
        text(stream)
        stream.flush()
        stream.detach()   # the file stays open for its flush and fsync

    replace_file_atomic(path, write)
    return path


def export_csv(session: ReviewSession, path: str | Path, indices: Iterable[int] | None = None,
               fmt: CsvFormat = PLAIN_CSV, tiles: Mapping[str, list[dict]] | None = None) -> Path:
    """``tiles``: tile rows by their image's ``path`` text (``SessionTileRows``), written
    after their image's row, with the tile columns (also when no image was tiled, as
    `inspector classify --tiles` writes them)."""
    return write_text_atomic(path, csv_text(session_rows(session, indices), session.class_names,
                                            fmt, tiles))


def export_json(session: ReviewSession, path: str | Path, indices: Iterable[int] | None = None,
                tiles: Mapping[str, list[dict]] | None = None) -> Path:
    """The results as ``json_document`` (and ``folder``), written as they are made."""
    names = session.class_names
    head = {"model": {"name": session.model_name, "version": session.model_version},
            "class_names": list(names)}
    # folders named as the rows name their files (path_text): a folder name that is not UTF-8
    # on disk was written as a lone surrogate, which JSON readers refuse and no row matched
    tail = {"summary": {path_text(k): v for k, v in session.folder_summaries().items()}}
    if session.root is not None:
        tail["folder"] = path_text(session.root)
    results = _json_results(iter_session_rows(session, indices), names, tiles)
    return write_text_atomic(path, lambda f: write_json_document(f, head, results, tail))


SUMMARY_COLUMNS = ("folder", "images", "classified", "errors", "mean_confidence", "needs_review",
                   "unknown", "reviewed", "accepted", "overrides", "unsure")


def summary_table(session: ReviewSession, summaries: dict[str, dict] | None = None
                  ) -> tuple[list[str], list[list]]:
    """The per-folder summary as a table: header and rows (one per folder, "(all)" first), of
    ``summaries`` (``session.folder_summaries()`` when not given)."""
    header = [*SUMMARY_COLUMNS, *session.class_names]
    rows = []
    for folder, s in (summaries or session.folder_summaries()).items():
        rows.append([path_text(folder), *(s[c] for c in SUMMARY_COLUMNS[1:]),
                     *(s["per_class"].get(c, 0) for c in session.class_names)])
    return header, rows


def export_summary_csv(session: ReviewSession, path: str | Path,
                       fmt: CsvFormat = PLAIN_CSV) -> Path:
    header, rows = summary_table(session)
    buf = io.StringIO()
    w = csv_writer(buf, fmt)
    w.writerow([text_cell(c) for c in header])
    for r in rows:
        w.writerow([_cell(v, fmt.decimal) for v in r])
    return write_text_atomic(path, buf.getvalue())


UNKNOWN_RATE_TIP = ("Share of these images flagged unknown, against the share of the model's own "
                    "validation images flagged at this setting: far more here suggests that the "
                    "line has drifted from what the model knows.")


def unknown_rate_text(flagged: int, judged: int, validation_rate: float | None,
                      available: bool = True) -> str:
    """The drift signal of the status bars, e.g. "unknown 12% of 200 (model's validation: 5%)";
    "unknown detection unavailable for this model" for a model without a detector."""
    if not available:
        return "unknown detection unavailable for this model"
    share = f"unknown {flagged / judged:.0%} of {judged}" if judged else "unknown —"
    return share if validation_rate is None else f"{share} (model's validation: {validation_rate:.0%})"


def device_status_text(device: str) -> str:
    """The status bar's device text: the runtime and why it was chosen, without the measured
    times that the tooltip shows in full, e.g. "device: CPU, LiteRT fp16 (fastest here)" for
    "CPU, LiteRT fp16 (fastest here: fp32 2.1 ms, fp16 1.7 ms, int8 2.8 ms)". At 1,400 pixels
    the whole text pushed the folder's summary and the unknown share out of the status bar."""
    head, sep, rest = device.partition(" (")
    if not sep:
        return f"device: {device}"
    why = rest.split(":", 1)[0].split(";", 1)[0].rstrip(")")
    return f"device: {head} ({why})"


def summary_text(summary: dict, per_class: bool = True) -> str:
    """A short human-readable summary (for the batch command; the status bar leaves the
    per-class counts, ``per_class=False``, to the Summary dialog so that it fits)."""
    parts = [f"{summary['classified']}/{summary['images']} classified"]
    if summary["errors"]:
        parts.append(f"{summary['errors']} unreadable")
    if summary["mean_confidence"] is not None:
        parts.append(f"mean confidence {summary['mean_confidence']:.1%}")
    if summary.get("unknown"):
        parts.append(f"{summary['unknown']} unknown (not a known defect)")
    counts = ", ".join(f"{k} {v}" for k, v in summary["per_class"].items() if v)
    if counts and per_class:
        parts.append(counts)
    if summary["reviewed"]:
        parts.append(f"{summary['reviewed']} reviewed ({summary['overrides']} overridden, "
                     f"{summary['unsure']} unsure)")
    return "; ".join(parts)
