"""The retraining wizard and the model manager, walked with qtbot on tiny synthetic data and the
64x64 stand-in bundle (1-2 epochs)."""
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from inspector import paths, retrain
from inspector.gui.model_manager import ModelManagerDialog
from inspector.gui.wizard import (PAGE_DATA, PAGE_EVALUATION, PAGE_FINISH, PAGE_SETTINGS,
                                  PAGE_TRAINING, RetrainWizard)
from inspector.library import ModelLibrary
from synth import CLASSES, make_dataset, short_budget_speeds
from training import transfer
from training.bundle import read_card
from training.card import ModelCard

TRAIN_TIMEOUT = 180_000  # ms; generous for a loaded 2-core machine


@pytest.fixture
def open_wizard(qtbot, stand_in_bundle):
    made = []

    def make(verdicts=(), measure=False):
        w = RetrainWizard(stand_in_bundle, verdicts)
        w.asked = []   # what closing with work at stake asked; answered "discard"
        w.confirm_discard = lambda what, w=w: w.asked.append(what) or True
        if not measure:
            w.seconds_per_image = 0.002  # skip timing the PC (tested once below)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        if w.isVisible():
            w.reject()


def check(qtbot, w, folder, merge=None):
    with qtbot.waitSignal(w.data_page.checked, timeout=30_000):
        w.data_page.set_folder(folder, merge)
    return w.report


def go_next(qtbot, w, page_id):
    assert w.currentPage().isComplete()
    w.next()
    assert w.currentId() == page_id


def train(qtbot, w, epochs=2):
    w.settings_page.epochs.setValue(epochs)
    with qtbot.waitSignal(w.training_page.finished, timeout=TRAIN_TIMEOUT) as blocker:
        go_next(qtbot, w, PAGE_TRAINING)
    return blocker.args[0]


def test_data_page_reports_problems(qtbot, open_wizard, tmp_path):
    root = make_dataset(tmp_path / "d", classes=CLASSES[:3], per_class=8)
    bad = root / "crazing" / "scan_0042.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    dup = root / "patches" / "copy_of_cr_3.png"
    shutil.copy(root / "crazing" / "cr_3.png", dup)
    w = open_wizard()
    page = w.data_page
    assert not page.isComplete()
    report = check(qtbot, w, root)
    assert not report.ok
    tree = page.problem_tree
    full = Qt.ItemDataRole.UserRole  # the message before it was wrapped to the width
    texts = [tree.topLevelItem(i).data(0, full) for i in range(tree.topLevelItemCount())]
    assert any(t.startswith("ERROR") and "scan_0042.png" in t for t in texts)
    assert any(t.startswith("ERROR") and "two or more classes" in t for t in texts)
    named = {tree.topLevelItem(i).child(j).text(0) for i in range(tree.topLevelItemCount())
             for j in range(tree.topLevelItem(i).childCount())}
    assert {str(bad), str(dup), str(root / "crazing" / "cr_3.png")} <= named
    assert page.class_table.rowCount() == 3
    assert page.class_table.item(0, 1).text() == "8"  # crazing: 9 files, one unreadable
    assert page.class_table.item(0, 2).text() == "known"
    assert "Some of the current model's classes" in page.mode_label.text()
    assert page.thumbs.count() == 9
    # errors block Next until the named files are left out
    assert not page.isComplete() and not page.exclude_box.isHidden()
    page.exclude_box.setChecked(True)
    assert page.isComplete()
    assert w.exclude == {str(bad), str(dup), str(root / "crazing" / "cr_3.png")}
    assert w.counts() == {"crazing": 7, "inclusion": 8, "patches": 8}
    # a missing folder is reported, not raised
    check(qtbot, w, tmp_path / "nowhere")
    assert "folder not found" in page.problem_tree.topLevelItem(0).data(0, full)
    assert not page.isComplete()


@pytest.mark.slow
def test_retrain_new_classes_finish_use_now_and_roll_back(qtbot, open_wizard, tmp_path,
                                                          stand_in_bundle, monkeypatch):
    # two epochs on 24 images need not make a usable model; the flow is what is tested here
    # (the usefulness rule has its own tests in test_retrain_quality.py)
    monkeypatch.setattr(retrain.SplitEvaluation, "problems", property(lambda self: []))
    monkeypatch.setattr(ModelCard, "usability_problems", lambda self: [])   # the library's
    # the augmentation check runs and drops the camera augmentation: the finish page says so
    monkeypatch.setattr(transfer, "HEAD_SEPARATES", 1.01)
    monkeypatch.setattr(transfer, "keep_augmentation", lambda *a, **k: False)
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale", "streaks"), per_class=8)
    w = open_wizard(measure=True)
    report = check(qtbot, w, root)
    assert report.ok and report.new_classes == ["pits", "scale", "streaks"]
    assert "New classes" in w.data_page.mode_label.text()
    with qtbot.waitSignal(w.settings_page.measured, timeout=60_000):
        go_next(qtbot, w, PAGE_SETTINGS)
        # Next waits for the measured speed (the settings and the estimate follow from it)
        assert not w.settings_page.isComplete()
        assert not w.button(QWizard.WizardButton.NextButton).isEnabled()
    s = w.settings_page
    assert s.isComplete() and w.button(QWizard.WizardButton.NextButton).isEnabled()
    assert list(w.seconds_per_image) == [64] and w.seconds_per_image[64] > 0   # {size: s}
    assert "Estimated time on this PC" in s.estimate.text()
    assert s.from_current.isChecked()
    config = s.config()
    assert config.init_bundle == str(stand_in_bundle) and config.input_size == 64
    assert config.class_names == ("pits", "scale", "streaks")
    assert train(qtbot, w, epochs=2) is True
    t = w.training_page
    assert [r["epoch"] for r in t.history] == [1, 2]
    xs, ys = t.curves["val_accuracy"].getData()
    assert list(xs) == [1, 2] and all(0 <= y <= 100 for y in ys)
    assert w.bundle_dir.is_dir() and str(w.work) in str(w.bundle_dir)
    assert ModelLibrary().versions() == []  # nothing saved before Finish
    assert "not been added to the library" in w.work_at_stake()   # closing would ask

    shown = []   # the page's progress while it evaluates
    w.evaluation_page.bar.valueChanged.connect(shown.append)
    with qtbot.waitSignal(w.evaluation_page.evaluated, timeout=60_000):
        go_next(qtbot, w, PAGE_EVALUATION)
    assert shown and shown[-1] == 1000 and not w.evaluation_page.bar.isVisible()
    ev = w.evaluation
    assert ev.report["count"] == 3  # one test image per class
    assert ev.current_report is None and "other classes" in ev.note
    assert w.evaluation_page.per_class.rowCount() == 3
    assert w.evaluation_page.confusion.rowCount() == 3
    assert w.evaluation_page.wrong.count() == len(ev.misclassified)

    go_next(qtbot, w, PAGE_FINISH)
    f = w.finish_page
    assert f.use_now.isChecked()  # the current model cannot classify the new classes
    assert "Trained without the camera augmentation" in f.summary.text()
    assert "test-mininet-v1" in f.target.text()
    work = w.work
    with qtbot.waitSignal(w.model_ready, timeout=10_000) as ready:
        w.button(QWizard.WizardButton.FinishButton).click()
    lib = ModelLibrary()
    [v] = lib.versions()
    assert ready.args == [str(v.path)]
    assert lib.active_path() == v.path
    assert v.class_names == ["pits", "scale", "streaks"]
    assert read_card(v.path)["training"]["config"]["epochs"] == 2
    assert not work.exists()  # temporary files are gone
    assert not w.isVisible()

    # the model manager lists it and rolls back in one click
    dlg = ModelManagerDialog()
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 2
    assert dlg.table.item(1, 1).text() == v.version and "in use" in dlg.table.item(1, 0).text()
    with qtbot.waitSignal(dlg.model_selected) as sel:
        dlg.rollback_button.click()
    assert sel.args == [str(paths.bundled_model_dir())]
    assert lib.active_path() is None and "in use" in dlg.table.item(0, 0).text()
    dlg.select(v.version)
    with qtbot.waitSignal(dlg.model_selected) as sel:
        dlg.use_button.click()
    assert sel.args == [str(v.path)] and lib.active_path() == v.path
    assert not dlg.remove_button.isEnabled()  # the model in use cannot be removed
    dlg.select("bundled")
    installed = (paths.bundled_model_dir() / "model_card.json").is_file()
    assert dlg.use_button.isEnabled() == installed and not dlg.remove_button.isEnabled()
    dlg.select(v.version)
    assert "classes (3): pits, scale, streaks" in dlg.details.toPlainText()
    dlg.rollback()
    dlg.select(v.version)
    assert dlg.remove_button.isEnabled()
    dlg.remove_selected(confirm=False)
    assert lib.versions() == [] and dlg.table.rowCount() == 1


def test_leaving_the_folder_field_unchanged_checks_nothing_again(qtbot, open_wizard, tmp_path):
    """Focus leaving the folder field (e.g. for Next) ends its editing: an unchanged folder is not
    checked again (the new check would empty the report the next pages read); a changed one is."""
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8)
    w = open_wizard()
    report = check(qtbot, w, root)
    assert report.ok
    w.data_page.folder_edit.editingFinished.emit()
    # a check would be scheduled on the page's timer, or running
    assert not w.data_page._timer.isActive() and w.data_page._job is None
    assert w.report is report and w.data_page.isComplete()
    with qtbot.waitSignal(w.data_page.checked, timeout=30_000):   # Enter: checked again
        w.data_page.folder_edit.returnPressed.emit()
    assert w.report is not report and w.report.ok
    other = make_dataset(tmp_path / "other", classes=("pits", "scale", "streaks"), per_class=8)
    w.data_page.folder_edit.setText(str(other))
    with qtbot.waitSignal(w.data_page.checked, timeout=30_000):
        w.data_page.folder_edit.editingFinished.emit()
    assert w.report is not report and w.report.class_names == ["pits", "scale", "streaks"]


def test_enter_in_a_changed_folder_field_does_not_go_on_with_the_old_check(qtbot, open_wizard,
                                                                          tmp_path):
    """The Enter that asks for a check also reaches the wizard's Next: with the old folder's
    report still complete, the settings page opened on the old data."""
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8)
    other = make_dataset(tmp_path / "other", classes=("pits", "scale", "streaks"), per_class=8)
    w = open_wizard()
    assert check(qtbot, w, root).ok
    page = w.currentId()
    w.data_page.folder_edit.setFocus()
    qtbot.waitUntil(w.data_page.folder_edit.hasFocus, timeout=5000)
    w.data_page.folder_edit.setText(str(other))
    with qtbot.waitSignal(w.data_page.checked, timeout=30_000):
        qtbot.keyClick(w.data_page.folder_edit, Qt.Key.Key_Return)
        assert w.currentId() == page and not w.data_page.isComplete()
    assert w.report.class_names == ["pits", "scale", "streaks"] and w.data_page.isComplete()


def test_settings_measure_the_smaller_size_a_short_budget_chooses(qtbot, open_wizard, tmp_path,
                                                                 monkeypatch):
    """On a PC so slow that the budget buys few epochs at the full size the settings choose the
    smaller size (the 64x64 stand-in with SHORT_BUDGET_SIZE at 32 plays 200 and 128): the page
    measures there too before Next, and says why it trains smaller."""
    measured = short_budget_speeds(monkeypatch, retrain, {64: 5.0, 32: 1.0})
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale", "streaks"), per_class=8)
    w = open_wizard(measure=True)
    assert check(qtbot, w, root).ok
    with qtbot.waitSignal(w.settings_page.measured, timeout=60_000) as blocker:
        go_next(qtbot, w, PAGE_SETTINGS)
    assert blocker.args == [1.0] and measured == [64, 32]
    assert w.seconds_per_image == {64: 5.0, 32: 1.0}
    s = w.settings_page
    assert s.isComplete() and s.config().input_size == 32
    assert "1 training images per second at 32x32, smaller than the full 64x64" \
        in s.estimate.text()
    # a measurement that ends after the user went back keeps its speed and starts nothing
    w.back()
    assert w.currentId() == PAGE_DATA
    report, w.report = w.report, None   # the data being checked again
    w.seconds_per_image = {32: 1.0}
    s._measured((48, 2.0))
    assert w.seconds_per_image == {32: 1.0, 48: 2.0} and s._measure_job is None
    w.report, w.seconds_per_image = report, {64: 5.0, 32: 1.0}
    go_next(qtbot, w, PAGE_SETTINGS)
    s.epochs.setValue(3)   # epochs by hand: no budget to be short of, the full size (as --epochs)
    assert s.config().input_size == 64 and s.config().time_budget_s == 0
    assert "measured 0 training images per second at 64x64" in s.estimate.text()


def test_settings_measure_the_full_size_first_even_when_the_guess_is_slow(
        qtbot, open_wizard, tmp_path, monkeypatch):
    """A guessed speed that already calls the budget short does not skip the full size's
    measurement (the choice of size rests on it); a second measurement that fails leaves the
    first size's speed carried over, and the page says so instead of "measured"."""
    measured = short_budget_speeds(monkeypatch, retrain, {64: 5.0, 32: 1.0})
    monkeypatch.setattr(retrain, "guess_seconds_per_image", lambda size=200: 50.0)
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale", "streaks"), per_class=8)
    w = open_wizard(measure=True)
    assert check(qtbot, w, root).ok
    with qtbot.waitSignal(w.settings_page.measured, timeout=60_000):
        go_next(qtbot, w, PAGE_SETTINGS)
    assert measured == [64, 32]

    def fails_small(config, names, **kw):
        measured.append(config.input_size)
        if config.input_size == 32:
            raise RuntimeError("out of memory")
        return 5.0

    monkeypatch.setattr(retrain, "measure_seconds_per_image", fails_small)
    measured.clear()
    w.seconds_per_image = None
    s = w.settings_page
    s.initializePage()
    qtbot.waitUntil(lambda: measured == [64, 32] and s.isComplete(), timeout=60_000)
    assert s.config().input_size == 32 and w.seconds_per_image == {64: 5.0}
    text = s.estimate.text()   # "(about 1 training images per second at 32x32, from ..."
    assert "(about " in text and "(measured " not in text, text
    assert "from the speed measured at 64x64" in text and "out of memory" in text


def test_finish_without_the_evaluation_judges_the_model_by_its_card(qtbot, open_wizard):
    """The evaluation page cancelled or failed: the finish page judges the model by its card's
    test figures and does not call it better than the current one."""
    w = open_wizard()
    card = {"name": "test-mininet", "class_names": ["a", "b"], "metrics": {"test": {
        "accuracy": 0.5, "count": 10, "confusion_matrix": [[5, 0], [5, 0]]}}}
    w.card, w.evaluation = card, None
    f = w.finish_page
    f.initializePage()
    assert not f.use_now.isEnabled() and f.later.isChecked()
    assert "Not usable" in f.summary.text() and "it rarely finds b" in f.summary.text()
    assert "not compared with the current model" in f.summary.text()
    card["metrics"]["test"]["confusion_matrix"] = [[5, 0], [1, 4]]
    f.initializePage()
    assert f.use_now.isEnabled() and f.later.isChecked() and "Not usable" not in f.summary.text()


@pytest.mark.slow
def test_same_classes_compared_and_kept_for_later(qtbot, open_wizard, tmp_path, monkeypatch):
    from training import inspection_export

    def fails(*args, **kwargs):   # and the export fails its check: the model is kept anyway
        raise inspection_export.InspectionExportError("LiteRT fp32: <std_features> differ")

    monkeypatch.setattr(inspection_export, "build_inspection", fails)
    root = make_dataset(tmp_path / "neu-like", classes=CLASSES, per_class=6)
    verdicts = [(root / "crazing" / "cr_0.png", "crazing")]
    w = open_wizard(verdicts=verdicts)
    assert not w.data_page.verdicts_box.isHidden() and w.data_page.verdicts_box.isChecked()
    report = check(qtbot, w, root)
    assert report.ok and report.same_classes
    assert "Same classes" in w.data_page.mode_label.text()
    go_next(qtbot, w, PAGE_SETTINGS)
    assert w.settings_page.config().class_names == tuple(CLASSES)  # the model's order
    assert train(qtbot, w, epochs=1) is True
    assert w.data_dir != root  # verdicts are staged with the folder
    with qtbot.waitSignal(w.evaluation_page.evaluated, timeout=60_000):
        go_next(qtbot, w, PAGE_EVALUATION)
    ev = w.evaluation
    assert ev.current_report is not None and ev.current_report["count"] == ev.report["count"] == 6
    headers = [w.evaluation_page.per_class.horizontalHeaderItem(c).text()
               for c in range(w.evaluation_page.per_class.columnCount())]
    assert "Current P" in headers and "Current R" in headers
    # misclassified images are shown by their original paths, not the staged links
    assert all(str(root) in m.path for m in ev.misclassified)
    go_next(qtbot, w, PAGE_FINISH)
    text = w.finish_page.summary.text()
    assert "(LiteRT) export failed its check" in text and "&lt;std_features&gt;" in text
    assert "without the camera augmentation" not in text   # same classes: no check
    w.finish_page.later.setChecked(True)
    w.finish_page.name.setText("Plant 2")
    with qtbot.assertNotEmitted(w.model_ready):
        w.button(QWizard.WizardButton.FinishButton).click()
    lib = ModelLibrary()
    assert [v.version for v in lib.versions()] == ["plant-2-v1"]
    assert lib.active_path() is None  # still the current (bundled) model


@pytest.mark.slow
def test_finish_now_keeps_the_best_epoch_and_stop_writes_nothing(qtbot, open_wizard, tmp_path,
                                                                monkeypatch):
    # cancelling in each phase, the augmentation check's too, has tests in test_transfer.py
    monkeypatch.setattr(transfer, "check_needed", lambda *a, **k: False)
    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=12)
    w = open_wizard()
    check(qtbot, w, root)
    go_next(qtbot, w, PAGE_SETTINGS)
    w.settings_page.epochs.setValue(200)
    w.settings_page.batch.setValue(4)
    go_next(qtbot, w, PAGE_TRAINING)
    t = w.training_page
    assert t.finish_button.isVisible() and not t.finish_button.isEnabled()   # no epoch yet
    # Finish now: ends after the epoch under way, and the model goes on with its best epoch
    with qtbot.waitSignal(t.epoch_done, timeout=TRAIN_TIMEOUT):
        pass  # mid-training: after the first epoch, with 199 to go
    assert t.finish_button.isVisible() and t.finish_button.isEnabled()
    t.finish_button.click()
    assert t.state == "finishing" and not t.finish_button.isEnabled()
    assert "still running" in w.work_at_stake()
    with qtbot.waitSignal(t.finished, timeout=TRAIN_TIMEOUT) as finished:
        pass
    assert finished.args == [True] and t.state == "done" and t.isComplete()
    last = read_card(w.bundle_dir)["training"]["phases"][-1]
    assert last["epochs_run"] == len(t.history) < 200 and last["finished_by_user"]
    assert "Finished early as asked" in t.status.text() and not t.finish_button.isVisible()
    w.evaluation = None   # the finish page says it too (here without the evaluation page)
    w.finish_page.initializePage()
    assert f"Finished early as asked, after {len(t.history)} epochs" in w.finish_page.summary.text()
    # Stop: within a batch, and nothing is kept
    t.again_button.click()
    assert t.state == "running" and w.bundle_dir is None
    with qtbot.waitSignal(t.epoch_done, timeout=TRAIN_TIMEOUT):
        pass
    assert not t.isComplete()
    with qtbot.waitSignal(t.finished, timeout=60_000) as stopped:
        t.stop_button.click()
    assert stopped.args == [False] and t.state == "cancelled"
    assert "nothing was saved" in t.status.text()
    assert 1 <= len(t.history) < 200
    assert w.bundle_dir is None
    assert not list(w.work.rglob("model.keras"))  # no bundle, not even a partial one
    assert not t.isComplete()
    # train again, and cancel the whole wizard while it runs
    t.again_button.click()
    assert t.state == "running"
    work = w.work
    w.confirm_discard = lambda what: w.asked.append(what) and False   # "Cancel": keep it
    w.reject()
    assert w.isVisible() and t.state == "running" and "still running" in w.asked[-1]
    w.confirm_discard = lambda what: True
    w.reject()  # stops the training within a batch, waits for it, deletes the temporary files
    assert all(j.finished.is_set() for j in w.jobs.running)
    assert not work.exists()
    assert ModelLibrary().versions() == [] and not paths.model_library_dir().exists()


def test_training_page_shows_the_score_the_best_epoch_is_chosen_by(qtbot, open_wizard):
    """Unequal classes: the balanced validation accuracy, not the plain one, which a model that
    calls everything the largest class would make look good."""
    from training.train import TrainConfig

    w = open_wizard()
    w.config = TrainConfig(epochs=3)
    t = w.training_page
    for e, (plain, balanced) in enumerate([(0.71, 0.17), (0.65, 0.52)], 1):
        t._epoch({"epoch": e, "seconds": 1.0, "seconds_left": 1.0, "loss": 1.0, "accuracy": 0.5,
                  "val_loss": 1.0, "val_accuracy": plain, "val_balanced_accuracy": balanced})
    assert "best balanced validation accuracy <b>52.0%</b> (epoch 2)" in t.stats.text()


def test_numbers_typed_into_the_settings_are_kept(qtbot, open_wizard, tmp_path):
    """Typed key by key, the wizard rewrote a box after every key: "0.15" as label smoothing
    kept 0.0, "0.0015" as the learning rate 0.001 (an audit); training then ran with those."""
    from PySide6.QtCore import QLocale
    from PySide6.QtTest import QTest

    w = open_wizard()
    check(qtbot, w, make_dataset(tmp_path / "d", classes=CLASSES[:3], per_class=8))
    go_next(qtbot, w, PAGE_SETTINGS)
    s = w.settings_page
    s.advanced_toggle.setChecked(True)
    point = QLocale().decimalPoint()
    for box, text, want in ((s.lr, "0.0015", 0.0015), (s.smoothing, "0.15", 0.15),
                            (s.rotation, "12.5", 12.5), (s.contrast, "0.25", 0.25),
                            (s.epochs, "25", 25)):
        box.setFocus()
        QTest.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(box, text.replace(".", point))
        QTest.keyClick(box, Qt.Key.Key_Tab)
        assert box.value() == pytest.approx(want), (box, text)
    c = s.config()
    assert (c.learning_rate, c.label_smoothing, c.epochs) == pytest.approx((0.0015, 0.15, 25))


def test_a_disk_without_room_is_said_before_the_training_starts(qtbot, open_wizard,
                                                                  monkeypatch):
    w = open_wizard()
    monkeypatch.setattr(retrain, "space_problem",
                        lambda folder, bundle: f"{folder}: 3 MB free on its disk; the new model "
                                               "needs about 56 MB")
    t = w.training_page
    t.start()
    assert t.state == "failed" and t.job is None
    assert f"Training failed: {w.work}: 3 MB free on its disk" in t.status.text()


def test_the_wizard_keeps_and_names_a_model_that_a_crashed_run_trained(qtbot, open_wizard,
                                                                        stand_in_bundle):
    """Opened after a wizard or command died with a trained model not yet saved: the model is
    added to the library (not in use) and a message says so, instead of being deleted."""
    import shutil

    from inspector import paths
    from inspector.library import ModelLibrary

    crashed = paths.user_data_dir() / retrain.WORK_DIR_NAME / "20261207-011500-abc123"
    shutil.copytree(stand_in_bundle, crashed / "run-011600-0" / "bundle")
    (crashed / retrain.LOCK_NAME).write_bytes(b"")
    w = open_wizard()
    qtbot.waitUntil(lambda: getattr(w, "kept_box", None) is not None and w.kept_box.isVisible())
    (version,) = ModelLibrary().versions()
    assert f"kept as {version.path.name}" in w.kept_box.text() and not crashed.exists()
    assert ModelLibrary().active_path() is None
    w.kept_box.accept()


def test_a_step_that_outlasts_the_close_s_wait_keeps_its_folder_until_it_ends(
        qtbot, open_wizard, monkeypatch):
    """Closing waits for a step that cannot stop half-way (the export, the detector's fit) at
    most CLOSE_WAIT_S; one still running then (a slow PC, a large data set) would have had its
    work folder deleted under it: the folder goes when the step has ended instead."""
    import threading

    from inspector.gui.wizard import retrain_wizard

    monkeypatch.setattr(retrain_wizard, "CLOSE_WAIT_S", 0.3)
    w = open_wizard()
    work = w.work
    step_may_end = threading.Event()

    def export(_progress, _should_stop):   # does not look at should_stop, as an export
        assert step_may_end.wait(30)
        (work / "exported.tflite").write_bytes(b"x")

    w.jobs.start(export)
    w.reject()
    assert not w.isVisible()
    assert work.is_dir() and (work / retrain.DISCARDED_NAME).exists()
    step_may_end.set()
    qtbot.waitUntil(lambda: not work.exists(), timeout=10_000)
