"""The main window's tiles (a mixin of MainWindow): large images classified tile by tile with
the folder's tile settings, the shown image's grid of labelled tiles, and a clicked tile's
probabilities and label."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ...engine import BLANK_TEXT, is_blank_score
from ...tiles import (TILES_GROUP, ImageVerdict, TiledVerdict, TileSettings, folder_key,
                      model_view, nearest_tiling, tiling_to_text)
from ..tile_settings import TileSettingsDialog
from .layout import MESSAGE_MS

NO_MODEL_INPUT_SIZE = 200  # the tile dialog before a model is loaded: SSDC-MiniNet's input size


class TileActions:
    """Tiles of large images: settings per folder, the grid in the large view, clicks on it."""

    def _init_tiles(self) -> None:
        self._tile_results: dict[int, TiledVerdict] = {}   # session index -> its tiles
        # chosen while no folder was open: for the next folder without a setting of its own
        self._pending_tiling: TileSettings | None = None
        self._inspect.tiling = self.background.tiling
        self._tile_inspections: tuple = (None, {})   # (the shown image's key, {tile: Inspection})
        self._inspect.tiled.connect(self._on_tiled)
        self._inspect.tile_inspected.connect(self._on_tile_inspected)
        self.panel.view.tile_clicked.connect(self.show_tile)

    # ---- settings per folder -------------------------------------------------------------
    def tiling_for(self, folder: str | Path | None) -> TileSettings:
        if folder is None:
            return self.background.tiling
        group = self.settings.group(TILES_GROUP)
        return nearest_tiling(folder, lambda key: group.get(key, None)) or TileSettings()

    def _remember_tiling(self, folder: str | Path, tiling: TileSettings) -> None:
        group = self.settings.group(TILES_GROUP)
        group.set(folder_key(folder), tiling_to_text(tiling))
        group.sync()

    def _use_folder_tiling(self, folder: str | Path | None) -> bool:
        """Called as a session opens (before its images are queued)."""
        self._tile_results = {}
        pending, self._pending_tiling = self._pending_tiling, None
        if pending is not None and folder is not None:
            if self.settings.group(TILES_GROUP).get(folder_key(folder), None) is None:
                self._remember_tiling(folder, pending)   # the folder's own setting wins
        t = self.tiling_for(folder)
        self._inspect.tiling = t
        return self.background.set_tiling(t)

    def set_tiling(self, tiling: TileSettings, save: bool = True) -> None:
        """Tiles this folder's large images so from now on: remembered for the folder, and
        every image is classified again if anything changed."""
        root = self.session.root
        if save and root is not None:
            self._remember_tiling(root, tiling)
        elif save:
            self._pending_tiling = tiling
        self._inspect.tiling = tiling
        if not self.background.set_tiling(tiling):
            return
        self._tile_results = {}
        self._shown_key = None
        self.session.clear_predictions()
        self._classify_all_again()
        view = model_view(self.classifier) if self.classifier is not None else 0
        self.statusBar().showMessage(f"Classifying again: {tiling.describe(view)}", MESSAGE_MS)

    def choose_tiling(self) -> TileSettingsDialog:
        view = (model_view(self.classifier) if self.classifier is not None
                else NO_MODEL_INPUT_SIZE)
        root = self.session.root
        d = TileSettingsDialog(self.background.tiling, view, str(root or ""), self)
        d.accepted.connect(lambda: self._tiling_chosen(root, d.value()))
        self._keep(d)
        d.open()
        return d

    # ---- results ---------------------------------------------------------------------------
    def _remember_tiles(self, index: int, tiles: TiledVerdict | None) -> None:
        if tiles is None:
            self._tile_results.pop(index, None)
        else:
            self._tile_results[index] = tiles
        if index == self._current and self.shown_index() == index:
            self._show_tiles(index)

    def _on_tiled(self, key, verdict: ImageVerdict) -> None:
        """The selected image's tiles, computed with its inspection (it may be shown before the
        background worker reaches it)."""
        idx = key[2]
        if not self.background.is_current(key):
            return
        if idx == self._current:   # shown: a file written again since is classified again
            self._changed_when_shown(idx)
        self._tile_results[idx] = verdict.tiles
        s = self.session
        if s.items[idx].probs is None and s.items[idx].error is None:
            s.set_prediction(idx, verdict.probs, verdict.unknown_score, verdict.known,
                             verdict.padding)
            self._n_done += 1
            self.thumb_model.item_changed(idx)
            self._show_progress()

    def tiles_of(self, index: int | None) -> TiledVerdict | None:
        return None if index is None else self._tile_results.get(index)

    def _show_tiles(self, index: int) -> None:
        """Draws the shown image's tiles and shows one: the one selected before (when the
        tiles come again, from the background worker), else the deciding tile."""
        view = self.panel.view
        before = view.selected_tile()
        t = self._tile_results.get(index)
        view.set_tiles(t)
        if t is not None:
            self.show_tile(before if before is not None and before < len(t.tiles) else t.winner)

    def _tiling_chosen(self, folder: Path | None, tiling: TileSettings) -> None:
        """The dialog's setting, for the folder it named: another folder opened meanwhile (a
        slow share's listing) got the setting, and was classified again with it. Opened with no
        folder, it is for the next folder (``set_tiling``)."""
        if folder is None or folder == self.session.root:
            self.set_tiling(tiling)
            return
        self._remember_tiling(folder, tiling)
        self.statusBar().showMessage(f"Tiles remembered for {folder}; "
                                     f"{self.session.root or 'this view'} keeps its own",
                                     MESSAGE_MS)

    def show_tile(self, i: int) -> None:
        """Shows tile ``i`` of the shown image: selected in the grid, its probabilities in the
        chart, its label in the verdict box, and its own attention over it (the tile as the
        model read it, not the whole image squeezed into the model's view)."""
        idx = self.shown_index()
        t = self.tiles_of(idx)
        if t is None or not 0 <= i < len(t.tiles) or idx != self._current:
            return   # another image is being loaded: its request stands
        self.panel.view.select_tile(i)
        self.prob_chart.set_values(t.probs[i])
        self._update_verdict_label()
        key, done = self._tile_inspections
        inspection = done.get(i) if key == self._shown_key else None
        self.panel.show_region(inspection, t.tiles[i])
        if inspection is None:
            self._inspect.request_tile(self._shown_key, self.session.items[idx].path, i)
        else:
            self.tile_inspection_shown.emit(i)

    # ---- tiles by keyboard ([ ] T Ctrl+]) -------------------------------------------------
    def _shown_tiles(self) -> TiledVerdict | None:
        t = self.tiles_of(self.shown_index())
        if t is None:
            self.statusBar().showMessage("This image is not read in tiles (Ctrl+T: tiles of "
                                         "large images)", MESSAGE_MS)
        return t

    def step_tile(self, delta: int) -> None:
        """The next (``delta`` 1) or previous (-1) tile in reading order, from the selected one
        (a 385-tile strip could only be checked with the mouse)."""
        t = self._shown_tiles()
        if t is not None:
            current = self.panel.view.selected_tile()
            self.show_tile(((t.winner if current is None else current) + delta) % len(t.tiles))

    def show_deciding_tile(self) -> None:
        t = self._shown_tiles()
        if t is not None:
            self.show_tile(t.winner)

    def next_notable_tile(self) -> None:
        """The next tile that stands out: flagged unknown, or of another class than most of the
        image's tiles."""
        t = self._shown_tiles()
        if t is None:
            return
        labels = t.probs.argmax(axis=1)
        common = int(np.bincount(labels).argmax())
        notable = [i for i in range(len(t.tiles)) if not t.known[i] or labels[i] != common]
        if not notable:
            name = t.class_names[common] if common < len(t.class_names) else str(common)
            self.statusBar().showMessage(f"No tile stands out: all {len(t.tiles)} read as "
                                         f"{name}", MESSAGE_MS)
            return
        current = self.panel.view.selected_tile()
        current = -1 if current is None else current
        self.show_tile(next((i for i in notable if i > current), notable[0]))

    def _on_tile_inspected(self, key, i: int, inspection) -> None:
        if not self.background.is_current(key):
            return
        if self._tile_inspections[0] != key:
            self._tile_inspections = (key, {})
        self._tile_inspections[1][i] = inspection
        t = self.tiles_of(key[2])
        if (key == self._shown_key and t is not None and i < len(t.tiles)
                and self.panel.view.selected_tile() == i):
            self.panel.show_region(inspection, t.tiles[i])
            self.tile_inspection_shown.emit(i)

    def _append_tile_line(self) -> None:
        """The selected tile's label under the image's verdict."""
        idx = self._current
        t = self.tiles_of(idx) if idx is not None and idx == self.shown_index() else None
        i = self.panel.view.selected_tile()
        if t is None or i is None or i >= len(t.tiles):
            return
        box, score = t.tiles[i], t.score(i)
        decides = " — <b>decides the image</b>" if i == t.winner else ""
        # a flagged tile's percentage is its closest class's, named as the camera names it
        how_sure = (f"{t.confidence(i):.1%}" if t.known[i]
                    else f"closest {html.escape(t.top_class(i))} {t.confidence(i):.1%}")
        self.verdict_label.setText(
            self.verdict_label.text() + f"<br>Tile {i + 1}/{len(t.tiles)} at ({box.x}, {box.y}) "
            f"{box.w}×{box.h}: <b>{html.escape(t.label(i))}</b> ({how_sure})"
            + ("" if score is None else f", {BLANK_TEXT}" if is_blank_score(score)
               else f", unknown score {score:.3g}") + decides)
