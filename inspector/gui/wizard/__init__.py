"""The retraining wizard (a package, a file per page): new labelled images -> checked data ->
settings -> training with live curves -> evaluation against the current model -> a new version
in the model library.

The pages only arrange widgets and forward signals: checking is ``training.checks``, staging,
counting, default settings, the speed guess and evaluation are ``inspector.retrain`` (the same
functions ``python -m inspector.retrain`` calls), training is ``training.train.train`` and the
library is ``inspector.library``. Long work runs in threads of its own (``gui.workers.TaskRunner``).
Nothing outside a temporary folder is written before Finish (``FinishPage.validatePage``);
cancelling stops the work within one batch and deletes the temporary folder.
"""
from __future__ import annotations

from .common import PAGE_DATA, PAGE_EVALUATION, PAGE_FINISH, PAGE_SETTINGS, PAGE_TRAINING
from .data_page import DataPage
from .evaluation_page import EvaluationPage
from .finish_page import FinishPage
from .retrain_wizard import RetrainWizard
from .settings_page import SettingsPage
from .training_page import TrainingPage

__all__ = ["PAGE_DATA", "PAGE_EVALUATION", "PAGE_FINISH", "PAGE_SETTINGS", "PAGE_TRAINING",
           "DataPage", "EvaluationPage", "FinishPage", "RetrainWizard", "SettingsPage",
           "TrainingPage"]
