"""The main window's "unknown - not a known defect" verdicts (a mixin of MainWindow): the
setting of the unknown threshold (shown as the share of known images accepted), re-judging what
is shown from the stored scores, the status bar's share of unknown verdicts against the model's
validation rate, and verdicts that name a new class typed in by the inspector."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QStringListModel, Qt
from PySide6.QtWidgets import QCompleter, QLabel, QLineEdit, QSpinBox

from ...engine import BLANK_TEXT, UNKNOWN_TEXT, is_blank_score
from ...report import UNKNOWN_RATE_TIP, unknown_rate_text
from ...session import check_class_name
from ...settings import ACCEPT_RANGE, Key
from ..charts import STATUS_GAP_PX, UNKNOWN_COLOUR, on_palette

NEW_CLASS_KEY = "N"


class ClassNameEdit(QLineEdit):
    """A line edit for a new class name that keeps the keys it needs while it has focus (Enter,
    Escape, Backspace and Delete are the window's verdict shortcuts otherwise)."""

    OWN_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Backspace,
                Qt.Key.Key_Delete)

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and e.key() in self.OWN_KEYS:
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Escape:
            self.clear()
            self.parent_window.list.setFocus()
            return
        super().keyPressEvent(e)


class UnknownReview:
    """Unknown verdicts in the main window (a mixin of MainWindow: state in MainWindow)."""

    def _build_unknown_widgets(self, toolbar) -> None:
        """The accept setting (in the review toolbar), the status bar's unknown share and the
        new-class line edit (placed in the verdict box by the layout)."""
        label = QLabel(" Accept as known ")
        self.unknown_accept = QSpinBox()
        label.setBuddy(self.unknown_accept)   # its name for a screen reader
        self.unknown_accept.setRange(*ACCEPT_RANGE)
        self.unknown_accept.setSuffix(" %")
        self.unknown_accept.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._focus_back.watch(self.unknown_accept)
        self.unknown_accept.setToolTip(
            "Share of known images (the model's own validation images) accepted as one of its "
            f"classes; an image less like them than the rest is flagged \"{UNKNOWN_TEXT}\" "
            "(violet). A large image read in tiles is judged as one image: its tiles' scores "
            "are set against the number of tiles, so that the same share of known images is "
            "accepted. Lower: more images flagged.")
        self.unknown_accept.setEnabled(False)
        self.unknown_accept.valueChanged.connect(self._unknown_accept_changed)
        toolbar.addWidget(label)
        toolbar.addWidget(self.unknown_accept)
        self.unknown_label = QLabel("")
        self.unknown_label.setContentsMargins(STATUS_GAP_PX, 0, 0, 0)   # apart from messages
        self.statusBar().addPermanentWidget(self.unknown_label)
        self.new_class_edit = ClassNameEdit()
        self.new_class_edit.parent_window = self
        self.new_class_edit.setPlaceholderText(f"new class name, Enter  [{NEW_CLASS_KEY}]")
        self.new_class_edit.setToolTip("The true class of an image of a kind the model does not "
                                       "know: journaled like any verdict, and offered as training "
                                       "data for that class by Tools ▸ Retrain model")
        self.new_class_edit.setClearButtonEnabled(True)
        self._new_class_names = QStringListModel([], self)
        self.new_class_edit.setCompleter(QCompleter(self._new_class_names, self.new_class_edit))
        self.new_class_edit.returnPressed.connect(self._new_class_entered)

    # ---- the threshold -----------------------------------------------------------------------
    def _unknown_model_changed(self) -> None:
        """A model was set: the stored share (or the bundle's own) applies to it."""
        clf = self.classifier
        available = clf is not None and clf.has_unknown_detection
        self.unknown_accept.blockSignals(True)
        if available:
            stored = self.settings.get_float(Key.UNKNOWN_ACCEPT)
            share = stored if stored > 0 else clf.accept
            self.unknown_accept.setValue(round(share * 100))
            clf.set_accept(self.unknown_accept.value() / 100.0)
        self.unknown_accept.setEnabled(available)
        self.unknown_accept.blockSignals(False)
        self._update_unknown_status()

    def _unknown_accept_changed(self, percent: int) -> None:
        clf = self.classifier
        if clf is None or not clf.has_unknown_detection:
            return
        self.settings.set(Key.UNKNOWN_ACCEPT, percent / 100.0)
        clf.set_accept(percent / 100.0)
        self.rejudge_unknown()

    def rejudge_unknown(self) -> list[int]:
        """Applies the model's unknown threshold to every stored score (no model run) and
        repaints what changed; returns the session indices whose verdict changed."""
        clf = self.classifier
        threshold = None if clf is None else clf.unknown_threshold
        moved = []
        for idx, tiles in self._tile_results.items():   # each tile again, and the deciding one
            it = self.session.items[idx]
            if tiles is not None and tiles.rejudge(threshold) and it.probs is not None:
                it.set_probs(tiles.probs[tiles.winner], tiles.image_score, it.known,
                             0.0 if tiles.padding is None else float(tiles.padding[tiles.winner]))
                moved.append(idx)
        changed = sorted(set(self.session.rejudge_unknown(threshold)) | set(moved))
        if self.tiles_of(self._current) is not None and self.shown_index() == self._current:
            self._show_tiles(self._current)
        if changed:
            self.thumb_model.items_changed(changed)
            if self._current in changed:
                self._update_verdict_label()
            if self._filter().unknown:
                self._apply_view()
        self._update_unknown_status()
        return changed

    def _update_unknown_status(self) -> None:
        clf = self.classifier
        if clf is None:
            self.unknown_label.setText("")
            return
        flagged, judged = self.session.unknown_share()
        self.unknown_label.setText(unknown_rate_text(flagged, judged, clf.validation_unknown_rate,
                                                     clf.has_unknown_detection))
        self.unknown_label.setToolTip(UNKNOWN_RATE_TIP)

    def _unknown_head(self, idx: int) -> str:
        """The large view's line for an image flagged unknown."""
        it = self.session.items[idx]
        detail = (BLANK_TEXT if is_blank_score(it.unknown_score) else
                  f"closest class {self.session.predicted_name(idx)} ({it.confidence:.1%}); "
                  f"unknown score {it.unknown_score:.2f}")
        pal = self.verdict_label.palette()
        return (f"<b style='color:{on_palette(UNKNOWN_COLOUR, pal)}'>{UNKNOWN_TEXT}</b><br>"
                f"<span style='color:{on_palette('#666', pal)}'>{detail}</span>")

    # ---- verdicts under a new class ------------------------------------------------------------
    def begin_new_class(self) -> None:
        """Key N: type the true class of the shown image (e.g. a defect the model lacks)."""
        self._new_class_names.setStringList(self.session.new_class_names())
        self.new_class_edit.setFocus()
        self.new_class_edit.selectAll()

    def _new_class_entered(self) -> None:
        """Enter in the class name field: an empty field is left as Esc leaves it (the keys
        back to the images, nothing said), not a message about an empty name."""
        text = self.new_class_edit.text()
        if not text.strip():
            self.new_class_edit.clear()
            self.list.setFocus()
            return
        self.set_new_class_verdict(text)

    def set_new_class_verdict(self, name: str) -> bool:
        """The shown image's true class is ``name``, one of the model's or a new one; journaled
        like any verdict (and offered to the retraining wizard)."""
        try:
            name = check_class_name(name, [*self.session.class_names,
                                           *self.session.new_class_names()])
        except ValueError as exc:
            self._inform("Not a class name", str(exc))
            return False
        ok = self.set_verdict(name, new_class=True)
        if ok:
            self.new_class_edit.clear()
            self.list.setFocus()
            self._new_class_names.setStringList(self.session.new_class_names())
        return ok
