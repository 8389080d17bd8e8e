"""The tile settings of a folder: tile size (the scale the model was trained at, a chosen size,
or whole images) and overlap, in a small dialog."""
from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox,
                               QWidget)

from training.card import TrainingView

from ..tiles import (DEFAULT_OVERLAP, MAX_OVERLAP, MIN_TILE, NARROW_ASPECT, WHOLE_UP_TO,
                     TileSettings)

AUTO, CHOSEN, WHOLE = "auto", "chosen", "whole"


class TileSettingsDialog(QDialog):
    def __init__(self, current: TileSettings, view: TrainingView | int, folder: str = "",
                 parent: QWidget | None = None):
        """``view``: the scale the model was trained at (an int: its tile side)."""
        super().__init__(parent)
        self.setWindowTitle("Tiles")
        if not isinstance(view, TrainingView):
            view = TrainingView(int(view), int(view))
        self.view = view
        self.input_size = view.tile   # the automatic tile side
        whole = (f", whole up to {view.largest} px" if view.largest > WHOLE_UP_TO * view.tile
                 else "")
        self.mode = QComboBox()
        self.mode.addItem(f"As the model was trained ({view.tile} px tiles{whole})", AUTO)
        self.mode.addItem("Tiles of this size", CHOSEN)
        self.mode.addItem("Whole images (each read whole into the model's input)", WHOLE)
        self.size = QSpinBox()
        self.size.setRange(MIN_TILE, 16384)
        self.size.setSuffix(" px")
        self.size.setValue(current.size or self.input_size)
        self.overlap = QSpinBox()
        self.overlap.setRange(0, round(MAX_OVERLAP * 100))
        self.overlap.setSuffix(" %")
        self.overlap.setValue(round(current.overlap * 100))
        self.mode.setCurrentIndex(0 if current.size is None else 2 if current.size == 0 else 1)
        self.mode.currentIndexChanged.connect(self._sync)
        form = QFormLayout(self)
        note = QLabel(f"An image with a side longer than {WHOLE_UP_TO:g} tiles (and, as the "
                      f"model was trained, than its largest training image), or one longer than "
                      f"a tile and {NARROW_ASPECT:g} times as long as wide when the model learnt "
                      f"square images of one size, is classified tile by tile; its verdict is "
                      f"its least known tile's if any tile is unknown, "
                      f"else its most severe tile's. "
                      + (f"Remembered for this folder:\n{folder}" if folder else
                         "No folder is open: used for the next folder opened that has no "
                         "setting of its own, and remembered for it."))
        note.setWordWrap(True)
        form.addRow(note)
        form.addRow("Tiling:", self.mode)
        form.addRow("Tile size:", self.size)
        form.addRow("Overlap:", self.overlap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.set_value(TileSettings()))
        form.addRow(buttons)
        self._sync()

    def _sync(self) -> None:
        mode = self.mode.currentData()
        self.size.setEnabled(mode == CHOSEN)
        self.overlap.setEnabled(mode != WHOLE)

    def set_value(self, t: TileSettings) -> None:
        self.mode.setCurrentIndex(0 if t.size is None else 2 if t.size == 0 else 1)
        if t.size:
            self.size.setValue(t.size)
        self.overlap.setValue(round(t.overlap * 100))

    def value(self) -> TileSettings:
        mode = self.mode.currentData()
        size = None if mode == AUTO else 0 if mode == WHOLE else self.size.value()
        return TileSettings(size, self.overlap.value() / 100.0 if mode != WHOLE else DEFAULT_OVERLAP)
