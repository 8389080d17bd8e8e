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


def test_standardised_input_ignores_brightness_and_contrast():
    """input_norm="standardize": an image and the same image with another exposure, brightness
    and contrast (unclipped) give the same output."""
    from training.model import build_ssdc_mininet

    model = build_ssdc_mininet("B", 3, 48, input_norm="standardize")
    rng = np.random.default_rng(0)
    x = rng.uniform(60, 160, (2, 48, 48, 3)).astype(np.float32)
    changed = (x - 110.0) * 0.6 + 130.0
    np.testing.assert_allclose(np.asarray(model(changed)), np.asarray(model(x)), atol=1e-4)
    assert model.count_params() == build_ssdc_mininet("B", 3, 48).count_params()


def test_colour_standardisation_keeps_an_even_cast_and_is_standardize_on_grey_images():
    """input_norm="standardize_colour" subtracts one mean for the three channels: on a grey image
    it computes what "standardize" computes; an even colour cast, which "standardize" removes,
    reaches its network; brightness and contrast changes of all channels are still divided out."""
    import keras

    from training.model import build_ssdc_mininet, grey_model, input_norm_of, rebuilt

    keras.utils.set_random_seed(3)
    plain = build_ssdc_mininet("A", 3, 48, input_norm="standardize")
    colour = rebuilt(plain, input_norm="standardize_colour")
    assert input_norm_of(colour) == "standardize_colour" and input_norm_of(plain) == "standardize"
    assert colour.count_params() == plain.count_params()
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.uniform(60, 160, (2, 48, 48, 1)), 3, axis=-1).astype(np.float32)
    np.testing.assert_allclose(np.asarray(colour(grey)), np.asarray(plain(grey)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(grey_model(colour)(grey[..., :1])),
                               np.asarray(plain(grey)), atol=1e-5)

    def normalised(model, x):
        return np.asarray(keras.Model(model.inputs, model.get_layer("rescale").output)(x))

    cast = grey + np.array([12.0, 0.0, -9.0], np.float32)
    np.testing.assert_allclose(normalised(plain, cast), normalised(plain, grey), atol=1e-5)
    moved = np.abs(normalised(colour, cast) - normalised(colour, grey)).max()
    assert moved > 0.05
    tinted = grey * np.array([1.0, 0.9, 0.8], np.float32)
    changed = (tinted - 110.0) * 0.6 + 130.0
    np.testing.assert_allclose(normalised(colour, changed), normalised(colour, tinted), atol=1e-5)
    assert input_norm_of(rebuilt(colour, input_size=64)) == "standardize_colour"


def test_rebuilt_keeps_weights_across_input_norm_and_size():
    from training.model import build_ssdc_mininet, input_norm_of, rebuilt

    model = build_ssdc_mininet("A", 4, 48)
    assert input_norm_of(model) == "rescale"
    new = rebuilt(model, input_size=64, input_norm="standardize")
    assert input_norm_of(new) == "standardize" and new.input_shape == (None, 64, 64, 3)
    for name in ("stem_conv", "last_dw", "classifier"):
        for a, b in zip(new.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert rebuilt(new) is new


def test_fused_batch_norm_trains_the_same_function_and_saves_stock_layers(tmp_path):
    """training.fused_bn: in training mode the fused kernel gives Keras' outputs, gradients and
    moving averages; inference and the saved file are Keras' own."""
    import keras
    import tensorflow as tf

    from training.fused_bn import use_fused_batch_norm
    from training.model import build_ssdc_mininet

    stock = build_ssdc_mininet("A", 3, 48, input_norm="standardize")
    fused = build_ssdc_mininet("A", 3, 48, input_norm="standardize")
    fused.set_weights(stock.get_weights())
    assert use_fused_batch_norm(fused) == 11   # stem + 5 blocks x 2
    assert use_fused_batch_norm(fused) == 0          # idempotent
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 3)).astype(np.float32))
    results = []
    for model in (stock, fused):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True) * tf.constant([1.0, 2.0, 3.0]))
        grads = tape.gradient(loss, model.trainable_weights)
        results.append(([g.numpy() for g in grads],
                        [w.numpy() for w in model.non_trainable_weights]))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * (np.abs(a).max() + 1e-6))
    for a, b in zip(results[0][1], results[1][1]):   # moving means and variances
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stock(x, training=False), fused(x, training=False), atol=1e-5)
    fused.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.get_layer("stem_bn")) is keras.layers.BatchNormalization
    assert "call" not in vars(loaded.get_layer("stem_bn"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), fused(x, training=False), atol=1e-5)


def test_verdict_pools_and_spreads_are_the_layers_mean_and_standard_deviation():
    """``pool_<view>`` and ``std_<view>`` are each channel's mean and standard deviation over
    space (the std from the mean square less the squared mean, for LiteRT's speed); the pooling
    is the network's own where it has one (an SE squeeze, the classifier's pool), not a second
    pass over the maps."""
    import keras

    from training.model import build_ssdc_mininet, detector_views, verdict_model

    model = build_ssdc_mininet("B", num_classes=4, input_size=64)
    rng = np.random.default_rng(0)
    # non-trivial statistics, so the maps have means and spreads of several sizes
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, c))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))
    views = detector_views(model)
    x = rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    maps = keras.Model(model.inputs, [model.get_layer(v).output for v in views])(x)
    verdict = verdict_model(model)
    out = verdict(x)
    for v, fmap in zip(views, maps):
        fmap = np.asarray(fmap, np.float64)
        np.testing.assert_allclose(out[f"pool_{v}"], fmap.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[f"std_{v}"], fmap.std(axis=(1, 2)), rtol=1e-3, atol=2e-3)
    added = {layer.name for layer in verdict.layers} - {layer.name for layer in model.layers}
    assert not {f"pool_{v}" for v in views} & added
