"""The main window's tools in windows of their own (a mixin of MainWindow): the camera, the
retraining wizard and the model library, each imported when first opened (the window starts
sooner; tests/test_main_window.py::test_tool_windows_are_wired_lazily) and kept alive while
visible."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from shiboken6 import isValid


class ToolWindows:
    """Opens the tool windows; the camera's snapshots join the session, a retrained or chosen
    model is loaded."""

    def open_camera(self):
        """The camera window; the one already open is brought to the front (two windows on one
        camera would fight over the device)."""
        from ..camera_window import CameraWindow

        for open_one in self._open_windows():
            if isinstance(open_one, CameraWindow) and open_one.isVisible():
                open_one.raise_()
                open_one.activateWindow()
                return open_one
        w = CameraWindow(classifier_provider=lambda: self.classifier, parent=self,
                         settings=self.settings)
        w.snapshot_taken.connect(lambda path: self.add_files([path]))
        self._keep(w)
        w.show()
        return w

    def open_retrain(self):
        from ..wizard import RetrainWizard

        try:
            w = RetrainWizard(current_bundle=self.model_path,
                              verdicts=self.session.training_verdicts(), parent=self)
        except OSError as exc:   # no folder for its work files: a read-only or full user folder
            from ...paths import user_data_dir

            where = exc.filename or user_data_dir()
            self._inform("Cannot retrain", f"Retraining needs a folder for its work files and "
                         f"cannot make one: {where}: {exc.strerror or exc}. Free space there or "
                         "make it writable, or set STEEL_INSPECTOR_HOME to another folder.")
            return None
        w.model_ready.connect(lambda path: self.load_model(path))
        self._keep(w)
        w.show()
        return w

    def open_models(self):
        from ..model_manager import ModelManagerDialog

        d = ModelManagerDialog(parent=self)
        d.model_selected.connect(lambda path, d=d: self._load_chosen(d, path))
        self._keep(d)
        d.show()
        return d

    def _load_chosen(self, dialog, path: str) -> None:
        """Loads a model the Models dialog switched to; if it cannot be loaded, the library's
        active model goes back to the one before (a damaged version is never left active)."""
        if not hasattr(dialog, "switch_failed"):
            self.load_model(path)
            return
        previous = dialog.before_switch
        running = self._library_version_of(self.model_path)
        if running is not False:
            # the model the window runs, not the library's pointer at the click: after two quick
            # switches the first may not have loaded, and a failed second must not leave it
            # marked "in use" while the window runs the one before
            previous = running

        def finished(*_):   # also drops an earlier switch's slots, still connected
            for signal, slot in getattr(self, "_chosen_slots", ()):
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
            self._chosen_slots = ()

        def failed(message: str):
            finished()
            try:
                dialog.switch_failed(previous, message)
            except RuntimeError:   # the dialog has gone: undo in the library alone
                from ...library import LibraryError

                try:
                    dialog.library.undo_activation(previous)
                except LibraryError as exc:
                    self._inform("Models", str(exc))

        finished()
        self._chosen_slots = ((self.model_loaded, finished), (self.model_failed, failed))
        self.model_loaded.connect(finished)
        self.model_failed.connect(failed)
        self.load_model(path)

    def _library_version_of(self, path) -> str | None | bool:
        """The library's name for the model at ``path`` (None: the bundled model), or False when
        no model is loaded yet or it is not the library's or the bundled one."""
        from pathlib import Path

        from ... import paths as app_paths
        from ...library import ModelLibrary

        if path is None or self.classifier is None:
            return False
        p = Path(path).resolve()
        if p == app_paths.bundled_model_dir().resolve():
            return None
        root = ModelLibrary().root.resolve()
        return p.name if p.parent == root else False

    def close_retraining(self) -> bool:
        """Closes an open retraining wizard as the main window closes (its training stopped,
        its temporary files removed), after it has asked where work is at stake; False when
        the user keeps it open (the main window then stays too)."""
        for w in self._open_windows():
            if type(w).__name__ == "RetrainWizard" and w.isVisible():
                w.close()   # a dialog's close is its reject: it asks where work is at stake
                if w.isVisible():
                    return False
        return True

    def close_tool_windows(self) -> None:
        """Closes the camera windows as the main window closes, so that they save their settings
        (source, tiles, overlay, position) as a close of their own does."""
        for w in self._open_windows():
            if type(w).__name__ == "CameraWindow" and w.isVisible():
                w.close()

    def _keep(self, w: QWidget) -> None:
        """Holds a tool window while it is open; closed, Qt deletes it. Before 2026-12-07 a
        closed window stayed, a child of the main window, until the program ended: a soak audit
        measured 4.4 MB for every camera window opened and closed, 5.5 MB for every wizard,
        2.3 MB for the Models dialog and 1.1 MB for the summary, about 0.8 GB over a shift."""
        w.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialogs = [d for d in self._open_windows() if d.isVisible()] + [w]

    def _open_windows(self) -> list[QWidget]:
        """The tool windows kept that Qt has not deleted yet."""
        return [d for d in self._dialogs if isValid(d)]
