"""Display conditions an accessibility audit checked (2026-12-07): a dark theme, a screen reader,
a class's one colour in every view, a high-density screen. Offscreen, no sleeps."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QColor, QPalette

from synth import CLASSES, texture


def _palette(window: str, text: str) -> QPalette:
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, QColor(window))
    pal.setColor(QPalette.ColorRole.WindowText, QColor(text))
    return pal


def test_text_colours_are_lightened_on_a_dark_theme_and_kept_on_a_light_one(qapp):
    """The overriding verdict's #6A1B9A was 1.3:1 on a dark window, the greys about 2:1."""
    from inspector.gui.charts import UNKNOWN_COLOUR, contrast as _contrast, ink_for, on_palette

    dark, light = _palette("#2b2b2b", "#eeeeee"), _palette("#efefef", "#000000")
    for colour in ("#6A1B9A", "#666", "#555", "#C62828", "#2E7D32", UNKNOWN_COLOUR, "#000000",
                   "#0000FF"):
        assert on_palette(colour, light) == QColor(colour).name()
        assert _contrast(QColor(on_palette(colour, dark)), QColor("#2b2b2b")) >= 4.5, colour
    # a tag's ink on its class colour: black on the blue was 4.0:1
    for fill in ("#0072B2", "#E69F00", "#F0E442", "#D55E00", "#56B4E9"):
        assert _contrast(ink_for(QColor(fill)), QColor(fill)) >= 4.5, fill


def test_a_class_has_one_colour_everywhere_and_green_means_defect_free(qapp):
    """The tile grid had its own palette (scratches white, patches vermilion) and drew patches
    in the green kept for defect-free tiles."""
    from inspector.gui.charts import GOOD_COLOUR, class_colour

    names = list(CLASSES)
    colours = [class_colour(i, names).name().upper() for i in range(len(names))]
    assert GOOD_COLOUR.upper() not in colours and len(set(colours)) == len(names)
    plant = ["scale", "good", "scratch"]
    assert class_colour(1, plant).name().upper() == GOOD_COLOUR.upper()
    assert class_colour(0, plant).name().upper() != GOOD_COLOUR.upper()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "coil"
    root.mkdir()
    for c in range(len(CLASSES)):
        Image.fromarray(texture(c, 64, seed=c + 3)).save(root / f"{c}_{CLASSES[c]}.png")
    return root


def test_a_screen_reader_hears_the_prediction_and_the_controls_names(qtbot, classifier, folder):
    from PySide6.QtCore import Qt

    from test_main_window import open_window

    w = open_window(qtbot, classifier, folder)
    s = w.session
    text = w.thumb_model.data(w.thumb_model.index(0, 0), Qt.ItemDataRole.AccessibleTextRole)
    assert text.startswith(s.items[0].path.name + ";") and s.predicted_name(0) in text
    assert w.list.accessibleName() == "Images"
    w.select(0)
    qtbot.waitUntil(lambda: w.shown_index() == 0, timeout=10000)
    qtbot.waitUntil(lambda: s.predicted_name(0) in w.prob_chart.accessibleDescription(),
                    timeout=10000)
    # the spin boxes are named by their labels (buddies)
    from PySide6.QtWidgets import QLabel
    buddies = {lab.buddy() for lab in w.findChildren(QLabel) if lab.buddy() is not None}
    assert w.threshold in buddies and w.unknown_accept in buddies


def test_thumbnails_are_made_at_the_screens_pixel_density(qtbot, classifier, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from inspector.gui.main_window import MainWindow
    from inspector.gui.thumbnails import THUMB

    monkeypatch.setattr(QApplication, "devicePixelRatio", lambda self: 2.0)
    w = MainWindow(classifier=classifier)
    qtbot.addWidget(w)
    assert w._thumbs.size == 2 * THUMB


def test_eight_classes_with_a_defect_free_one_get_eight_colours(qapp):
    """A review: the palette lost its green to defect-free classes, and a defect-free class's
    index still took a slot: 8 classes with "good" second gave the 1st and the 8th one orange."""
    from inspector.gui.charts import class_colour

    names = ["crack", "good", "inclusion", "oil", "patches", "pitted", "rolled", "scratches"]
    assert len({class_colour(i, names).name() for i in range(len(names))}) == len(names)


def test_the_colour_bar_and_chart_titles_follow_a_large_system_font(qtbot):
    """At 16 pt the fixed 54-px colour bar cut its "0.5" and the chart titles stayed at 10 pt."""
    from PySide6.QtGui import QFont

    from inspector.gui.charts import ProbabilityChart, title_points
    from inspector.gui.image_view import ColorBar

    for points, wide in ((9, False), (20, True)):
        font = QFont()
        font.setPointSizeF(points)
        bar = ColorBar()
        bar.setFont(font)
        bar.set_labels("high", "low")
        qtbot.addWidget(bar)
        fm = bar.fontMetrics()
        assert bar.width() >= 30 + fm.horizontalAdvance("0.5") and bar.width() >= 54
        assert (bar.width() > 54) == wide
        chart = ProbabilityChart()
        chart.setFont(font)
        qtbot.addWidget(chart)
        assert title_points(chart) == max(10, points)


def test_the_weights_charts_tick_labels_do_not_overlap_at_a_large_font(qtbot, qapp):
    """At a 16-pt system font a 130-px channel-weights chart drew "0.4", "0.2", "0", "-0.2" and
    "-0.4" over one another: pyqtgraph spaces ticks by the axis's length, not its font. (The
    chart's items take the application's font, not the chart widget's.)"""
    from PySide6.QtGui import QFont, QFontMetricsF

    from inspector.gui.charts import FittedAxis, WeightsChart, nice_step

    assert nice_step(1.04, 2) == 1.0 and nice_step(1.04, 3) == 0.5 and nice_step(0.9, 5) == 0.2
    before = QFont(qapp.font())
    try:
        for points in (10, 16, 20):
            font = QFont(before)
            font.setPointSizeF(points)
            qapp.setFont(font)
            chart = WeightsChart()
            qtbot.addWidget(chart)
            axis = chart.getAxis("left")
            assert isinstance(axis, FittedAxis) and axis.font().pointSizeF() == points
            line = QFontMetricsF(axis.font()).height()
            for lo, hi, size in ((-0.52, 0.42, 53.6), (-0.02, 1.02, 60.8), (-0.02, 1.02, 200.0),
                                 (-3.1, 7.4, 90.0)):
                ((step, offset),) = axis.tickSpacing(lo, hi, size)
                ticks = np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step
                assert offset == 0 and len(ticks) >= 1
                assert len(ticks) <= max(2, size // line), (points, lo, hi, size, ticks)
    finally:
        qapp.setFont(before)
