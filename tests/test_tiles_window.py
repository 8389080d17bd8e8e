"""The review window with a large image: classified tile by tile, its grid of labelled tiles in
the large view (the defect patch's tile among them), clicks on tiles, tile settings per folder."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from fake_tiles import PATCH, BrightnessClassifier, large_image, write_large
from inspector.tiles import TileSettings


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "line-3"
    root.mkdir()
    write_large(root / "a_big.png", width=800, height=600, patch=(500, 360, 60, 60))
    Image.fromarray(large_image(40, 40, patch=(0, 0, 1, 1))).save(root / "b_small.png")
    return root


def open_window(qtbot, folder):
    from inspector.gui.main_window import MainWindow

    clf = BrightnessClassifier()
    clf.input_size = 100   # tiles of 100 px: 11 x 8 of them on 800 x 600
    w = MainWindow(classifier=clf)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.open_folder(folder)
    return w


def test_large_image_is_flagged_through_its_tile_in_the_window(qtbot, folder):
    w = open_window(qtbot, folder)
    s = w.session
    assert s.predicted_name(0) == "dark_spot" and s.predicted_name(1) == "good"
    w.select(0)
    qtbot.waitUntil(lambda: w.shown_index() == 0 and w.panel.view.tile_grid is not None,
                    timeout=10000)
    grid = w.panel.view.tile_grid
    t = grid.verdict
    assert t.tile == 100 and t.grid == (8, 11) and len(t.tiles) == 88
    labels = [grid.label_text(i).split()[0] for i in range(len(t.tiles))]
    assert 1 <= labels.count("dark_spot") <= 4 and labels.count("good") == 88 - labels.count("dark_spot")
    # the deciding tile is shown: selected, its probabilities in the chart, its label, and its
    # own explanation over it (not the whole image's, squeezed into the model's view: "good")
    assert labels[t.winner] == "dark_spot" and w.panel.view.selected_tile() == t.winner
    assert "decides the image" in w.verdict_label.text()
    names = w.session.class_names
    qtbot.waitUntil(lambda: w.panel.region == t.tiles[t.winner]
                    and w.panel.inspection is not None, timeout=10000)
    assert names[w.panel.inspection.label] == "dark_spot"
    box = t.tiles[t.winner]
    assert (w.panel.view.overlay_item.pos().x(), w.panel.view.overlay_item.pos().y()) == (box.x, box.y)
    # a click on a good tile's cell selects it and shows its label and probabilities
    good = next(i for i, lab in enumerate(labels) if lab == "good")
    view = w.panel.view
    centre = view.mapFromScene(grid.cells[good].center())
    with qtbot.waitSignal(w.tile_inspection_shown, timeout=10000) as shown:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert shown.args == [good]
    assert view.selected_tile() == good
    assert "<b>good</b>" in w.verdict_label.text().split("Tile")[-1]
    assert "decides" not in w.verdict_label.text()
    assert w.panel.region == t.tiles[good] and names[w.panel.inspection.label] == "good"
    # back to the deciding tile: its explanation is kept, no second inspection
    with qtbot.waitSignal(w.tile_inspection_shown, timeout=1000):
        w.show_tile(t.winner)
    assert w.panel.region == t.tiles[t.winner] and names[w.panel.inspection.label] == "dark_spot"
    # the small image has no tiles
    w.select(1)
    qtbot.waitUntil(lambda: w.shown_index() == 1, timeout=10000)
    assert view.tile_grid is None and w.panel.region is None
    assert (view.overlay_item.pos().x(), view.overlay_item.pos().y()) == (0, 0)


def test_tile_settings_are_remembered_per_folder(qtbot, folder, tmp_path):
    w = open_window(qtbot, folder)
    assert w.background.tiling == TileSettings()
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.set_tiling(TileSettings(size=0))      # whole images: the patch is lost
    assert w.session.predicted_name(0) == "good"
    other = tmp_path / "other"
    other.mkdir()
    write_large(other / "c.png", width=400, height=300, patch=(10, 10, 5, 5))
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.open_folder(other)
    assert w.background.tiling == TileSettings()          # another folder: the defaults
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.open_folder(folder)
    assert w.background.tiling == TileSettings(size=0)    # this folder's, remembered
    assert w.session.predicted_name(0) == "good"
    d = w.choose_tiling()
    assert d.value() == TileSettings(size=0)
    d.set_value(TileSettings(size=48, overlap=0.5))
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        d.accept()
    assert w.tiling_for(folder) == TileSettings(48, 0.5)
    assert w.session.predicted_name(0) == "dark_spot"


def test_tile_settings_chosen_before_a_folder_is_open_apply_to_the_next(qtbot, folder):
    from inspector.gui.main_window import MainWindow

    w = MainWindow(classifier=BrightnessClassifier())
    qtbot.addWidget(w)
    w.show()
    w.set_tiling(TileSettings(size=0))          # no folder open yet
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.open_folder(folder)
    assert w.background.tiling == TileSettings(size=0)
    assert w.tiling_for(folder) == TileSettings(size=0)      # remembered for it


def test_the_tile_dialog_names_the_scale_the_model_was_trained_at(qtbot):
    from inspector.gui.tile_settings import TileSettingsDialog
    from training.card import TrainingView

    d = TileSettingsDialog(TileSettings(), TrainingView(316, 652))
    qtbot.addWidget(d)
    assert d.mode.itemText(0) == "As the model was trained (316 px tiles, whole up to 652 px)"
    assert d.size.value() == 316 and d.value() == TileSettings()
    plain = TileSettingsDialog(TileSettings(), 200)   # NEU's: whole up to 1.5 tiles only
    qtbot.addWidget(plain)
    assert plain.mode.itemText(0) == "As the model was trained (200 px tiles)"


def test_a_new_accept_setting_that_moves_the_deciding_tile_moves_its_padding(qapp):
    """Re-judged at another Accept-as-known setting, a large image's deciding tile may change:
    the padding its caption and export name is the new tile's (as inspector classify's)."""
    from pathlib import Path

    from inspector.gui.main_window.unknown import UnknownReview
    from inspector.session import ReviewSession
    from inspector.tiles import Roi, TiledVerdict

    names = ["crazing", "inclusion"]
    tiles = TiledVerdict(tiles=[Roi(0, 0, 200, 200), Roi(200, 0, 200, 200)], grid=(1, 2),
                         shape=(200, 400), overlap=0.0, class_names=names,
                         probs=np.array([[0.9, 0.1], [0.2, 0.8]], np.float32),
                         unknown_scores=np.array([0.1, 0.5]), known=np.array([True, True]),
                         winner=0, padding=np.array([0.0, 0.3]))

    class Window(UnknownReview):   # what rejudge_unknown needs of the main window
        def __init__(self, session):
            self.session, self._tile_results, self._current = session, {0: tiles}, 0
            self.classifier = type("C", (), {"unknown_threshold": 0.3,
                                             "has_unknown_detection": True})()
            self.thumb_model = type("T", (), {"items_changed": lambda *a: None})()

        def tiles_of(self, i):
            return None

        def shown_index(self):
            return 0

        def _update_verdict_label(self):
            pass

        def _filter(self):
            return type("F", (), {"unknown": False})()

        def _apply_view(self):
            pass

        def _update_unknown_status(self):
            pass

    s = ReviewSession(names)
    s.add_paths([Path("/nowhere/x.png")])
    s.set_prediction(0, tiles.probs[0], tiles.image_score, True, 0.0)
    Window(s).rejudge_unknown()     # tile 1 (score 0.5 over 0.3) is flagged: it decides now
    assert tiles.winner == 1 and s.items[0].padding == pytest.approx(0.3)


def test_an_unknown_tiles_label_carries_no_percentage(qtbot):
    """A percentage beside "unknown" would read as the share of certainty that it is unknown."""
    from inspector.gui.image_view import TileGridItem
    from inspector.tiles import Roi, TiledVerdict

    tiles = TiledVerdict(tiles=[Roi(0, 0, 200, 200), Roi(200, 0, 200, 200)], grid=(1, 2),
                         shape=(200, 400), overlap=0.0, class_names=["crazing", "inclusion"],
                         probs=np.array([[0.9, 0.1], [0.03, 0.97]], np.float32),
                         unknown_scores=np.array([0.1, 30.0]), known=np.array([True, False]),
                         winner=1)
    grid = TileGridItem(tiles)
    assert grid.label_text(0) == "crazing 90%"
    assert grid.label_text(1) == "unknown"


def test_a_tile_setting_is_saved_for_the_folder_its_dialog_named(qtbot, folder, tmp_path):
    """The dialog opened on one folder and accepted after another had opened (a slow share's
    listing) saved the setting for the other folder and classified it again with it."""
    w = open_window(qtbot, folder)
    d = w.choose_tiling()
    other = tmp_path / "other"
    other.mkdir()
    write_large(other / "c.png", width=400, height=300, patch=(10, 10, 5, 5))
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.open_folder(other)
    d.set_value(TileSettings(size=400, overlap=0.0))
    d.accept()
    assert w.tiling_for(folder) == TileSettings(400, 0.0)
    assert w.tiling_for(other) == TileSettings() and w.background.tiling == TileSettings()


def test_a_tile_request_never_replaces_another_images_pending_request():
    """A tile of the image on screen clicked while the next image loaded replaced that image's
    request, and the window stayed on the old image for good."""
    from pathlib import Path

    from inspector.gui.workers import InspectWorker

    worker = InspectWorker()   # not started: requests stay pending
    worker.request(("k", 2), Path("next.png"))
    worker.request_tile(("k", 0), Path("shown.png"), 3)
    assert worker._request == (("k", 2), Path("next.png"), None)
    worker.request_tile(("k", 2), Path("next.png"), 1)   # a tile of the image asked for: taken
    assert worker._request == (("k", 2), Path("next.png"), 1)


def test_a_day_folder_takes_its_lines_tile_setting(qtbot, folder):
    """A line set to 400 px tiles: the next day's sub-folder fell back to the defaults, in the
    window and in inspector classify, and was read at another scale."""
    from inspector.tiles import saved_tiling

    w = open_window(qtbot, folder)
    with qtbot.waitSignal(w.classification_done, timeout=20000):
        w.set_tiling(TileSettings(size=400, overlap=0.0))
    day = folder / "2026-12-08"
    day.mkdir()
    assert w.tiling_for(day) == TileSettings(400, 0.0)
    from inspector.settings import settings_path

    assert saved_tiling(day, settings_path()) == TileSettings(400, 0.0)
    assert saved_tiling(folder.parent, settings_path()) is None   # not the other way up


def test_tiles_are_reached_by_keyboard(qtbot, folder):
    """A 385-tile strip could only be checked with the mouse: ] and [ step through the tiles,
    T goes back to the deciding tile, Ctrl+] to the next tile that stands out."""
    w = open_window(qtbot, folder)
    w.select(0)
    qtbot.waitUntil(lambda: w.shown_index() == 0 and w.panel.view.tile_grid is not None,
                    timeout=10000)
    t = w.panel.view.tile_grid.verdict
    n = len(t.tiles)
    w.activateWindow()
    w.list.setFocus()
    qtbot.keyClick(w.list, Qt.Key.Key_BracketRight)
    assert w.panel.view.selected_tile() == (t.winner + 1) % n
    qtbot.keyClick(w.list, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(w.list, Qt.Key.Key_BracketLeft)
    assert w.panel.view.selected_tile() == (t.winner - 1) % n
    qtbot.keyClick(w.list, Qt.Key.Key_T)
    assert w.panel.view.selected_tile() == t.winner
    labels = t.probs.argmax(axis=1)
    spots = [i for i in range(n) if w.session.class_names[labels[i]] == "dark_spot"]
    w.show_tile(0)
    qtbot.keyClick(w.list, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)
    assert w.panel.view.selected_tile() == spots[0]
    assert w.shown_index() == 0   # the keys moved between tiles, not images
    w.select(1)   # the small image has no tiles: said, nothing else
    qtbot.waitUntil(lambda: w.shown_index() == 1, timeout=10000)
    qtbot.keyClick(w.list, Qt.Key.Key_BracketRight)
    assert "not read in tiles" in w.statusBar().currentMessage() and w.shown_index() == 1


def test_the_windows_export_has_a_row_per_tile_after_its_image(qtbot, folder, tmp_path):
    """File > Export results with tiles as CSV writes what `inspector classify --tiles` writes:
    the tile columns, each tiled image's tile rows after its own row (the small image has
    none); the JSON export has each image's tiles with their rectangles. The plain CSV export
    keeps one row per image."""
    import csv
    import json

    w = open_window(qtbot, folder)
    out = tmp_path / "plain.csv"   # Ctrl+E: one row per image
    assert w.export(out) is not None
    qtbot.waitUntil(lambda: w.statusBar().currentMessage() == f"Exported 2 images to {out}",
                    timeout=10000)
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 2
    out = tmp_path / "r.csv"       # File > Export results with tiles as CSV
    assert w.export(out, tiles=True) is not None
    qtbot.waitUntil(lambda: w.statusBar().currentMessage().startswith("Exported"), timeout=10000)
    assert "and their 88 tiles" in w.statusBar().currentMessage()
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 2 + 88
    assert rows[0]["path"].endswith("a_big.png") and rows[0]["tile_x"] == ""
    tiles = rows[1:89]
    assert all(r["path"] == rows[0]["path"] and r["tile_w"] == "100" for r in tiles)
    dark = [r for r in tiles if r["label"] == "dark_spot"]
    assert dark and all(400 <= int(r["tile_x"]) <= 560 and 260 <= int(r["tile_y"]) <= 420
                        for r in dark)
    assert rows[0]["label"] == "dark_spot"
    assert rows[89]["path"].endswith("b_small.png") and rows[89]["tile_x"] == ""

    out = tmp_path / "r.json"
    assert w.export(out) is not None
    qtbot.waitUntil(lambda: w.statusBar().currentMessage().startswith(f"Exported 2 images and "
                                                                         f"their 88 tiles to {out}"),
                    timeout=10000)
    doc = json.loads(out.read_text(encoding="utf-8"))
    big, small = doc["results"]
    assert len(big["tiles"]) == 88 and "tiles" not in small
    assert {"tile_x", "tile_y", "tile_w", "tile_h"} <= set(big["tiles"][0])
