"""training.fast_graph: the exported graph computes what the Keras model computes."""
import numpy as np
import pytest


def test_kernels_are_split_into_fast_sizes():
    from training.fast_graph import kernel_tiles

    assert kernel_tiles(3) == [3] and kernel_tiles(5) == [5] and kernel_tiles(1) == [1]
    assert kernel_tiles(11) == [5, 3, 3]
    assert kernel_tiles(6) == [3, 3]
    assert kernel_tiles(7) == [5, 2]
    for k in range(1, 30):
        assert sum(kernel_tiles(k)) == k


def test_large_kernels_are_cut_into_strips_of_whole_rows():
    """As many rows as XNNPACK's one-pass depthwise kernels take; wider rows are cut too."""
    from training.fast_graph import UNIPASS_TAPS, tile_plan

    assert tile_plan(11, 11) == ([2, 2, 2, 2, 2, 1], [11])
    assert tile_plan(7, 7) == ([3, 3, 1], [7])
    assert tile_plan(1, 11) == ([1], [11])
    rows, cols = tile_plan(9, 30)
    assert cols == [5] * 6 and rows == [5, 4]
    for kh, kw in [(11, 11), (7, 7), (6, 6), (13, 3), (9, 30), (40, 40)]:
        rows, cols = tile_plan(kh, kw)
        assert sum(rows) == kh and sum(cols) == kw
        assert max(rows) * max(cols) <= UNIPASS_TAPS


def tf_takes_unequal_strides() -> bool:
    """Whether TensorFlow runs a depthwise convolution with unequal strides on this CPU: its
    oneDNN kernel does, the plain one it uses where oneDNN is off (by default on CPUs without
    AVX-512, e.g. an AMD EPYC with AVX2) refuses them."""
    import keras

    try:
        keras.layers.DepthwiseConv2D(3, strides=(2, 1))(np.zeros((1, 8, 8, 1), np.float32))
    except Exception:  # noqa: BLE001 - InvalidArgumentError, wrapped by Keras
        return False
    return True


def depthwise_reference(x, kernel, bias, strides, padding):
    """Keras's DepthwiseConv2D with a ReLU, in numpy (TensorFlow's "same": the extra padding
    row or column at the end)."""
    n, h, w, c = x.shape
    kh, kw, _, m = kernel.shape
    sh, sw = strides
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        ph, pw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, oh, ow, c, m), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
            out += patch[..., None].astype(np.float64) * kernel[i, j]
    return np.maximum(out.reshape(n, oh, ow, c * m) + bias, 0).astype(np.float32)


@pytest.mark.parametrize("kernel,strides,padding,size,multiplier", [
    (11, 2, "same", 50, 1), (11, 2, "same", 17, 1), (7, 1, "same", 12, 2),
    ((11, 7), (2, 1), "valid", 23, 1), (9, 3, "same", 20, 1), (11, 2, "same", 48, 2),
    (11, 2, "same", 49, 1), (11, (2, 1), "same", 50, 1)])
def test_the_tiled_convolution_equals_the_plain_one(kernel, strides, padding, size, multiplier):
    """Both ways of summing the strips (each strip's own "same" convolution shifted into
    place, where ``shift_plan`` finds that exact, else the strips of one padded input) give
    the plain convolution."""
    import keras

    from training.fast_graph import shift_plan, tiled_depthwise_class

    if isinstance(strides, tuple) and strides[0] != strides[1] and not tf_takes_unequal_strides():
        pytest.skip("TensorFlow's CPU kernel refuses unequal strides on this CPU (no oneDNN "
                    "here: AVX2 without AVX-512); SSDC-MiniNet's strides are equal")
    keras.utils.set_random_seed(3)
    plain = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding,
                                         depth_multiplier=multiplier, activation="relu")
    x = np.random.default_rng(0).standard_normal((2, size, size + 1, 4)).astype(np.float32)
    plain.build(x.shape)
    plain.bias.assign(np.random.default_rng(1).standard_normal(plain.bias.shape))
    # in numpy: TensorFlow's own kernel refuses unequal strides on CPUs where oneDNN is not
    # used (AVX2 without AVX-512, e.g. an AMD EPYC: "only supports equal length strides")
    want = depthwise_reference(x, *(w.numpy() for w in (plain.kernel, plain.bias)),
                               plain.strides, padding)
    if plain.strides[0] == plain.strides[1]:
        np.testing.assert_allclose(np.asarray(plain(x)), want, atol=1e-5)
    tiled = tiled_depthwise_class().from_config(plain.get_config())
    tiled.build(x.shape)
    tiled.set_weights(plain.get_weights())
    got = np.asarray(tiled(x))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    shifted = padding == "same" and shift_plan(size, tiled.kernel_size,
                                               tiled.strides[0]) is not None
    assert (tiled._shifted_strips(x) is not None) == shifted
    if (kernel, strides, size) == (11, 2, 50):   # the bundle's layer takes the shifted path
        assert shifted


def test_the_fast_graph_keeps_names_weights_and_outputs():
    import keras

    from training.fast_graph import fast_graph
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(1)
    model = build_ssdc_mininet("A", 6, 64, input_norm="standardize")
    fast = fast_graph(model)
    assert fast is not model
    folded = {"se1_scale", "ds3_dw_bn", "se2_scale", "last_dw_bn"}
    assert [la.name for la in fast.layers] == [la.name for la in model.layers
                                               if la.name not in folded]
    assert type(fast.get_layer("last_dw")).__name__ == "ScaledTiledDepthwiseConv2D"
    assert type(fast.get_layer("ds3_dw")).__name__ == "ScaledDepthwiseConv2D"
    assert {name: type(fast.get_layer(name)).__name__
            for name in ("image_mean", "centre", "unit_contrast", "se1_squeeze")} == {
        "image_mean": "RowGlobalAveragePooling2D", "centre": "RowSubtract",
        "unit_contrast": "FlatUnitNormalization",
        "se1_squeeze": "GlobalAveragePooling2D"}   # 32 channels: not an image
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fast(x)), np.asarray(model(x)), atol=1e-5)
    # the colour-keeping normalisation: its mean of the channel means stays the plain pooling
    from training.model import rebuilt

    colour = rebuilt(model, input_norm="standardize_colour")
    fast_colour = fast_graph(colour)
    assert fast_colour.get_layer("colour_mean").data_format == "channels_first"
    tinted = x * np.array([1.0, 0.8, 0.6], np.float32)
    np.testing.assert_allclose(np.asarray(fast_colour(tinted)), np.asarray(colour(tinted)),
                               atol=1e-5)
    seen = keras.Model(fast_colour.inputs, fast_colour.get_layer("rescale").output)
    plain = keras.Model(fast.inputs, fast.get_layer("rescale").output)
    assert np.abs(np.asarray(seen(tinted)) - np.asarray(plain(tinted))).max() > 0.05   # the tint
    small = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3)])
    assert fast_graph(small) is small   # nothing to rewrite


@pytest.mark.parametrize("shape", [(2, 7, 5, 3), (1, 6, 9, 1), (2, 4, 4, 4), (2, 5, 6, 8)])
def test_the_row_wise_standardisation_equals_the_plain_layers(shape, monkeypatch):
    """Channel means, the subtraction and the unit norm on rows of width x channels give the
    plain layers' results; more channels than an image has (8) take the plain computation."""
    import keras

    from training.fast_graph import FEW_CHANNELS, row_layer_classes

    rows = row_layer_classes()
    x = np.random.default_rng(shape[-1]).uniform(0, 255, shape).astype(np.float32)
    gap, sub, unit = (keras.layers.GlobalAveragePooling2D, keras.layers.Subtract,
                      keras.layers.UnitNormalization)
    want = {keepdims: np.asarray(gap(keepdims=keepdims)(x)) for keepdims in (True, False)}
    mean = want[True]
    centred = np.asarray(sub()([x, mean]))
    axes = ((1, 2, 3), (-3, -2, -1), -1)
    normed = {axis: np.asarray(unit(axis=axis)(centred)) for axis in axes}
    same = np.asarray(rows[sub].from_config(sub().get_config())([x, x]))   # not a row of means
    np.testing.assert_array_equal(same, 0.0)
    rowwise = shape[-1] <= FEW_CHANNELS
    if rowwise:   # the row-wise path must not fall back to the plain computation
        def plain(*args):
            raise AssertionError("the plain computation ran")
        monkeypatch.setattr(gap, "call", plain)
        monkeypatch.setattr(sub, "_merge_function", plain)
        monkeypatch.setattr(unit, "call", plain)
    for keepdims in (True, False):
        row = rows[gap].from_config(gap(keepdims=keepdims).get_config())
        np.testing.assert_allclose(np.asarray(row(x)), want[keepdims], rtol=1e-6)
    row = rows[sub].from_config(sub().get_config())
    np.testing.assert_allclose(np.asarray(row([x, mean])), centred, atol=1e-4)
    for axis in axes:
        if rowwise and axis == -1:
            continue   # one axis only: the plain computation, by design
        row = rows[unit].from_config(unit(axis=axis).get_config())
        np.testing.assert_allclose(np.asarray(row(centred)), normed[axis], atol=1e-6)


def _depthwise_kernels(blob):
    """The kernel sizes (height, width) of the depthwise convolutions in a LiteRT model."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=blob)
    shapes = {t["index"]: tuple(t["shape"]) for t in it.get_tensor_details()}
    return [tuple(int(v) for v in shapes[op["inputs"][1]][1:3]) for op in it._get_ops_details()
            if op["op_name"] == "DEPTHWISE_CONV_2D"]


def test_fp32_is_exported_without_the_large_kernel_and_int8_with_it():
    import keras

    from synth import texture
    from training.inspection_export import build_inspection
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(1)
    model = build_ssdc_mininet("A", 6, 64, input_norm="standardize")
    x = np.stack([np.repeat(texture(i % 6, 64, seed=i)[..., None], 3, axis=2)
                  for i in range(12)]).astype(np.float32)
    for _ in range(5):   # batch-norm statistics of textures (as tests/test_litert.py)
        model(x, training=True)
    files, info = build_inspection(model, x, x, np.arange(12) % 6, formats_wanted=("fp32", "int8"))
    fp32 = _depthwise_kernels(files["inspect_fp32.tflite"])
    # four 3x3 and the 11x11 as six strips of whole rows, none over XNNPACK's one-pass taps
    assert sorted(fp32) == [(1, 11)] + [(2, 11)] * 5 + [(3, 3)] * 4, fp32
    assert info["formats"]["int8"]["usable"], info["formats"]["int8"]
    int8 = _depthwise_kernels(files["inspect_int8.tflite"])
    assert sorted(int8) == [(3, 3)] * 4 + [(11, 11)], int8


def test_a_model_compiled_with_a_closure_loss_is_rewritten():
    """Export runs on the model training just compiled (the consistency loss is a closure that
    Keras cannot rebuild from its config): the copy must not be compiled from it."""
    import keras

    from training.augment import consistency_loss
    from training.fast_graph import fast_graph, fold_plan
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(2)
    model = build_ssdc_mininet("A", 6, 64, input_norm="standardize")
    model.compile(optimizer="adam", loss=consistency_loss(0.05, 6.0))
    fast = fast_graph(model)
    assert type(fast.get_layer("last_dw")).__name__ == "ScaledTiledDepthwiseConv2D"
    folded = fold_plan(model)
    for layer in model.layers:
        if layer.name in folded or any(layer.name in pair for pair in folded.values()):
            continue   # the convolutions with the batch normalisation in them
        for a, b in zip(layer.get_weights(), fast.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fast(x)), np.asarray(model(x)), atol=1e-5)


def _with_statistics(model, seed: int):
    """``model`` with batch normalisations far from the identity (random scales, shifts and
    moving statistics), so that folding them is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, c), rng.normal(0, 0.3, c),
                               rng.normal(0, 0.3, c), rng.uniform(0.2, 3.0, c)])
    return model


@pytest.mark.parametrize("design", ["A", "B"])
def test_the_se_scaling_moves_past_the_next_convolution(design):
    """Every SE block's scaling that a depthwise convolution and a batch normalisation follow
    is applied after the convolution, the normalisation folded into it: the same outputs (the
    SE inputs and excitations, the features, the probabilities), fewer layers."""
    import keras

    from training.fast_graph import fast_graph, fold_plan
    from training.model import build_ssdc_mininet, inspection_model, se_block_count

    keras.utils.set_random_seed(3)
    model = _with_statistics(build_ssdc_mininet(design, 6, 48, input_norm="standardize"), 3)
    plan = fold_plan(model)
    # every SE block but the last (the features follow it, not a convolution)
    assert len(plan) == se_block_count(model) - (1 if design == "B" else 0), plan
    for dw, (mul, bn) in plan.items():
        assert mul.endswith("_scale") and bn == dw + "_bn"
    fast = fast_graph(model)
    names = {la.name for la in fast.layers}
    for dw, (mul, bn) in plan.items():
        assert mul not in names and bn not in names
        assert type(fast.get_layer(dw)).__name__.startswith("Scaled")
    x = np.random.default_rng(4).uniform(0, 255, (3, 48, 48, 3)).astype(np.float32)
    want, got = inspection_model(model)(x), inspection_model(fast)(x)
    assert set(got) == set(want)
    for key in want:
        a, b = np.asarray(got[key], np.float64), np.asarray(want[key], np.float64)
        pool = want.get("pool_" + key[len("std_"):]) if key.startswith("std_") else None
        if pool is None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=key)
            continue
        # a spread is the root of the mean square less the squared mean: float32 loses a share
        # of the mean square there, which a small spread feels most (oneDNN's SSE4.1 kernels:
        # 3e-5 in a spread of 0.011; up to 1.5e-5 of the mean square measured on AVX2, AVX-512
        # and SSE4.1), so the variances are compared against the mean square
        mean_square = np.asarray(pool, np.float64) ** 2 + b ** 2
        assert np.all(np.abs(a ** 2 - b ** 2) <= 1e-4 * mean_square + 1e-10), key


def test_a_scaling_that_is_used_elsewhere_is_not_moved():
    """The fold needs the scaled map to go to the convolution alone, a convolution without an
    activation, and a batch normalisation after it; otherwise the graph keeps the product."""
    import keras
    from keras import layers

    from training.fast_graph import fast_graph, fold_plan

    def chain(extra_output=False, activation=None, norm=True, shared_norm=False,
              training=None):
        x = keras.Input((12, 12, 4))
        s = layers.Reshape((1, 1, 4))(layers.Dense(4, activation="sigmoid")(
            layers.GlobalAveragePooling2D()(x)))
        scaled = layers.Multiply(name="scale")([x, s])
        y = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False,
                                   activation=activation, name="dw")(scaled)
        outs = []
        if norm:
            bn = layers.BatchNormalization(name="bn")
            y = bn(y) if training is None else bn(y, training=training)
            if shared_norm:   # the same normalisation used on another branch too
                outs.append(bn(layers.Conv2D(4, 1, strides=2)(x)))
        outs += [layers.ReLU()(y)] + ([scaled] if extra_output else [])
        return keras.Model(x, outs)

    assert fold_plan(chain()) == {"dw": ("scale", "bn")}
    assert fold_plan(chain(extra_output=True)) == {}
    assert fold_plan(chain(activation="relu")) == {}
    assert fold_plan(chain(norm=False)) == {}
    assert fold_plan(chain(shared_norm=True)) == {}
    assert fold_plan(chain(training=True)) == {}   # batch statistics: nothing to fold
    model = _with_statistics(chain(), 5)
    x = np.random.default_rng(5).normal(0, 1, (2, 12, 12, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fast_graph(model)(x)), np.asarray(model(x)),
                               rtol=1e-5, atol=1e-5)


def test_every_shift_the_plan_accepts_is_exact():
    """Over many kernel heights, strides and image heights (odd and even, padding split evenly
    or not): wherever ``shift_plan`` accepts the shifted strips, they equal the plain
    convolution (a review's brute force, 1,428 of 7,344 shapes accepted, cut down here)."""
    import keras

    from training.fast_graph import shift_plan, tiled_depthwise_class

    tiled_class = tiled_depthwise_class()
    rng = np.random.default_rng(7)
    checked = 0
    for kh in (6, 7, 9, 11, 13):
        for stride in (1, 2, 3):
            for h in range(10, 41, 3):
                if shift_plan(h, (kh, kh), stride) is None:
                    continue
                plain = keras.layers.DepthwiseConv2D(kh, strides=stride, padding="same",
                                                     depth_multiplier=1 + h % 2)
                x = rng.normal(size=(1, h, h + 3, 2)).astype(np.float32)
                plain.build(x.shape)
                plain.set_weights([rng.normal(size=w.shape).astype(np.float32)
                                   for w in plain.get_weights()])
                tiled = tiled_class.from_config(plain.get_config())
                tiled.build(x.shape)
                tiled.set_weights(plain.get_weights())
                assert tiled._shifted_strips(x) is not None
                np.testing.assert_allclose(np.asarray(tiled(x)), np.asarray(plain(x)),
                                           atol=1e-4, err_msg=f"{kh}x{kh}, stride {stride}, {h}")
                checked += 1
    assert checked >= 20, checked
