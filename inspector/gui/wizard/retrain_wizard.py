"""The retraining wizard itself: the state its pages share, and Finish (the only side effects)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWizard

from training.bundle import BundleError, read_card
from training.card import ModelCard
from training.checks import Report
from training.train import TrainConfig

from ... import retrain
from ...library import ModelLibrary
from ..screen import resize_to_fit
from ..workers import TaskRunner, wait_visibly
from .common import PAGE_DATA, PAGE_EVALUATION, PAGE_FINISH, PAGE_SETTINGS, PAGE_TRAINING
from .data_page import DataPage
from .settings_page import SettingsPage
from .training_page import TrainingPage
from .evaluation_page import EvaluationPage
from .finish_page import FinishPage

log = logging.getLogger(__name__)

# how long closing waits for a step that cannot stop half-way (the export, the unknown
# detector's fit) before it closes all the same; the step's work folder goes when it has ended
CLOSE_WAIT_S = 60.0


# ---- the wizard ------------------------------------------------------------------------------
class RetrainWizard(QWizard):
    """Retrains SSDC-MiniNet on the inspector's own labelled images. ``current_bundle``: the
    model in use; ``verdicts``: (image path, true class name) pairs from review.
    ``model_ready(path)`` is emitted on Finish when the user chose to use the new model now."""

    model_ready = Signal(str)
    ask_before_discarding = True   # Cancel, Esc or closing with work at stake asks first

    def __init__(self, current_bundle: Path, verdicts: Sequence[tuple[Path, str]] = (),
                 parent=None, library: ModelLibrary | None = None):
        # first: a user folder that takes no new folder (read-only, full) raises OSError here,
        # before a window exists (the caller says it; no hidden half-made wizard stays behind)
        work = retrain.work_dir()
        super().__init__(parent)
        self.setWindowTitle("Retrain the model")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        resize_to_fit(self, 980, 720)
        self.current_bundle = Path(current_bundle) if current_bundle else None
        try:
            self.current_card: dict | None = read_card(self.current_bundle) if self.current_bundle else None
        except BundleError:
            self.current_card = None
        self.verdicts = [(Path(p), str(c)) for p, c in verdicts]
        self.library = library or ModelLibrary()
        self.jobs = TaskRunner(self)
        # a model that an earlier wizard or command trained and never saved (a crash) is kept
        # in the library, not in use, and said, never deleted with its work folder
        self.kept_from_earlier = retrain.clean_stale_work_dirs(
            keep=lambda bundle: retrain.keep_in_library(bundle, self.library))
        if self.kept_from_earlier:
            QTimer.singleShot(0, self._say_kept)
        self.work = work
        # state shared by the pages
        self.report: Report | None = None
        self.folders: list[Path] = []
        self.use_verdicts = bool(self.verdicts)
        self.exclude: set[str] = set()
        self.config: TrainConfig | None = None
        # this PC's measured training seconds per image, {input size: seconds} (a number: at any)
        self.seconds_per_image: dict[int, float] | float | None = None
        self.card: dict | None = None          # the new model's card, after training
        self.bundle_dir: Path | None = None    # the new bundle, in the temporary folder
        self.data_dir: Path | None = None      # the folder training read
        self.origin: dict[str, str] = {}       # staged file -> original file
        self.evaluation: retrain.SplitEvaluation | None = None
        self.saved_path: Path | None = None

        self.data_page = DataPage(self)
        self.settings_page = SettingsPage(self)
        self.training_page = TrainingPage(self)
        self.evaluation_page = EvaluationPage(self)
        self.finish_page = FinishPage(self)
        for pid, page in ((PAGE_DATA, self.data_page), (PAGE_SETTINGS, self.settings_page),
                          (PAGE_TRAINING, self.training_page),
                          (PAGE_EVALUATION, self.evaluation_page), (PAGE_FINISH, self.finish_page)):
            self.setPage(pid, page)
        self.setStartId(PAGE_DATA)

    # ---- facts the pages share -----------------------------------------------------------
    @property
    def model_classes(self) -> list[str] | None:
        return ModelCard.of(self.current_card).class_names if self.current_card else None

    @property
    def input_size(self) -> int:
        return ModelCard.of(self.current_card).input_size or 200

    @property
    def full_size(self) -> int:
        """The largest size a fine-tune trains at by default (``retrain.model_full_size``: a
        model the short-budget rule trained smaller goes back to its images' scale)."""
        return retrain.model_full_size(self.current_card)

    @property
    def current_title(self) -> str:
        return ModelCard.of(self.current_card).title if self.current_card else "none"

    def usable_samples(self):
        return self.report.usable_samples(self.exclude) if self.report else []

    def counts(self) -> dict[str, int]:
        return retrain.count_samples(self.usable_samples())

    def class_names(self) -> tuple[str, ...]:
        return self.report.training_class_names(self.exclude) if self.report else ()

    def new_work_folder(self, name: str) -> Path:
        d = self.work / f"{name}-{time.strftime('%H%M%S')}-{len(list(self.work.iterdir()))}"
        return d

    # ---- Finish (the only side effects) and closing -----------------------------------------
    def commit(self, name: str, use_now: bool) -> Path:
        """Puts the new bundle into the library (and into use). Raises on failure."""
        if self.bundle_dir is None or not self.bundle_dir.is_dir():
            raise BundleError("there is no trained model to save")
        path = self.library.add(self.bundle_dir, name=name, move=True)
        self.bundle_dir = None
        self.saved_path = path
        if use_now:
            self.library.activate(path.name)
            self.model_ready.emit(str(path))
        return path

    def _say_kept(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "A trained model was kept",
                          "\n\n".join(line[0].upper() + line[1:] + "."
                                       for line in self.kept_from_earlier), parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.kept_box = box
        box.open()

    def work_at_stake(self) -> str | None:
        """What closing now would throw away, in words (None: nothing): training under way, or
        a trained model not yet saved to the library."""
        if self.training_page.state in ("running", "finishing"):
            return "Training is still running; closing stops it and nothing is saved."
        if self.bundle_dir is not None and self.saved_path is None:
            return ("The trained model has not been added to the library; closing discards it "
                    "(Finish adds it).")
        return None

    def confirm_discard(self, what: str) -> bool:
        """Asks before work is thrown away; True: go ahead."""
        answer = QMessageBox.question(
            self, "Close the retraining wizard?", what,
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard

    def done(self, result: int) -> None:
        if result == QWizard.DialogCode.Accepted and self.saved_path is None:
            if not self.validateCurrentPage():  # Finish: FinishPage.validatePage commits
                return
        elif result != QWizard.DialogCode.Accepted and self.ask_before_discarding:
            what = self.work_at_stake()
            if what is not None and not self.confirm_discard(what):
                return
        # a step that cannot stop half-way (the export, the detector's fit) ends first: said in
        # a dialog while the window stays alive (it sat 19 s frozen without a word)
        self.jobs.cancel_all()
        if wait_visibly(self, "Closing the retraining wizard",
                        "Stopping: the step under way (the export or the unknown detector's fit) "
                        "ends first; nothing of it is kept…", self.jobs.idle,
                        limit_s=CLOSE_WAIT_S):
            retrain.remove_work_dir(self.work)
        else:   # a step that outlasted the wait: its folder goes when it has ended
            log.warning("closing the wizard: a step still runs after %.0f s; its work folder "
                        "%s is deleted when it ends", CLOSE_WAIT_S, self.work)
            retrain.remove_work_dir_after(self.work, self.jobs.threads())
        super().done(result)  # validates again when accepted: committing is idempotent
