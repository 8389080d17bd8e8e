"""The comparison table reproduces the paper's counting on the baselines."""
from contextlib import nullcontext

import pytest

from synth import CLASSES, make_dataset
from training.compare import compare, format_table


@pytest.mark.slow
def test_compare_counts_like_the_paper(tmp_path):
    data = make_dataset(tmp_path, classes=CLASSES, per_class=4, size=16)
    result = compare(data, models=["ssdc_mininet", "mobilenet_0.1"], epochs=0)
    rows = {r["model"]: r for r in result["rows"]}
    assert rows["ssdc_mininet"]["parameters"] == 23590  # design A, the bundled one
    assert rows["mobilenet_0.1"]["parameters"] == 40499  # the paper's Table 1
    assert rows["mobilenet_0.1"]["gflops"] == 0.013
    assert rows["ssdc_mininet"]["cpu_latency_ms"] > 0
    table = format_table(result)
    assert "mobilenet_0.1" in table and "40,499" in table


@pytest.mark.parametrize("extra, said", [
    (["--weights", "vgg16_tl"], "expected MODEL=FILE"),
    (["--weights", "resnet50=w.h5"], "resnet50 takes no ImageNet weights"),
    (["--weights", "vgg16_tl=missing.h5"], "vgg16_tl=missing.h5: file not found"),
    (["--models", "ssdc_mininet", "--weights", "vgg16_tl=w.h5"], "not among the models compared"),
    (["--models", "ssdc_mininet,vgg19"], "unknown model(s) vgg19"),
    (["--bundle", "nowhere"], "--bundle nowhere: folder not found"),
    (["--weights", "vgg16_tl=w.h5", "vgg16_tl=w.h5"], "vgg16_tl named more than once"),
    (["--models", "ssdc_mininet,,vgg19"], "unknown model(s) vgg19; choose"),
    (["--models", " , "], "no model named"),
    (["--weights", "vgg16_tl = text.h5"], "vgg16_tl = text.h5: not a Keras weights file"),
    (["--bundle", "w.h5"], "--bundle w.h5: a file, not a bundle folder"),
    (["--epochs", "0"], "must be at least 1, got 0"),
])
def test_compare_options_are_checked_before_any_training(tmp_path, monkeypatch, capsys, extra,
                                                          said):
    from training.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))   # the signature only
    (tmp_path / "text.h5").write_text("not weights")
    with pytest.raises(SystemExit) if extra[0] == "--epochs" else nullcontext():
        assert main(["compare", "--data", str(tmp_path)] + extra) == 2
    assert said in capsys.readouterr().err
