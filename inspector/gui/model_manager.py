"""The model manager: the bundled model and the library's versions with their test accuracy;
use one, roll back to the previous one in one click, remove old ones. The library logic is
``inspector.library``; this dialog only shows it."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout,
                               QHeaderView, QLabel, QMessageBox, QPlainTextEdit, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout)

from training.bundle import BundleError, read_card
from training.card import ModelCard

from .. import paths
from ..library import BUNDLED, LibraryError, ModelLibrary, NotUsableError
from .charts import on_palette
from .screen import resize_to_fit

COLUMNS = ("", "Version", "Model", "Classes", "Test accuracy", "Created")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def describe_card(card: dict, path: Path) -> str:
    """A readable summary of a model card for the details pane."""
    mc = ModelCard.of(card)
    lines = [mc.title, f"folder: {path}"]
    names = mc.class_names
    lines.append(f"classes ({len(names)}): {', '.join(names)}")
    size = mc.input_size if mc.input_size is not None else "?"
    lines.append(f"input: {size} x {size} pixels")
    for split in ("test", "validation"):
        s = mc.metrics(split)
        if s:
            lines.append(f"{split}: accuracy {_pct(s.get('accuracy'))} on {s.get('count', '?')} "
                         f"images, macro F1 {_pct(s.get('macro_f1'))}")
    t = mc.training
    cfg = t.get("config") or {}
    if cfg:
        start = (f"fine-tuned from {cfg['init_bundle']}" if cfg.get("init_bundle")
                 else f"from scratch (design {cfg.get('design', '?')})")
        lines.append(f"training: {cfg.get('epochs', '?')} epochs, learning rate "
                     f"{cfg.get('learning_rate', '?')}, {start}")
    if t.get("fit_seconds") is not None:
        lines.append(f"training time: {t['fit_seconds'] / 60:.1f} min")
    d = mc.dataset
    if d.get("per_class"):
        lines.append("images per class: " + ", ".join(f"{k} {v}" for k, v in d["per_class"].items()))
    if t.get("notes"):
        lines.append(f"notes: {t['notes']}")
    if mc.created:
        lines.append(f"created: {mc.created_here} (this PC's time)")
    problems = mc.usability_problems()
    if problems:
        lines.append("NOT USABLE: " + "; ".join(problems))
    return "\n".join(lines)


class ModelManagerDialog(QDialog):
    """Lists the bundled model and the library's versions. ``model_selected(path)`` is emitted
    with the bundle folder to load whenever the model in use changes."""

    model_selected = Signal(str)

    def __init__(self, library: ModelLibrary | None = None, parent=None):
        super().__init__(parent)
        self.library = library or ModelLibrary()
        self.before_switch: str | None = self.library.active_name()   # undone if it fails
        self.setWindowTitle("Models")
        resize_to_fit(self, 860, 520)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        for c in range(len(COLUMNS)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setTabKeyNavigation(False)   # Tab leaves the table for the buttons
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self.activate_selected())
        self.details = QPlainTextEdit(readOnly=True)
        self.details.setMinimumHeight(120)
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.use_button = QPushButton("&Use this model")
        self.use_button.clicked.connect(self.activate_selected)
        self.rollback_button = QPushButton("&Roll back")
        self.rollback_button.setToolTip("Go back to the model used before the current one")
        self.rollback_button.clicked.connect(self.rollback)
        self.remove_button = QPushButton("Re&move…")
        self.remove_button.setToolTip("Remove the selected version from the library (Delete)")
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        # Enter in the list does not switch the model the whole folder is classified with:
        # Close is the default button; a button that has the keyboard (Tab) takes Enter itself
        for b in (self.use_button, self.rollback_button, self.remove_button):
            b.setAutoDefault(False)
            for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                enter = QShortcut(QKeySequence(key), b)
                enter.setContext(Qt.ShortcutContext.WidgetShortcut)
                enter.activated.connect(b.click)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        close.button(QDialogButtonBox.StandardButton.Close).setDefault(True)
        remove_key = QShortcut(QKeySequence.StandardKey.Delete, self.table)
        remove_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        remove_key.activated.connect(lambda: self.remove_button.isEnabled()
                                     and self.remove_selected())

        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.rollback_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([300, 160])
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.refresh()

    # ---- rows ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-reads the library and shows it; keeps the selection where it can."""
        selected = self.selected_ref()
        # the version in use as recorded, readable or not: a damaged one was hidden, the bundled
        # row said "in use" with Use disabled, and Remove of the damaged row said "in use"
        active = self.library.active_name()
        rows: list[tuple[str, Path, dict | None, bool]] = []
        bundled = paths.bundled_model_dir()
        try:
            bcard = read_card(bundled)
        except BundleError:
            bcard = None
        rows.append((BUNDLED, bundled, bcard, active is None))
        try:
            versions, damaged = self.library.scan()
            unreadable = None
        except OSError as exc:   # a library folder that cannot be listed (a share gone, no rights)
            versions, damaged = [], []
            unreadable = (f"The model library {self.library.root} cannot be read "
                          f"({exc.strerror or exc}): only the bundled model is shown.")
        for v in reversed(versions):  # newest first, after the bundled one
            rows.append((v.version, v.path, v.card, active == v.version))
        self._damaged = {name: problem for name, _, problem in damaged}
        rows += [(name, path, None, active == name) for name, path, _ in damaged]   # last
        if unreadable:
            self.status.setText(unreadable)
        self._rows = rows
        self.table.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for r, (ref, path, card, in_use) in enumerate(rows):
            mc = ModelCard.of(card)
            if ref == BUNDLED:
                model = f"{mc.title} (bundled)" if mc else "bundled model (not installed)"
            elif not mc:
                model = "damaged: cannot be used (see below)" + (
                    "; the bundled model is used instead" if in_use else "")
            else:
                model = mc.title
            cells = ["● in use" if in_use else "", ref, model,
                     str(len(mc.class_names)) if mc else "-",
                     _pct(mc.test_accuracy) if mc else "-",
                     mc.created_here if mc else ""]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, ref)
                if in_use:
                    item.setFont(bold)
                if c == 0 and in_use:
                    item.setForeground(QColor(on_palette("#2e7d32", self.table.palette())))
                if c == 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        row = next((r for r, row in enumerate(rows) if row[0] == selected), None)
        if row is None:
            row = next((r for r, row in enumerate(rows) if row[3]), 0)
        self.table.selectRow(row)
        self._selection_changed()

    def selected_ref(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or not hasattr(self, "_rows"):
            return None
        return self._rows[rows[0].row()][0]

    def select(self, ref: str) -> None:
        for r, row in enumerate(self._rows):
            if row[0] == ref:
                self.table.selectRow(r)
                return
        raise LibraryError(f"no row {ref!r}")

    def _selection_changed(self) -> None:
        ref = self.selected_ref()
        row = next((row for row in self._rows if row[0] == ref), None)
        if row is None:
            self.details.clear()
            self.use_button.setEnabled(False)
            self.remove_button.setEnabled(False)
        else:
            _, path, card, in_use = row
            try:
                text = describe_card(card, path) if card else None
            except (TypeError, ValueError, AttributeError, KeyError) as exc:   # hand-edited
                text = f"{path}\nIts model card is damaged ({type(exc).__name__}: {exc})."
            self.details.setPlainText(
                text if text is not None else
                f"{path}\nThe bundled model is not installed." if ref == BUNDLED else
                f"{path}\nThis version cannot be used: {self._damaged.get(ref, 'damaged')}.\n"
                "Remove it, or copy the bundle folder in again.")
            self.use_button.setEnabled(not in_use and card is not None)
            self.remove_button.setEnabled(not in_use and ref != BUNDLED)
        self.rollback_button.setEnabled(self.library.can_roll_back())

    # ---- actions ---------------------------------------------------------------------------
    def _emit(self, path: Path | None, what: str) -> None:
        target = path or paths.bundled_model_dir()
        # the window loads it first: a library that cannot be listed now must not leave the
        # switch saved and the window on the old model
        self.model_selected.emit(str(target))
        self.status.setText(f"{what}: now using {target.name if path else 'the bundled model'}.")
        self.refresh()

    def switch_failed(self, previous: str | None, message: str) -> None:
        """The model just switched to could not be loaded: the one before stays active."""
        try:
            self.library.undo_activation(previous)
        except LibraryError as exc:
            message = f"{message}; and {exc}"
        self.refresh()
        self.status.setText(f"Could not use that model ({message}); the model before stays in "
                            "use.")

    def activate_selected(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return
        self.before_switch = self.library.active_name()
        try:
            try:
                path = self.library.activate(ref)
            except NotUsableError as exc:
                if not self.confirm_not_usable(exc):
                    return
                path = self.library.activate(ref, force=True)
        except LibraryError as exc:
            QMessageBox.warning(self, "Models", str(exc))
            return
        except BundleError as exc:   # its model file is damaged: refused before any load
            self.refresh()
            self.status.setText(f"Could not use that model ({exc}); the model before stays in "
                                "use.")
            return
        self._emit(path, "Switched")

    def confirm_not_usable(self, exc: NotUsableError) -> bool:
        """Asks before a model its own test figures call not usable goes into use (default: no)."""
        return QMessageBox.warning(
            self, "Model not usable",
            f"{exc.version} was judged not usable on its held-out images: "
            + "; ".join(exc.problems) + ".\n\nUse it anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes

    def rollback(self) -> None:
        self.before_switch = self.library.active_name()
        try:
            path = self.library.rollback()
        except LibraryError as exc:
            QMessageBox.information(self, "Models", str(exc))
            return
        self._emit(path, "Rolled back")

    def remove_selected(self, confirm: bool = True) -> None:
        ref = self.selected_ref()
        if ref is None or ref == BUNDLED:
            return
        if confirm and QMessageBox.question(
                self, "Remove model", f"Delete {ref} from the model library? This cannot be "
                                      "undone.") != QMessageBox.StandardButton.Yes:
            return
        try:
            self.library.remove(ref)
        except (LibraryError, OSError) as exc:
            QMessageBox.warning(self, "Models", str(exc))
            return
        self.status.setText(f"Removed {ref}.")
        self.refresh()
