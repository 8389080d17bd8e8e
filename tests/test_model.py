"""training.model (and training.flops): the architecture contract of SSDC-MiniNet."""
import numpy as np
import pytest


@pytest.mark.parametrize("design,params", [("A", 23590), ("B", 23588)])
def test_parameter_counts_match_the_paper(design, params):
    from training.model import build_ssdc_mininet

    model = build_ssdc_mininet(design)
    assert model.count_params() == params
    assert model.input_shape == (None, 200, 200, 3)
    assert model.output_shape == (None, 6)


def test_flops_match_the_paper():
    from training.flops import count_flops
    from training.model import build_ssdc_mininet

    assert round(count_flops(build_ssdc_mininet("B")) / 1e9, 3) == 0.105


def test_layer_names_and_inspection_outputs():
    from training.model import build_ssdc_mininet, inspection_model, se_block_count

    model = build_ssdc_mininet("B", num_classes=4, input_size=64)
    names = {layer.name for layer in model.layers}
    assert {"rescale", "features", "classifier", "probs", "last_dw"} <= names
    assert model.get_layer("last_dw").kernel_size == (11, 11)
    assert se_block_count(model) == 8
    out = inspection_model(model)(np.zeros((2, 64, 64, 3), np.float32))
    assert out["probs"].shape == (2, 4)
    assert out["se8_excite"].shape == (2, 64)
    assert out["se1_input"].shape == (2, 32, 32, 8)
    assert out["features"].shape[-1] == 64
    np.testing.assert_allclose(np.asarray(out["probs"]).sum(axis=1), 1.0, rtol=1e-5)


def test_model_rescales_raw_pixels_itself():
    from training.model import build_ssdc_mininet

    model = build_ssdc_mininet("A", input_size=32)
    rescale = model.get_layer("rescale")
    assert float(np.asarray(rescale(np.full((1, 1, 1, 3), 255.0, np.float32))).max()) == pytest.approx(1.0)
    assert float(np.asarray(rescale(np.zeros((1, 1, 1, 3), np.float32))).min()) == pytest.approx(-1.0)


def test_new_head_keeps_backbone_weights():
    from training.model import build_ssdc_mininet, replace_head

    model = build_ssdc_mininet("B", 6, 64)
    new = replace_head(model, 3)
    assert new.output_shape == (None, 3)
    np.testing.assert_array_equal(np.asarray(new.get_layer("stem_conv").kernel),
                                  np.asarray(model.get_layer("stem_conv").kernel))
