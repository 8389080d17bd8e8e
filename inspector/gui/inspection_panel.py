"""The selected image with its explanation: the large view, the attention overlay (the class
activation map or one SE block's spatial map) with a source combo, an opacity slider and a
colour bar, and a chart of the chosen block's channel weights."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QVBoxLayout,
                               QWidget)

from ..attention import CAM, attention_map
from ..engine import Inspection
from ..tiles import Roi
from .charts import WeightsChart
from .image_view import ColorBar, ImageView, overlay_image
from .keys import ChoiceBox

NONE = "none"   # no overlay (CAM and the SE block names: inspector.attention)


class InspectionPanel(QWidget):
    overlay_source_changed = Signal(str)
    opacity_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = ImageView()
        self.view.setAccessibleName("Image")
        self.colorbar = ColorBar()
        # hidden without a map, its place kept: showing it with the first image must not lay the
        # panel out again (the image view refits, a stall while a folder starts)
        policy = self.colorbar.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.colorbar.setSizePolicy(policy)
        self.weights_chart = WeightsChart()
        self.weights_chart.setMinimumHeight(120)

        self.source = ChoiceBox()
        self.source.setToolTip("Which attention map is drawn over the image")
        self.source.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # as wide as its longest entry when there is room, narrower on a 1024-px panel PC
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setMinimumContentsLength(9)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setMinimumWidth(70)   # narrower on a small screen
        self.opacity.setMaximumWidth(140)
        self.opacity.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.opacity.setToolTip("Overlay opacity")
        self.opacity_label = QLabel("50%")
        self.opacity_label.setMinimumWidth(36)
        fit = QToolButton(text="Fit")
        fit.setToolTip("Fit the image to the view (F)")
        fit.clicked.connect(self.view.fit)
        one = QToolButton(text="1:1")
        one.setToolTip("Actual size (Ctrl+1)")
        one.clicked.connect(self.view.actual_size)
        self.caption = QLabel()
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # a click to copy keeps the keys
        self.caption.setWordWrap(True)
        # two lines reserved: a caption that appears or wraps does not shrink the image
        self.caption.setMinimumHeight(2 * self.caption.fontMetrics().lineSpacing())

        controls = QHBoxLayout()
        overlay_name = QLabel("Overlay:")
        overlay_name.setBuddy(self.source)
        controls.addWidget(overlay_name)
        controls.addWidget(self.source, 1)
        opacity_name = QLabel("Opacity:")
        opacity_name.setBuddy(self.opacity)   # the slider's name for a screen reader
        controls.addWidget(opacity_name)
        controls.addWidget(self.opacity)
        controls.addWidget(self.opacity_label)
        controls.addWidget(fit)
        controls.addWidget(one)
        image_row = QHBoxLayout()
        image_row.addWidget(self.view, 1)
        image_row.addWidget(self.colorbar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addLayout(image_row, 1)
        layout.addLayout(controls)

        self.inspection: Inspection | None = None
        self.image_shape: tuple[int, int] | None = None
        self.region: Roi | None = None   # the part of the image the explanation is of (a tile)
        self._wanted_source = CAM
        self.set_blocks([])
        self.source.currentIndexChanged.connect(self._source_changed)
        self.opacity.valueChanged.connect(self._opacity_changed)

    # -- configuration -----------------------------------------------------------------------
    def set_blocks(self, block_names: list[str]) -> None:
        """The SE blocks of the current model (the combo lists CAM, each block, and none)."""
        wanted = self.current_source() if self.source.count() else self._wanted_source
        self.source.blockSignals(True)
        self.source.clear()
        self.source.addItem("Class activation map (predicted class)", CAM)
        for i, name in enumerate(block_names, start=1):
            self.source.addItem(f"SE block {i} ({name}) spatial attention", name)
        self.source.addItem("No overlay", NONE)
        self.source.blockSignals(False)
        self.set_source(wanted)

    def set_source(self, key: str) -> None:
        self._wanted_source = key
        i = self.source.findData(key)
        self.source.setCurrentIndex(i if i >= 0 else 0)
        self._refresh()

    def current_source(self) -> str:
        return self.source.currentData() or CAM

    def set_opacity(self, opacity: float) -> None:
        self.opacity.setValue(round(max(0.0, min(1.0, opacity)) * 100))
        self.view.set_overlay_opacity(opacity)

    # -- content -----------------------------------------------------------------------------
    def show_image(self, image: QImage, inspection: Inspection | None, shape: tuple[int, int],
                   caption: str = "") -> None:
        self.inspection = inspection
        self.image_shape = (int(shape[0]), int(shape[1]))
        self.region = None
        self.caption.setText(caption)
        self.view.set_image(image)
        self._refresh()

    def show_region(self, inspection: Inspection | None, region: Roi) -> None:
        """The explanation of one part of the shown image (a tile of a large image): its
        overlay over that part only, its channel weights in the chart (None: none yet)."""
        self.inspection = inspection
        self.region = region
        self._refresh()

    def show_message(self, text: str, caption: str = "") -> None:
        self.inspection = None
        self.image_shape = None
        self.region = None
        self.caption.setText(caption)
        self.view.set_message(text)
        self._refresh()

    def current_map(self):
        """The (h, w) map in 0..1 the overlay shows (None without an inspection)."""
        if self.inspection is None:
            return None
        return attention_map(self.inspection, self.current_source())

    def _refresh(self) -> None:
        insp = self.inspection
        key = self.current_source()
        m = self.current_map()
        if m is not None and self.region is not None:
            r = self.region
            img, scale = overlay_image(m, r.h, r.w)
            self.view.set_overlay(img, scale, (r.x, r.y))
        elif m is not None and self.image_shape is not None:
            img, scale = overlay_image(m, *self.image_shape)
            self.view.set_overlay(img, scale)
        else:
            self.view.set_overlay(None)
        self.colorbar.setVisible(m is not None)
        if insp is None or key == NONE:
            self.weights_chart.set_weights(None, "Channel weights")
        elif key == CAM:
            c = insp.label
            name = insp.class_names[c] if c < len(insp.class_names) else str(c)
            self.weights_chart.set_weights(insp.classifier_weights[:, c],
                                           f"CAM: classifier weight per feature channel ({name})",
                                           unit_range=False)
        else:
            block = next((b for b in insp.se_blocks if b.name == key), None)
            if block is not None:
                self.weights_chart.set_weights(block.weights, f"{block.name}: SE excitation weight "
                                               f"per channel ({len(block.weights)} channels)")

    def _source_changed(self, _index: int) -> None:
        self._wanted_source = self.current_source()
        self._refresh()
        self.overlay_source_changed.emit(self._wanted_source)

    def _opacity_changed(self, value: int) -> None:
        self.opacity_label.setText(f"{value}%")
        self.view.set_overlay_opacity(value / 100.0)
        self.opacity_changed.emit(value / 100.0)
