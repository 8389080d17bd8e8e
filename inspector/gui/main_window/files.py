"""The main window's file actions: opening folders and files in the background, adding files,
exports, the summary and drag and drop (a mixin of MainWindow)."""
from __future__ import annotations

import functools
import logging
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from PySide6.QtCore import QLocale, Qt, QTimer
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from training.images import listing_problem

from ... import report
from ...batch import collect_paths
from ...session import ReviewSession, changed_since_classified, scan_images
from ...settings import Key
from ..screen import resize_to_fit
from ..workers import Task, wait_visibly
from .layout import (EXPORT_CLOSE_GRACE_S, IMAGE_FILTER, MESSAGE_LONG_MS, MESSAGE_MS, SUMMARY_DIALOG_SIZE,
                     SUMMARY_REFRESH_MS, paced)

log = logging.getLogger(__name__)


CSV_FILTER = "CSV (*.csv)"
EXCEL_CSV_FILTER = "CSV for Excel on this PC (*.csv)"


class FileActions:
    """Opening folders and files (in the background), adding files, exports, the summary and
    drag and drop (a mixin of MainWindow)."""

    # ========================================================================================
    # Opening images

    def choose_folder(self) -> None:
        start = self.settings.get_str(Key.LAST_FOLDER)
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.open_folder(folder)

    def choose_files(self) -> None:
        start = self.settings.get_str(Key.LAST_FOLDER)
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", start, IMAGE_FILTER + ";;All files (*)")
        if files:
            self.open_files(files)

    def open_paths(self, paths: Iterable[str | Path]) -> None:
        """A single folder opens as a folder; anything else as a set of files."""
        paths = [Path(p) for p in paths]
        missing = [p for p in paths if not p.exists()]
        if missing:
            self._inform("Cannot open", "Not found: " + ", ".join(map(str, missing)))
            paths = [p for p in paths if p.exists()]
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif paths:
            recursive, names, threshold = (self.recursive_action.isChecked(), self._class_names(),
                                           self.session.threshold)

            def open_items() -> ReviewSession:
                unlisted: list[OSError] = []
                session = ReviewSession.open_files(collect_paths(paths, recursive, unlisted),
                                                   names, threshold)
                session.listing_problems = [listing_problem(e) for e in unlisted]
                return session

            self._open_in_background(open_items, f"Opening {len(paths)} items…",
                                     paths[0].absolute().parent)

    def open_folder(self, folder: str | Path, recursive: bool | None = None) -> None:
        """Lists the folder's images in the background (a network share can take a while) and
        then shows them; ``session_opened`` tells when."""
        recursive = self.recursive_action.isChecked() if recursive is None else recursive
        folder = Path(folder)
        names, threshold = self._class_names(), self.session.threshold
        self._open_in_background(lambda: ReviewSession.open_folder(folder, recursive, names, threshold),
                                 f"Opening {folder}…", folder.absolute(), folder)

    def open_files(self, paths: Iterable[str | Path]) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        session = ReviewSession.open_files(paths, self._class_names(), self.session.threshold)
        self._listed_folder = None
        self._open_token += 1   # a folder still being listed must not replace these files
        self.list.unsetCursor()
        self.settings.set(Key.LAST_FOLDER, str(paths[0].absolute().parent))
        self._set_session(session)

    def refresh_folder(self) -> None:
        """F5: the open folder listed again (in the background), and the images that came since
        it was opened added and classified; the others keep their results and verdicts (a line
        keeps writing into the folder a shift reviews)."""
        folder = self._listed_folder
        if folder is None or self.session.root is None:
            self.statusBar().showMessage("No folder is open to refresh (File ▸ Open folder…)",
                                         MESSAGE_MS)
            return
        recursive, session, token = self.recursive_action.isChecked(), self.session, \
            self._open_token
        self.statusBar().showMessage(f"Listing {folder} again…")
        # the files already shown are looked at too: one written again under its name since
        # it was classified (a camera's ring buffer) is classified again
        classified = [(i, it.path, it.classified_at, it.error is not None, it.seen)
                      for i, it in enumerate(session.items) if it.classified_at]

        def listed(found: tuple[list[Path], list[int]]) -> None:
            if token != self._open_token or self.session is not session:
                return   # another folder was opened meanwhile
            paths, (changed, seen), records = found
            session.note_seen(seen)
            elsewhere = session.take_journal(records)
            for i in elsewhere:
                self.thumb_model.item_changed(i)
            if elsewhere:
                self._update_verdict_label()
                self._view_timer.start()   # filters by verdict see them
            # into this session, also when it was empty (add_files would open them as a set
            # of files instead, and the folder would no longer be the one open)
            new = [p for p in paths if session.index_of(p) is None]
            self._classify_again(changed)
            self._add_to_session(new)
            said = [f"{len(new)} new image{'s' if len(new) != 1 else ''}"] if new else []
            if elsewhere:
                said.append(f"{len(elsewhere)} verdict{'s' if len(elsewhere) != 1 else ''} "
                            "given elsewhere since (another window or PC) taken in")
            if changed:
                judged = sum(session.items[i].verdict is not None for i in changed)
                said.append(f"{len(changed)} changed or gone since classified (classifying "
                            "again" + (f"; {judged} of them with a verdict given before: check "
                                       "it" if judged else "") + ")")
            self.statusBar().showMessage(
                f"{', '.join(said)} in {folder}" if said else f"No new images in {folder}",
                MESSAGE_MS)

        def look_again(progress, should_stop):
            paths = scan_images(folder, recursive)
            return (paths, changed_since_classified(classified),
                    session.read_journal({p.parent for p in paths}))

        self._tasks.start(look_again, done=listed,
                          failed=lambda msg: self._inform("Cannot refresh", msg))

    def _changed_when_shown(self, idx: int) -> None:
        """The image being shown classified again where its result came from another file than
        the one there now (written again under its name, or gone; one stat)."""
        it = self.session.items[idx]
        if not self.session.is_classified(idx):
            return
        changed, seen = changed_since_classified(
            [(idx, it.path, it.classified_at, it.error is not None, it.seen)])
        self.session.note_seen(seen)
        self._classify_again(changed, inspect=False)

    def _classify_again(self, indices: list[int], inspect: bool = True) -> None:
        """The images at ``indices`` classified again: their files changed or went since they
        were classified, and the results shown (and exported) were another file's. Verdicts
        stay. ``inspect``: the shown one among them is inspected again too."""
        if not indices:
            return
        self._n_done -= self.session.forget_predictions(indices)
        for i in indices:
            self._tile_results.pop(i, None)
        self.thumb_model.forget(indices)
        self._done_announced = False
        self.thumb_model.items_changed(indices)
        self._apply_view()
        self._enqueue(indices)
        if self._current in indices:
            self._update_verdict_label()
            if inspect:
                self._shown_key = None
                self._request_inspection(self._current)

    def _recursive_toggled(self, on: bool) -> None:
        """File ▸ Include sub-folders: saved, and the open folder listed again with it (its
        verdicts are in its journal; its images are classified again)."""
        self.settings.set(Key.RECURSIVE, on)
        folder = self._listed_folder
        if folder is not None and self.session.root is not None:
            self.open_folder(folder, on)

    def _open_in_background(self, make_session, message: str, last_folder: Path,
                            folder: Path | None = None) -> None:
        """``folder``: the folder being opened as one (None: a set of files)."""
        self._open_token += 1
        token = self._open_token
        self.statusBar().showMessage(message)
        self.list.setCursor(Qt.CursorShape.BusyCursor)
        self._tasks.start(lambda progress, should_stop: make_session(),
                          done=lambda session, t=token: self._opened(t, session, last_folder,
                                                                     folder),
                          failed=lambda msg, t=token: self._open_failed(t, msg))

    def _opened(self, token: int, session: ReviewSession, last_folder: Path,
                folder: Path | None = None) -> None:
        if token != self._open_token:
            return  # something else was opened meanwhile
        self._listed_folder = folder   # listed again when Include sub-folders changes
        self.list.unsetCursor()
        self.statusBar().clearMessage()
        self.settings.set(Key.LAST_FOLDER, str(last_folder))
        self._set_session(session)
        if session.listing_problems:   # images missing from the list: never without a word
            self._inform_unlisted(session.listing_problems, session.left_out_note)
        elif session.left_out_note:
            self.statusBar().showMessage(session.left_out_note[0].upper() + session.left_out_note[1:],
                                         MESSAGE_LONG_MS)
        elif not len(session):
            self.statusBar().showMessage(f"No images (BMP, PNG, JPEG, TIFF) in {last_folder}", MESSAGE_LONG_MS)

    def _inform_unlisted(self, problems: list[str], also: str | None = None) -> None:
        """Says which folders could not be listed (their images are missing), and ``also``."""
        more = len(problems) - 5
        self._inform("Some folders cannot be listed",
                     "\n".join(problems[:5]) + (f"\n... and {more} more" if more > 0 else "")
                     + (f"\n\nAlso: {also}." if also else ""))

    def _open_failed(self, token: int, message: str) -> None:
        if token == self._open_token:
            self.list.unsetCursor()
            self._inform("Cannot open", message)

    def add_files(self, paths: Iterable[str | Path]) -> list[int]:
        """Adds images to the session under review (e.g. camera snapshots); returns indices."""
        paths = [Path(p) for p in paths]
        if self.session.root is None or not len(self.session):
            self.open_files(paths)
            return list(range(len(self.session)))
        new = self._add_to_session(paths)
        if new:
            self.statusBar().showMessage(f"Added {', '.join(p.name for p in paths[:3])}"
                                         + (" …" if len(paths) > 3 else ""), MESSAGE_MS)
        return new

    def _add_to_session(self, paths: list[Path]) -> list[int]:
        """Adds images to the open session (its root and journal as they are), queued for
        classification and shown; returns the new indices."""
        new = self.session.add_paths(paths)
        if new:
            self._enqueue(new)
            self._apply_view()
        return new

    # ========================================================================================
    # Export

    def _choose_export(self, kind: str, tiles: bool | None = None) -> None:
        if not len(self.session):
            self._inform("Nothing to export", "Open a folder of images first.")
            return
        start = self.settings.get_str(Key.LAST_EXPORT_FOLDER) or str(self.session.root or "")
        name = f"{(self.session.root or Path('results')).name}-results.{kind}"
        if kind == "csv":
            path, fmt = self._ask_csv_path(self, "Export results as CSV", str(Path(start) / name))
        else:
            path, _ = QFileDialog.getSaveFileName(self, f"Export results as {kind.upper()}",
                                                  str(Path(start) / name),
                                                  f"{kind.upper()} (*.{kind})")
            fmt = None
        if path:   # a name typed without the format's suffix gets it
            self.export(report.with_suffix_for(path, kind), kind, fmt, tiles)

    def _ask_csv_path(self, parent, title: str, start: str) -> tuple[str, report.CsvFormat]:
        """A CSV's file and format: plain (scripts read it) or for Excel on this PC (a
        byte-order mark; ";" and "," where numbers take a decimal comma), the last choice
        first."""
        excel = self.settings.get_bool(Key.CSV_FOR_EXCEL)
        filters = [CSV_FILTER, EXCEL_CSV_FILTER]
        path, chosen = QFileDialog.getSaveFileName(parent, title, start, ";;".join(filters),
                                                   filters[excel])
        if not path:
            return "", report.PLAIN_CSV
        excel = chosen == EXCEL_CSV_FILTER
        self.settings.set(Key.CSV_FOR_EXCEL, excel)
        return path, (report.spreadsheet_csv(QLocale().decimalPoint()) if excel
                      else report.PLAIN_CSV)

    def export(self, path: str | Path, kind: str | None = None,
               fmt: report.CsvFormat | None = None, tiles: bool | None = None) -> Task | None:
        """Writes the results as they are now to ``path`` in a background task (returned; None
        when the path is refused, said): 30,000 images' JSON held the window for over a second.
        What is exported is a copy taken at once; classification and review go on meanwhile.
        ``tiles``: the tile rows of images read in tiles too, as `inspector classify --tiles`
        writes them (a CSV row per tile after its image's; JSON: the image's ``tiles``); by
        default in JSON, where they do not add rows, and not in a CSV (one row per image)."""
        problem = report.export_path_problem(path, (kind,) if kind else ("csv", "json"))
        kind = kind or Path(path).suffix.lower().lstrip(".")
        if problem:
            self._inform("Export failed", problem)
            return None
        snapshot = self.session.frozen_copy()
        with_tiles = kind == "json" if tiles is None else bool(tiles)
        # the tiles of images read in tiles, as they are now: each copied (a new Accept as
        # known setting replaces their verdicts, rejudge, while the export waits its turn)
        rows = (report.SessionTileRows(snapshot, {i: replace(t) for i, t in
                                                  self._tile_results.items()})
                if with_tiles else None)
        pending = len(snapshot.pending())
        write = (report.export_json if kind == "json"
                 else functools.partial(report.export_csv, fmt=fmt or report.PLAIN_CSV))
        previous = self._export_task

        def work(progress, should_stop):
            if previous is not None:   # in the order asked: a later export to the same file
                previous.finished.wait()   # is never overwritten by an earlier, slower one
            try:
                return write(snapshot, path, tiles=rows)
            except OSError as exc:   # said as the file system says it, not as a traceback
                raise OSError(f"{path}: {exc.strerror or exc}") from exc

        def done(out: Path) -> None:
            self.settings.set(Key.LAST_EXPORT_FOLDER, str(Path(path).absolute().parent))
            n_tiles = rows.count() if rows is not None else 0
            self.statusBar().showMessage(
                f"Exported {len(snapshot)} images"
                + (f" and their {n_tiles} tiles" if n_tiles else "") + f" to {out}"
                + (f"; {pending} not classified yet (their rows have no label: export again "
                   "when classification is done)" if pending else ""), MESSAGE_LONG_MS)

        self.statusBar().showMessage(f"Exporting {len(snapshot)} images to {path}…")
        self._export_task = self._tasks.start(
            work, done=done, failed=lambda message: self._inform("Export failed", message))
        self._export_path = Path(path)
        return self._export_task

    def finish_exports(self) -> bool:
        """Before the window closes: an export still being written (a large folder, a slow
        share) is waited for with a message naming its file, which the inspector may close
        without (a share that no longer answers). True when no export is left unfinished."""
        task = self._export_task
        if task is None:
            return True
        wait_visibly(self, "Closing", f"Finishing the export to {self._export_path}…",
                     task.finished.is_set, "&Close without it", EXPORT_CLOSE_GRACE_S)
        if not task.finished.is_set():
            log.warning("closed while %s was still being written: it is left as it was "
                        "before the export", self._export_path)
        return task.finished.is_set()

    def show_summary(self) -> QDialog:
        """The per-folder summary, kept up to date while it is open (classification and
        verdicts go on), so that what it exports is what it shows."""
        d = QDialog(self)
        d.setWindowTitle("Summary")
        d.table = QTableWidget(0, 0)
        d.table.setTabKeyNavigation(False)   # Tab leaves the table for the buttons
        d.headline = QLabel()
        d.headline.setWordWrap(True)   # its length grows with the classes: never wider than the screen
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        save = buttons.addButton("&Export summary as CSV…", QDialogButtonBox.ButtonRole.ActionRole)
        save.clicked.connect(lambda: self._export_summary(d))
        buttons.rejected.connect(d.reject)
        lay = QVBoxLayout(d)
        lay.addWidget(d.headline)
        lay.addWidget(d.table)
        lay.addWidget(buttons)
        resize_to_fit(d, *SUMMARY_DIALOG_SIZE)
        d.refresh = QTimer(d, interval=SUMMARY_REFRESH_MS)
        self._fill_summary(d)
        d.table.resizeColumnsToContents()
        d.refresh.timeout.connect(lambda: self._fill_summary(d))
        d.refresh.start()
        d.finished.connect(d.refresh.stop)
        d.show()
        self._keep(d)
        return d

    def _fill_summary(self, d: QDialog) -> None:
        """Fills the summary's table; again only when the session or its threshold changed
        (a summary of 20,000 images takes a sixth of a second of the GUI thread)."""
        shown = (id(self.session), self.session.changes, self.session.threshold)
        if getattr(d, "shown", None) == shown:
            return
        d.shown = shown
        paced(d.refresh, SUMMARY_REFRESH_MS, lambda: self._refill_summary(d))

    def _refill_summary(self, d: QDialog) -> None:
        summaries = self.session.folder_summaries()
        header, rows = report.summary_table(self.session, summaries)
        table = d.table
        table.setColumnCount(len(header))
        table.setRowCount(len(rows))
        table.setHorizontalHeaderLabels(header)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                text = "" if v is None else (f"{v:.1%}" if isinstance(v, float) and c > 0 and
                                              header[c] == "mean_confidence" else str(v))
                item = table.item(r, c)
                if item is None:
                    table.setItem(r, c, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)
        d.headline.setText(report.summary_text(summaries["(all)"]))

    def _export_summary(self, parent) -> None:
        path, fmt = self._ask_csv_path(parent, "Export summary", "summary.csv")
        if path:
            path = report.with_suffix_for(path, "csv")
            self.export_summary(path, fmt)

    def export_summary(self, path: str | Path,
                       fmt: report.CsvFormat | None = None) -> Path | None:
        """Writes the per-class summary as CSV; a failure is shown, naming the file."""
        problem = report.export_path_problem(path, ("csv",))
        if problem:
            self._inform("Export failed", problem)
            return None
        try:
            out = report.export_summary_csv(self.session, path, fmt or report.PLAIN_CSV)
        except OSError as exc:
            self._inform("Export failed", f"{path}: {exc.strerror or exc}")
            return None
        self.statusBar().showMessage(f"Exported the summary to {out}", MESSAGE_LONG_MS)
        return out

    # ========================================================================================
    # Drag and drop, closing

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif self.session.root is not None and len(self.session):
            unlisted: list[OSError] = []
            self.add_files(collect_paths(paths, self.recursive_action.isChecked(), unlisted))
            if unlisted:
                self._inform_unlisted([listing_problem(e) for e in unlisted])
        else:
            self.open_paths(paths)

    def _classify_all_again(self) -> None:
        """Every image of the folder is classified again (a new model, other tile settings):
        counters reset, thumbnails and view refreshed, the shown image inspected again."""
        self._n_done = 0
        self._classifying = False
        self._done_announced = False
        self.thumb_model.items_changed(range(len(self.session)))
        self._apply_view()
        self._background_pending = None   # queued here: the pending start has nothing to add
        self._enqueue(range(len(self.session)))
        if self._current is not None:
            self._request_inspection(self._current)
