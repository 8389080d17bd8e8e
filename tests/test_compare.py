"""The comparison table reproduces the paper's counting on the baselines."""
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
