"""The rule that keeps a useless model from being offered: stand-in reports, the CLI's refusal
and the wizard's evaluation and finish pages."""
import numpy as np
import pytest

from inspector import retrain
from training.metrics import classification_report

NAMES = ["blowhole", "break", "crack", "fray", "free", "uneven"]


def report(true, pred, names=NAMES):
    return classification_report(np.asarray(true), np.asarray(pred), names)


def magnetic_tile_like(pred_fn):
    """A held-out split shaped like magnetic-tile: 95 'free', 3-12 of each defect."""
    counts = [12, 9, 6, 3, 95, 10]
    true = np.concatenate([np.full(n, i) for i, n in enumerate(counts)])
    return report(true, pred_fn(true))


def test_constant_guess_is_refused():
    rep = magnetic_tile_like(lambda t: np.full(len(t), NAMES.index("free")))
    assert rep["accuracy"] > 0.7   # accuracy alone looks fine
    problems = retrain.usefulness_problems(rep)
    assert any("near chance" in p for p in problems)
    assert any("rarely finds" in p and "fray (recall 0%)" in p for p in problems)


def test_one_lost_class_is_refused_and_a_good_model_is_not():
    def lose_fray(t):
        p = t.copy()
        p[t == NAMES.index("fray")] = NAMES.index("free")
        return p
    rep = magnetic_tile_like(lose_fray)
    assert rep["macro_f1"] > retrain.min_macro_f1(6)   # macro F1 alone would pass
    [problem] = retrain.usefulness_problems(rep)
    assert "fray (recall 0%)" in problem and "median class recall is 100%" in problem

    def mostly_right(t):
        p = t.copy()
        p[np.flatnonzero(t == 0)[:3]] = NAMES.index("free")   # blowhole recall 75%
        return p
    assert retrain.usefulness_problems(magnetic_tile_like(mostly_right)) == []


def test_rule_thresholds():
    assert retrain.min_macro_f1(2) == 0.5 and retrain.min_macro_f1(6) == pytest.approx(1 / 3)
    assert retrain.RECALL_RATIO == 0.5
    # recall 40% against a median of 90%: lost; 50% against 90%: kept
    names = ["a", "b", "c"]
    t = np.repeat([0, 1, 2], 10)
    p = t.copy()
    p[:6] = 1
    assert retrain.usefulness_problems(report(t, p, names))
    p = t.copy()
    p[:5] = 1
    p[10] = 2
    p[20] = 0
    assert retrain.usefulness_problems(report(t, p, names)) == []
    assert retrain.usefulness_problems(report([], [], names)) == ["no held-out images to judge it on"]


def test_split_evaluation_usable_and_better():
    bad = magnetic_tile_like(lambda t: np.full(len(t), 4))
    good = magnetic_tile_like(lambda t: t)
    assert not retrain.SplitEvaluation(bad, None).better
    assert not retrain.SplitEvaluation(bad, None).usable
    assert retrain.SplitEvaluation(good, None).better
    assert retrain.SplitEvaluation(good, bad).better
    assert not retrain.SplitEvaluation(bad, good).better
    # a model without some of the current model's classes is not offered in its place
    assert not retrain.SplitEvaluation(good, None, lost_classes=["scratches"]).better
    text = retrain.format_recalls(bad)
    assert text.startswith("macro F1 ") and "fray 0%" in text and "free 100%" in text


def _retrain_with(monkeypatch, tmp_path, root, bundle, fake_train, evaluation, on_add=None):
    """``inspector retrain --activate`` on ``root`` with training, the comparison and the
    library's add replaced (``on_add`` runs inside the add, while it saves) and activation
    forbidden: (exit status, the names added)."""
    from inspector.library import ModelLibrary
    import inspector.retrain.cli as cli

    added = []

    def fake_add(self, out, name, move):
        if on_add is not None:
            on_add()
        added.append(name)
        return tmp_path / "lib" / "plant-v1"

    monkeypatch.setattr("training.train.train", fake_train)
    monkeypatch.setattr(cli, "evaluate_split", lambda *a, **k: evaluation())
    monkeypatch.setattr(ModelLibrary, "add", fake_add)
    monkeypatch.setattr(ModelLibrary, "activate", lambda self, name: pytest.fail("activated"))
    status = retrain.main(["--data", str(root), "--current", str(bundle), "--epochs", "1",
                           "--rate", "500", "--activate", "--name", "Plant"])
    return status, added


def test_command_line_refuses_to_activate_a_useless_model(tmp_path, stand_in_bundle, capsys,
                                                          monkeypatch):
    """--activate with an unusable model: saved (and said so), not activated, exit status 3."""
    from synth import make_dataset
    import inspector.retrain.cli as cli

    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8)
    bad = report([0, 0, 1, 1], [0, 0, 0, 0], ["pits", "scale"])

    def fake_train(folder, out, config, *a, **k):
        out.mkdir(parents=True)
        (out / "model_card.json").write_text("{}")
        return {}

    class FakeEv:
        report, current_report, note, better = bad, None, "", False
        problems = retrain.usefulness_problems(bad)

    status, added = _retrain_with(monkeypatch, tmp_path, root, stand_in_bundle, fake_train, FakeEv)
    out, err = capsys.readouterr()
    assert status == cli.NOT_USABLE_STATUS == 3
    assert added == ["Plant"] and "saved as plant-v1" in out
    assert out.index("new model: macro F1") < out.index("saved as")
    assert "WARNING: the new model is not usable" in out
    assert "--activate refused" in err and "scale (recall 0%)" in err


def test_wizard_does_not_offer_a_useless_model(qtbot):
    from types import SimpleNamespace

    from inspector.gui.wizard.evaluation_page import EvaluationPage
    from inspector.gui.wizard.finish_page import FinishPage
    from inspector.library import ModelLibrary

    bad = magnetic_tile_like(lambda t: np.full(len(t), 4))
    good = magnetic_tile_like(lambda t: t)
    card = {"name": "Tiles", "class_names": NAMES, "input_size": 200,
            "metrics": {"test": {"accuracy": bad["accuracy"]}}}
    for rep, usable in ((bad, False), (good, True)):
        wiz = SimpleNamespace(card=card, evaluation=retrain.SplitEvaluation(rep, None),
                              library=ModelLibrary(), current_title="bundled", folders=["d"])
        ev_page = EvaluationPage(wiz)
        qtbot.addWidget(ev_page)
        ev_page._show(wiz.evaluation)
        text = ev_page.headline.text()
        assert text.index("macro F1") < text.index("correct on")
        assert ("Do not use this model" in text) is not usable
        assert ev_page.per_class.horizontalHeaderItem(1).text() == "Recall"
        page = FinishPage(wiz)
        qtbot.addWidget(page)
        page.initializePage()
        assert page.use_now.isEnabled() is usable
        assert page.use_now.isChecked() is usable and page.later.isChecked() is not usable
        assert ("Not usable" in page.summary.text()) is not usable


def _swallowed_ctrl_c():
    """A Ctrl+C that lands where Python only reports it (a destructor in TensorFlow's clean-up):
    the handler runs, its KeyboardInterrupt goes nowhere."""
    import os
    import signal

    class Dropping:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)   # the handler raises here, inside __del__

    Dropping()


@pytest.mark.parametrize("when", ["training", "training, as another error", "after training",
                                  "saving", "saving, then an error"])
def test_command_line_ctrl_c_is_never_lost(tmp_path, stand_in_bundle, capfd, monkeypatch, when):
    """A Ctrl+C during training that Python swallowed used to let the run go on and save a
    model with exit status 0; one during saving was thrown away. Now one during training
    cancels (nothing saved, 130); one swallowed as training ends keeps the finished model, as a
    stop during the comparison does; one during saving waits for it, is said, and the run stops
    there (130), the model kept and not activated."""
    from synth import make_dataset
    import inspector.retrain.cli as cli
    from training.cancel import Cancelled

    root = make_dataset(tmp_path / "plant", classes=("pits", "scale"), per_class=8)
    good = report([0, 0, 1, 1], [0, 0, 1, 1], ["pits", "scale"])

    def fake_train(folder, out, config, progress=None, should_stop=lambda: False, **k):
        if when == "training":
            _swallowed_ctrl_c()
            if should_stop():             # as training checks at every epoch
                raise Cancelled("cancelled")
        if when == "training, as another error":   # Keras building a graph when it came
            _swallowed_ctrl_c()
            raise TypeError("Exception encountered when calling Reshape.call()")
        out.mkdir(parents=True)
        (out / "model_card.json").write_text("{}")
        if when == "after training":
            _swallowed_ctrl_c()           # in TensorFlow's clean-up as the training returns
        return {}

    class FakeEv:
        report, current_report, note, better, problems = good, None, "", True, []

    if when == "saving, then an error":   # something after the model is in the library fails
        def broken(card):
            raise RuntimeError("a card it cannot read")
        monkeypatch.setattr(cli.ModelCard, "notes", broken)
    status, added = _retrain_with(monkeypatch, tmp_path, root, stand_in_bundle, fake_train, FakeEv,
                                  on_add=_swallowed_ctrl_c if when.startswith("saving") else None)
    out, err = capfd.readouterr()   # the notice goes to the file descriptor
    if when == "saving, then an error":
        assert status == 1 and added == ["Plant"] and "nothing was saved" not in err
        assert "plant-v1 is saved in" in err and "a card it cannot read" in err
        return
    assert status == 130, err
    if when.startswith("training"):
        assert added == [] and "cancelled; nothing was saved" in err and "TypeError" not in err
    elif when == "after training":
        assert added == ["Plant"] and "stopped during the comparison" in err
    else:
        assert added == ["Plant"] and cli.SAVING_NOTICE in err
        assert "stopped after saving: plant-v1 is kept, not in use" in err


def test_a_model_that_keeps_some_current_classes_and_drops_others_is_not_offered(tmp_path):
    """New images of two of the current model's classes and of a new class (the other classes'
    images forgotten): the new model would stop finding those, so it is not offered in the
    current one's place, and the data check warns first. A model of another line's own classes
    (none shared) is not held back so."""
    from synth import make_bundle, make_dataset
    from training.bundle import SPLIT_FILE, write_json
    from training.checks import WARNING, find_problems

    data = make_dataset(tmp_path / "data", classes=("crazing", "roll_marks"), per_class=4,
                        size=64)
    new = make_bundle(tmp_path / "new", classes=("crazing", "roll_marks"), litert=False)
    write_json(new / SPLIT_FILE, {"train": [], "validation": [],
                                  "test": sorted(p.relative_to(data).as_posix()
                                                 for p in data.rglob("*.png"))})
    current = make_bundle(tmp_path / "cur", classes=("crazing", "inclusion", "patches"),
                          litert=False)
    ev = retrain.evaluate_split(new, data, current)
    assert ev.lost_classes == ["inclusion", "patches"] and not ev.better
    other = make_bundle(tmp_path / "other", classes=("blowhole", "crack"), litert=False)
    assert retrain.evaluate_split(new, data, other).lost_classes == []
    checked = find_problems(data, model_classes=["crazing", "inclusion", "patches"])
    lost = [p for p in checked.problems if p.code == "fewer-classes"]
    assert lost and lost[0].severity == WARNING and "inclusion" in lost[0].message
    assert not [p for p in find_problems(data, model_classes=["blowhole", "crack"]).problems
                if p.code == "fewer-classes"]
