"""The main window's tools in windows of their own (a mixin of MainWindow): the camera, the
retraining wizard and the model library, each imported when first opened (the window starts
sooner; tests/test_main_window.py::test_tool_windows_are_wired_lazily) and kept alive while
visible."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget


class ToolWindows:
    """Opens the tool windows; the camera's snapshots join the session, a retrained or chosen
    model is loaded."""

    def open_camera(self):
        from ..camera_window import CameraWindow

        w = CameraWindow(classifier_provider=lambda: self.classifier, parent=self)
        w.snapshot_taken.connect(lambda path: self.add_files([path]))
        self._keep(w)
        w.show()
        return w

    def open_retrain(self):
        from ..wizard import RetrainWizard

        w = RetrainWizard(current_bundle=self.model_path, verdicts=self.session.training_verdicts(),
                          parent=self)
        w.model_ready.connect(lambda path: self.load_model(path))
        self._keep(w)
        w.show()
        return w

    def open_models(self):
        from ..model_manager import ModelManagerDialog

        d = ModelManagerDialog(parent=self)
        d.model_selected.connect(lambda path: self.load_model(path))
        self._keep(d)
        d.show()
        return d

    def _keep(self, w: QWidget) -> None:
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [w]
