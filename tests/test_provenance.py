"""The model card says what made a bundle: a command a shell can run again, the code, and each
step after training."""
import json
import shlex

from training.provenance import code_version, record_step, shell_command


def test_the_recorded_command_runs_again_as_given():
    argv = ["train", "--data", "/data/neu cls", "--notes", "1.4.0: fine-tune of 1.3.0, 16 epochs",
            "--epochs", "16"]
    command = shell_command(argv)
    assert shlex.split(command)[3:] == argv    # " ".join lost the notes' quoting (an audit)


def test_each_step_on_a_bundle_is_recorded_with_the_code(tmp_path):
    (tmp_path / "model_card.json").write_text(json.dumps(
        {"name": "x", "class_names": ["a", "b"], "input_size": 64, "history": "damaged"}))
    record_step(tmp_path, "calibrate", "python -m training calibrate --model b")
    record_step(tmp_path, "export", "python -m training export --model b")
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert [h["step"] for h in card["history"]] == ["calibrate", "export"]
    assert card["history"][0]["time"].endswith("+00:00")
    code = card["history"][1]["code"]
    assert set(code) == {"commit", "dirty", "version"}


def test_the_code_is_the_checkouts_commit():
    code = code_version()
    # a git checkout (as the tests run) names its commit; the packaged app has none
    assert code["commit"] is None or (len(code["commit"]) == 40 and code["dirty"] in (True, False))
