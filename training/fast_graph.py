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
others compute as before."""
from __future__ import annotations

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


def _needs_tiling(layer) -> bool:
    import keras

    if type(layer) is not keras.layers.DepthwiseConv2D:   # a subclass keeps its own call
        return False
    cfg = layer.get_config()
    return (tuple(cfg.get("dilation_rate", (1, 1))) == (1, 1)
            and cfg.get("data_format", "channels_last") == "channels_last"
            and max(cfg["kernel_size"]) > max(FAST_KERNELS))


def tiled_depthwise_class():
    """The layer class (built on first use: it subclasses a Keras layer)."""
    import keras
    from keras import ops

    class TiledDepthwiseConv2D(keras.layers.DepthwiseConv2D):
        """A DepthwiseConv2D computed as a sum of convolutions over tiles of its kernel: the
        same weights, the same result up to float rounding (``tile_plan``)."""

        def call(self, inputs):
            h, w = inputs.shape[1], inputs.shape[2]
            if h is None or w is None:
                return super().call(inputs)
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
            if self.use_bias:
                out = out + self.bias
            return self.activation(out) if self.activation is not None else out

    return TiledDepthwiseConv2D


def _image_like(x) -> bool:
    """A 4-D channels-last tensor of known height and width with at most ``FEW_CHANNELS``."""
    return (len(x.shape) == 4 and x.shape[1] is not None and x.shape[2] is not None
            and x.shape[3] is not None and x.shape[3] <= FEW_CHANNELS)


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


def fast_graph(model):
    """A copy of ``model`` (same weights, same layer names) in which every depthwise
    convolution with a kernel larger than ``FAST_KERNELS`` is a ``TiledDepthwiseConv2D`` and
    the layers that standardise an image (a channel mean, a subtraction, a unit norm, on at
    most ``FEW_CHANNELS`` channels) run on rows (``row_layer_classes``); the model itself when
    there is nothing to rewrite."""
    import keras

    rows = row_layer_classes()
    if not any(_replacement(layer, rows) for layer in model.layers):
        return model

    def clone(layer):
        cls = _replacement(layer, rows) or layer.__class__
        return cls.from_config(layer.get_config())

    # an uncompiled view of the same layers: clone_model would otherwise compile the copy with
    # the original's loss, and a training loss made in a closure (the consistency loss) cannot
    # be rebuilt from its config
    view = keras.Model(model.inputs, model.outputs, name=model.name)
    copy = keras.models.clone_model(view, clone_function=clone)
    for layer in copy.layers:   # by name: no reliance on the order of the weights
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy
