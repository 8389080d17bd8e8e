"""The same model as a graph that LiteRT runs faster: exact rewrites for export, no new weights.

Measured with LiteRT's XNNPACK on one thread (2026-12-03, this 2-core Xeon): of the bundled
model's 4.3 ms per 200x200 image, 2.6 ms went to one layer, the 11x11 depthwise convolution
(stride 2) before the last features, although it is a tenth of the model's multiply-adds.
XNNPACK has fast kernels for 3x3 and 5x5 depthwise convolutions; an 11x11 one falls back to a
slow generic path. The same convolution as the sum of nine convolutions over tiles of the
kernel (5 + 3 + 3 rows times 5 + 3 + 3 columns), each on the matching window of the padded
input, took 0.54 ms against 2.51 ms, the outputs within float rounding (2e-6). Since then
the kernel is cut into strips of whole rows instead, as many rows as XNNPACK's one-pass kernels
take (``UNIPASS_TAPS``: 11x11 -> five strips of 2 rows and one of 1, six convolutions instead of
nine): the whole grey inspection model 2.05 against 2.13 ms per image on one thread
(2026-12-03, alternated 15 times).
``training.inspection_export`` and ``training.export`` convert fp32 and fp16 from this graph (the
inspection export checks every output against the Keras model, as before); int8 keeps the plain
graph (a sum of separately quantized parts would round each part).

The per-image standardisation at the input (``training.model``: each channel's mean subtracted,
then the whole image scaled to unit contrast) is rewritten too. Its reductions and broadcasts
run along an innermost dimension of three colour channels, where XNNPACK is slow: 0.34 ms of a
colour image's 2.2 ms (2026-12-04, one thread), four times a grey image's time per pixel. The
same arithmetic on the image seen as rows of ``width * channels`` values (the channel means from
the column means, the subtraction against one row of means, the contrast over the flat image)
took 0.12 ms. Only layers whose inputs have at most ``FEW_CHANNELS`` channels are routed so; the
others compute as before.

Each SE block's scaling (the feature map times one weight per channel and image) is followed by
a depthwise convolution and a batch normalisation. The convolution is linear per channel and
its zero padding stays zero, so ``dw(x * s) = dw(x) * s``: the product moves after the
convolution (onto an output a quarter the size where it has stride 2; elsewhere the product
and the normalisation's own pass are saved), and the normalisation folds into the
convolution's kernel and a bias (``fold_plan``, ``scaled_depthwise_class``). The bundled model's
colour verdict file: 2.01 -> 1.94 ms per image on one thread (2026-12-04, 25 rounds alternated).
With "same" padding each strip of the large kernel then ran its own "same" convolution of the
unpadded input, its output rows shifted into place (``shift_plan``): 1.93 -> 1.86 ms."""
from __future__ import annotations

import functools

import numpy as np

FAST_KERNELS = (5, 3)   # kernel sizes XNNPACK runs fast, the largest first
UNIPASS_TAPS = 25       # taps XNNPACK's depthwise kernels take in one pass (5x5)
FEW_CHANNELS = 4        # images (1 or 3 channels): their reductions and broadcasts run as rows


def kernel_tiles(size: int) -> list[int]:
    """``size`` split into parts of ``FAST_KERNELS`` (fewest parts; a remainder part only when
    no exact split exists): 11 -> [5, 3, 3], 6 -> [3, 3], 7 -> [5, 2], 3 -> [3]."""
    big, small = FAST_KERNELS
    if size <= big:
        return [size]
    for n_big in range(size // big, -1, -1):
        rest = size - big * n_big
        if rest % small == 0:
            return [big] * n_big + [small] * (rest // small)
    return [big] * (size // big) + [size % big]


def tile_plan(kh: int, kw: int) -> tuple[list[int], list[int]]:
    """The row parts and column parts a kh x kw kernel is cut into: strips of whole rows (as
    many as fit in ``UNIPASS_TAPS``), the columns cut by ``kernel_tiles`` only when one row is
    wider than that: 11x11 -> ([2, 2, 2, 2, 2, 1], [11]), 7x7 -> ([3, 3, 1], [7])."""
    cols = [kw] if kw <= UNIPASS_TAPS else kernel_tiles(kw)
    per = max(1, UNIPASS_TAPS // max(cols))
    rows = [per] * (kh // per) + ([kh % per] if kh % per else [])
    return rows, cols


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def shift_plan(height: int, kernel: tuple[int, int], stride: int
               ) -> list[tuple[int, int, int]] | None:
    """For a "same" depthwise convolution cut into strips of whole rows (``tile_plan``): each
    strip as (first kernel row, rows, shift d) such that the layer's output row o gets the
    strip's own "same" convolution's row o + d (zero outside it); None when the columns are cut
    too or a shift is not exact: the strip's rows must line up with the layer's by whole
    strides, and the rows shifted in from outside must lie wholly in the padding (a strip no
    taller than the stride plus its own top padding; its outputs' rows past the last reach
    below the image)."""
    kh, kw = kernel
    rows, cols = tile_plan(kh, kw)
    if cols != [kw]:
        return None
    top = _same_padding(height, kh, stride)[0]
    out_rows = -(-height // stride)
    plan, r0 = [], 0
    for th in rows:
        own_top = _same_padding(height, th, stride)[0]
        lag = r0 - top + own_top
        if lag % stride or abs(lag // stride) >= out_rows:
            return None
        d = lag // stride
        # output rows shifted in from above the strip's first (d < 0) must read only padding
        # above the image, those from below its last (d > 0) only padding below it
        if (d < 0 and th > stride + own_top) or (d > 0 and stride * out_rows - own_top < height):
            return None
        plan.append((r0, th, d))
        r0 += th
    return plan


def _needs_tiling(layer) -> bool:
    import keras

    if type(layer) is not keras.layers.DepthwiseConv2D:   # a subclass keeps its own call
        return False
    cfg = layer.get_config()
    return (tuple(cfg.get("dilation_rate", (1, 1))) == (1, 1)
            and cfg.get("data_format", "channels_last") == "channels_last"
            and max(cfg["kernel_size"]) > max(FAST_KERNELS))


@functools.lru_cache(maxsize=None)
def tiled_depthwise_class():
    """The layer class (built on first use: it subclasses a Keras layer; one per process)."""
    import keras
    from keras import ops

    class TiledDepthwiseConv2D(keras.layers.DepthwiseConv2D):
        """A DepthwiseConv2D computed as a sum of convolutions over tiles of its kernel: the
        same weights, the same result up to float rounding (``tile_plan``)."""

        def call(self, inputs):
            h, w = inputs.shape[1], inputs.shape[2]
            if h is None or w is None:
                return super().call(inputs)
            out = self.convolve(inputs)
            if self.use_bias:
                out = out + self.bias
            return self.activation(out) if self.activation is not None else out

        def convolve(self, inputs):
            """The convolution alone (no bias, no activation), as a sum over strips."""
            shifted = self._shifted_strips(inputs)
            if shifted is not None:
                return shifted
            h, w = inputs.shape[1], inputs.shape[2]
            (kh, kw), (sh, sw) = self.kernel_size, self.strides
            if self.padding == "same":
                (t, b), (left, right) = _same_padding(h, kh, sh), _same_padding(w, kw, sw)
                inputs = ops.pad(inputs, [[0, 0], [t, b], [left, right], [0, 0]])
                h, w = h + t + b, w + left + right
            oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
            out = None
            r0 = 0
            rows, cols = tile_plan(kh, kw)
            for th in rows:
                c0 = 0
                for tw in cols:
                    # the tile's convolution over the whole input (from the first row and
                    # column of its stride phase), then the outputs it owes: a few rows too
                    # many computed, but no copy of the input window (0.38 against 0.46 ms
                    # for the 11x11 layer of 50x50x64, one thread)
                    base = inputs
                    if r0 % sh or c0 % sw:
                        base = inputs[:, r0 % sh:, c0 % sw:, :]
                    part = ops.depthwise_conv(base, self.kernel[r0:r0 + th, c0:c0 + tw],
                                              strides=self.strides, padding="valid")
                    part = part[:, r0 // sh:r0 // sh + oh, c0 // sw:c0 // sw + ow, :]
                    out = part if out is None else out + part
                    c0 += tw
                r0 += th
            return out

        def _shifted_strips(self, inputs):
            """With "same" padding and strips of whole rows: each strip's own "same"
            convolution of the unpadded input, its output rows shifted into place (``shift_plan``):
            no padded copy of the input and no rows computed for nothing (the bundle's 11x11
            layer on 50x50x64, stride 2, one thread: 0.28 against 0.36 ms). None where that
            would not be exact."""
            if self.padding != "same" or tuple(self.dilation_rate) != (1, 1):
                return None
            plan = shift_plan(inputs.shape[1], self.kernel_size, self.strides[0])
            if plan is None:
                return None
            oh = -(-inputs.shape[1] // self.strides[0])
            out = None
            for r0, th, d in plan:
                part = ops.depthwise_conv(inputs, self.kernel[r0:r0 + th],
                                          strides=self.strides, padding="same")
                if d > 0:     # output row o is the strip's row o + d
                    part = ops.pad(part[:, d:], [[0, 0], [0, d], [0, 0], [0, 0]])
                elif d < 0:
                    part = ops.pad(part[:, :oh + d], [[0, 0], [-d, 0], [0, 0], [0, 0]])
                out = part if out is None else out + part
            return out

    return TiledDepthwiseConv2D


def _image_like(x) -> bool:
    """A 4-D channels-last tensor of known height and width with at most ``FEW_CHANNELS``."""
    return (len(x.shape) == 4 and x.shape[1] is not None and x.shape[2] is not None
            and x.shape[3] is not None and x.shape[3] <= FEW_CHANNELS)


@functools.lru_cache(maxsize=None)
def row_layer_classes() -> dict:
    """The input standardisation's layers computed on rows of ``width * channels`` values:
    {plain class: its row-wise subclass}. Each falls back to its plain computation for inputs
    that are not image-like (``_image_like``)."""
    import keras
    from keras import ops

    class RowGlobalAveragePooling2D(keras.layers.GlobalAveragePooling2D):
        """Each channel's mean: the mean of the column means (rows of ``width * channels``)."""

        def call(self, inputs):
            if self.data_format != "channels_last" or not _image_like(inputs):
                return super().call(inputs)
            _, h, w, c = inputs.shape
            cols = ops.mean(ops.reshape(inputs, (-1, h, w * c)), axis=1)       # (b, w*c)
            means = ops.mean(ops.reshape(cols, (-1, w, c)), axis=1)             # (b, c)
            return ops.reshape(means, (-1, 1, 1, c) if self.keepdims else (-1, c))

    class RowSubtract(keras.layers.Subtract):
        """An image minus one value per channel: against a row of ``width`` copies of them."""

        def _merge_function(self, inputs):
            if len(inputs) == 2:
                x, m = inputs
                if (_image_like(x) and len(m.shape) == 4 and tuple(m.shape[1:3]) == (1, 1)
                        and m.shape[3] == x.shape[3]):
                    _, h, w, c = x.shape
                    row = ops.reshape(ops.tile(ops.reshape(m, (-1, 1, c)), (1, w, 1)),
                                      (-1, 1, w * c))
                    return ops.reshape(ops.reshape(x, (-1, h, w * c)) - row, (-1, h, w, c))
            return super()._merge_function(inputs)

    class FlatUnitNormalization(keras.layers.UnitNormalization):
        """Unit L2 norm over the whole image, computed on it as one flat row."""

        def call(self, inputs):
            axes = sorted(a % len(inputs.shape) for a in (
                self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]))
            if not _image_like(inputs) or axes != [1, 2, 3]:
                return super().call(inputs)
            _, h, w, c = inputs.shape
            flat = ops.normalize(ops.reshape(inputs, (-1, h * w * c)), axis=1, order=2,
                                 epsilon=1e-12)
            return ops.reshape(flat, (-1, h, w, c))

    return {keras.layers.GlobalAveragePooling2D: RowGlobalAveragePooling2D,
            keras.layers.Subtract: RowSubtract,
            keras.layers.UnitNormalization: FlatUnitNormalization}


def _takes_an_image(layer) -> bool:
    """Whether ``layer``'s (first) input in its model is image-like (``_image_like``)."""
    try:
        x = layer.input
    except (AttributeError, ValueError):   # not called, or called more than once
        return False
    x = x[0] if isinstance(x, (list, tuple)) else x
    return hasattr(x, "shape") and _image_like(x)


def _replacement(layer, rows: dict):
    """The class ``layer`` is rebuilt as in the fast graph, or None to keep its own."""
    if _needs_tiling(layer):
        return tiled_depthwise_class()
    cls = rows.get(type(layer))   # exact types: a subclass keeps its own call
    return cls if cls is not None and _takes_an_image(layer) else None


def _sole_consumer(layer, operations: set, outputs: set):
    """The one operation of the model that uses ``layer``'s output, or None (several, none, a
    model output, or a layer called more than once)."""
    if len(getattr(layer, "_inbound_nodes", ())) != 1 or id(layer.output) in outputs:
        return None
    users = [n.operation for n in layer._outbound_nodes if id(n.operation) in operations]
    return users[0] if len(users) == 1 else None


def fold_plan(model) -> dict[str, tuple[str, str]]:
    """Where a per-image channel weighting can move past the convolution that follows it:
    {depthwise layer: (its Multiply, the BatchNormalization after it)} for every chain of a
    ``Multiply`` of a feature map (b, H, W, C) by one weight per channel (b, 1, 1, C) (an SE
    block's scaling), whose only user is a ``DepthwiseConv2D`` (multiplier 1, no activation),
    whose only user is a ``BatchNormalization`` over the channels, called without a fixed
    ``training`` argument (its moving statistics are what is folded). Each of the three layers
    called once in the model (a shared one keeps its other uses), and neither the product nor
    the convolution a model output (the normalisation's output may be one)."""
    import keras

    operations = {id(op) for op in getattr(model, "operations", model.layers)}
    outputs = {id(t) for t in model.outputs}
    plan = {}
    for mul in model.layers:
        if type(mul) is not keras.layers.Multiply or len(mul._inbound_nodes) != 1:
            continue   # (a shared one has no one ``input``)
        ins = mul.input
        if not isinstance(ins, (list, tuple)) or len(ins) != 2 or _weights_index(ins) is None:
            continue
        dw = _sole_consumer(mul, operations, outputs)
        if (dw is None or type(dw) is not keras.layers.DepthwiseConv2D
                or dw.depth_multiplier != 1 or dw.data_format != "channels_last"
                or dw.get_config().get("activation") not in (None, "linear")):
            continue
        bn = _sole_consumer(dw, operations, outputs)
        if (type(bn) is not keras.layers.BatchNormalization or bn.axis not in (-1, 3)
                or len(bn._inbound_nodes) != 1
                or bn._inbound_nodes[0].arguments.kwargs.get("training") is not None):
            continue
        plan[dw.name] = (mul.name, bn.name)
    return plan


def _weights_index(pair) -> int | None:
    """Which of two tensors is the channel weights (b, 1, 1, C) of the other (b, H, W, C)."""
    shapes = [tuple(t.shape) for t in pair]
    if any(len(sh) != 4 for sh in shapes):
        return None
    for i in (0, 1):
        w, x = shapes[i], shapes[1 - i]
        if w[1:3] == (1, 1) and w[3] == x[3] and x[3] is not None and x[1:3] != (1, 1):
            return i
    return None


@functools.lru_cache(maxsize=None)
def scaled_depthwise_class(base):
    """A depthwise convolution (``base``: the plain or the tiled class) that takes a feature
    map and its per-image channel weights and returns ``dw(x) * s + bias``: equal to
    ``batch_norm(dw(x * s))`` once the normalisation is folded into its kernel and bias
    (``folded_weights``). The convolution is linear per channel and its zero padding stays
    zero, so the weighting is exact after it. For conversion only: its config is the plain
    convolution's, so a saved copy would not load with its second input."""
    from keras import ops

    tiled = hasattr(base, "convolve")   # the tiled class: its strips compute the convolution

    class ScaledDepthwiseConv2D(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.input_spec = None   # two inputs: the feature map and its weights

        def build(self, input_shape):
            super().build(input_shape[0])
            self.input_spec = None

        def compute_output_shape(self, input_shape):
            if isinstance(input_shape[0], (list, tuple)):   # both inputs' shapes
                input_shape = input_shape[0]
            return super().compute_output_shape(input_shape)

        def call(self, inputs):
            x, s = inputs
            if tiled and x.shape[1] is not None and x.shape[2] is not None:
                out = self.convolve(x)
            else:
                out = ops.depthwise_conv(x, self.kernel, strides=self.strides,
                                         padding=self.padding, data_format=self.data_format,
                                         dilation_rate=self.dilation_rate)
            out = out * s + self.bias
            return self.activation(out) if self.activation is not None else out

    ScaledDepthwiseConv2D.__name__ = ScaledDepthwiseConv2D.__qualname__ = (
        "Scaled" + base.__name__)
    return ScaledDepthwiseConv2D


def folded_weights(dw, bn) -> list:
    """The kernel and bias of ``dw`` followed by ``bn`` (inference statistics) as one layer."""
    kernel = np.asarray(dw.kernel, np.float64)
    channels = kernel.shape[2]
    gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones(channels)
    beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros(channels)
    a = gamma / np.sqrt(np.asarray(bn.moving_variance, np.float64) + bn.epsilon)
    bias = np.asarray(dw.bias, np.float64) if dw.use_bias else np.zeros(channels)
    b = beta + a * (bias - np.asarray(bn.moving_mean, np.float64))
    return [(kernel * a.reshape(1, 1, channels, 1)).astype(np.float32), b.astype(np.float32)]


def fast_graph(model):
    """A copy of ``model`` (same weights, same layer names) in which every depthwise
    convolution with a kernel larger than ``FAST_KERNELS`` is a ``TiledDepthwiseConv2D``, the
    layers that standardise an image (a channel mean, a subtraction, a unit norm, on at most
    ``FEW_CHANNELS`` channels) run on rows (``row_layer_classes``), and every per-image channel
    weighting that a depthwise convolution and a batch normalisation follow (``fold_plan``: the
    SE blocks' scaling) is applied after the convolution, with the normalisation folded into it
    (``scaled_depthwise_class``; the Multiply and the BatchNormalization leave the graph); the
    model itself when there is nothing to rewrite. For inference and conversion only (the batch
    normalisation's moving statistics are folded in; the copy is not meant to be saved)."""
    import keras

    rows = row_layer_classes()
    plan = fold_plan(model)
    if not plan and not any(_replacement(layer, rows) for layer in model.layers):
        return model
    roles = {}
    for dw_name, (mul_name, bn_name) in plan.items():
        roles.update({mul_name: ("scale", dw_name), dw_name: ("conv", dw_name),
                      bn_name: ("norm", dw_name)})
    cloned = {}   # id of a clone -> its role

    def clone(layer):
        role = roles.get(layer.name)
        cls = _replacement(layer, rows) or layer.__class__
        config = layer.get_config()
        if role is not None and role[0] == "conv":
            cls = scaled_depthwise_class(cls)
            config = {**config, "use_bias": True, "activation": None}
        new = cls.from_config(config)
        if role is not None:
            cloned[id(new)] = role
        return new

    pending = {}   # a depthwise layer's name -> (the feature map, its channel weights)

    def call(layer, *args, **kwargs):
        role = cloned.get(id(layer))
        if role is None:
            return layer(*args, **kwargs)
        kind, dw_name = role
        if kind == "scale":   # not multiplied here: the convolution after it does it
            pair = list(args[0])
            i = _weights_index(pair)
            pending[dw_name] = (pair[1 - i], pair[i])
            return pair[1 - i]
        if kind == "conv":
            return layer(list(pending.pop(dw_name)))
        return args[0]   # the batch normalisation, folded into the convolution

    # an uncompiled view of the same layers: clone_model would otherwise compile the copy with
    # the original's loss, and a training loss made in a closure (the consistency loss) cannot
    # be rebuilt from its config
    view = keras.Model(model.inputs, model.outputs, name=model.name)
    copy = keras.models.clone_model(view, clone_function=clone, call_function=call)
    for layer in copy.layers:   # by name: no reliance on the order of the weights
        if not layer.weights:
            continue
        if layer.name in plan:
            bn_name = plan[layer.name][1]
            layer.set_weights(folded_weights(model.get_layer(layer.name),
                                             model.get_layer(bn_name)))
        else:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy
