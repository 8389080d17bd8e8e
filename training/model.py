"""SSDC-MiniNet in Keras 3: depthwise-separable convolutions, squeeze-and-excitation, an 11x11
last layer.

Two designs fit the paper's Table 1 (see ``docs/ssdc-mininet.md`` in the shared notes):

* ``"A"`` (regular reading, 23,590 parameters): stride-1 stem, two stages of two DS blocks each
  followed by an SE block, an 11x11 DS layer with stride 2.
* ``"B"`` (exact fit, 23,588 parameters): stride-2 stem, seven DS blocks each followed by SE,
  an 11x11 DS layer at 50x50 followed by SE.

Layer names are stable and form a contract with the inspector app:

* ``se{i}_excite``: the SE block's excitation weights, shape (batch, C), sigmoid outputs.
* ``se{i}_input``: the feature maps that SE block reweights, shape (batch, H, W, C).
* ``features``: the last feature map, the input of global pooling (for class activation maps).
* ``classifier``: the final dense layer (its kernel gives CAM weights); ``probs`` its softmax.

The model takes raw pixels (float or uint8 values 0..255, RGB) and normalises them itself:
``input_norm="rescale"`` maps 0..255 to -1..1 (the 1.0 bundle); ``"standardize"`` subtracts each
image's mean and divides by its own contrast (root mean square), so that brightness, exposure and
contrast changes of the camera do not reach the network at all (parameter-free; see
``docs/robustness.md``). ``"standardize"`` subtracts each colour channel's own mean, which also
removes an even colour cast; ``"standardize_colour"`` subtracts one mean for all three, so that an
image's overall colour reaches the network (for models trained on colour images). On a grey image
(three equal channels) the two are the same computation. Only stock Keras layers are used, so ``keras.saving.load_model(..., safe_mode=True)`` works.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

INPUT_SIZE = 200
DESIGNS = ("A", "B")
BN_MOMENTUM = 0.9  # Keras' 0.99 lags for many epochs on a data set of ~50 batches per epoch


@dataclass(frozen=True)
class DSBlock:
    filters: int
    stride: int = 1
    kernel: int = 3
    se_after: bool = False


@dataclass(frozen=True)
class Design:
    stem_filters: int
    stem_stride: int
    blocks: tuple[DSBlock, ...]
    se_ratio: int
    se_bias: bool


DESIGN_SPECS: dict[str, Design] = {
    "A": Design(
        stem_filters=8,
        stem_stride=1,
        blocks=(
            DSBlock(32, 2),
            DSBlock(32, 1, se_after=True),
            DSBlock(64, 2),
            DSBlock(64, 1, se_after=True),
            DSBlock(64, 2, kernel=11),
        ),
        se_ratio=16,
        se_bias=False,
    ),
    "B": Design(
        stem_filters=8,
        stem_stride=2,
        blocks=(
            DSBlock(8, 1, se_after=True),
            DSBlock(8, 1, se_after=True),
            DSBlock(8, 1, se_after=True),
            DSBlock(16, 2, se_after=True),
            DSBlock(16, 1, se_after=True),
            DSBlock(56, 1, se_after=True),
            DSBlock(64, 1, se_after=True),
            DSBlock(64, 1, kernel=11, se_after=True),
        ),
        se_ratio=8,
        se_bias=True,
    ),
}


INPUT_NORMS = ("rescale", "standardize", "standardize_colour")
# the normalisations that divide out each image's own contrast (their scale depends on the size)
STANDARDIZED = ("standardize", "standardize_colour")
# "standardize" scales each image to this root-mean-square contrast: the median NEU image's in the
# -1..1 units of "rescale" (23.3 grey levels / 127.5), so a rescale model's weights fit at once.
STANDARD_RMS = 0.18


def _input_norm(inputs, norm: str, input_size: int, channels: int = 3):
    if norm == "rescale":
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    if norm not in STANDARDIZED:
        raise ValueError(f"unknown input normalisation {norm!r}; choose one of "
                         f"{', '.join(INPUT_NORMS)}")
    mean = layers.GlobalAveragePooling2D(keepdims=True, name="image_mean")(inputs)
    if norm == "standardize_colour":   # the mean of the channels' means, (batch, 1, 1, 1)
        mean = layers.GlobalAveragePooling2D(data_format="channels_first", keepdims=True,
                                             name="colour_mean")(mean)
    x = layers.Subtract(name="centre")([inputs, mean])
    x = layers.UnitNormalization(axis=(1, 2, 3), name="unit_contrast")(x)
    return layers.Rescaling(float(np.sqrt(input_size * input_size * channels)) * STANDARD_RMS,
                            name="rescale")(x)


def input_norm_of(model: keras.Model) -> str:
    """The input normalisation a built or loaded model uses."""
    return input_norm_of_layers({l.name for l in model.layers})


def input_norm_of_layers(names) -> str:
    """The input normalisation of a model with these layer names (``input_norm_of``)."""
    names = set(names)
    if "unit_contrast" not in names:
        return "rescale"
    return "standardize_colour" if "colour_mean" in names else "standardize"


def design_of(model: keras.Model) -> str:
    """The design letter of a built or loaded SSDC-MiniNet (from its name)."""
    letter = model.name.rsplit("_", 1)[-1].upper()
    if letter not in DESIGN_SPECS:
        raise ValueError(f"{model.name!r} is not an SSDC-MiniNet of a known design")
    return letter


def rebuilt(model: keras.Model, input_size: int | None = None,
            input_norm: str | None = None, channels: int | None = None) -> keras.Model:
    """The same network and weights at another input size, with another input normalisation or
    for one grey channel (weights copied by layer name; the normalisation has none; for
    ``channels=1`` the first convolution's kernel summed over its input channels, see
    ``grey_model``)."""
    size = input_size or int(model.input_shape[1])
    norm = input_norm or input_norm_of(model)
    chans = channels or int(model.input_shape[-1])
    if (size, norm, chans) == (int(model.input_shape[1]), input_norm_of(model),
                               int(model.input_shape[-1])):
        return model
    dropout = next((l.rate for l in model.layers if l.name == "dropout"), 0.0)
    new = build_ssdc_mininet(design_of(model), int(model.output_shape[-1]), size, dropout, norm,
                             chans)
    for layer in new.layers:
        if layer.weights:
            weights = model.get_layer(layer.name).get_weights()
            if layer.name == "stem_conv" and weights[0].shape[2] != chans:
                weights = [weights[0].sum(axis=2, keepdims=True), *weights[1:]]
            layer.set_weights(weights)
    return new


def colour_blind_stem(model: keras.Model) -> keras.Model:
    """Sets the first convolution's kernel to its mean over the colour channels, in place: on a
    grey image the network computes what it computed before (the kernel's sum over the channels
    is kept), and a colour image is read as the mean of its channels. A model trained on grey
    images has channel differences no image ever trained (what initialisation left); a fine-tune
    that starts to keep colour (``standardize_colour``) starts from this instead, so that it
    learns what colour means from its own images."""
    stem = model.get_layer("stem_conv")
    kernel, *rest = stem.get_weights()
    stem.set_weights([np.repeat(kernel.mean(axis=2, keepdims=True), kernel.shape[2], axis=2),
                      *rest])
    return model


def grey_model(model: keras.Model) -> keras.Model:
    """The same network for one grey channel: on an image whose three channels are equal it
    gives what ``model`` gives (up to float rounding), with a third of the first convolution's
    work and of the input to normalise. Both normalisations treat the channels alike (the
    per-image standardisation's contrast is over all of them, hence ``channels`` in its scale),
    so the first convolution's kernel summed over its input channels is all that changes."""
    return rebuilt(model, channels=1)


def _bn(name: str) -> layers.Layer:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _se_block(x, index: int, ratio: int, use_bias: bool):
    channels = x.shape[-1]
    x = layers.Identity(name=f"se{index}_input")(x)
    s = layers.GlobalAveragePooling2D(name=f"se{index}_squeeze")(x)
    s = layers.Dense(max(1, channels // ratio), activation="relu", use_bias=use_bias,
                     name=f"se{index}_reduce")(s)
    s = layers.Dense(channels, activation="sigmoid", use_bias=use_bias, name=f"se{index}_excite")(s)
    s = layers.Reshape((1, 1, channels), name=f"se{index}_reshape")(s)
    return layers.Multiply(name=f"se{index}_scale")([x, s])


def build_ssdc_mininet(design: str = "B", num_classes: int = 6, input_size: int = INPUT_SIZE,
                       dropout: float = 0.0, input_norm: str = "rescale",
                       channels: int = 3) -> keras.Model:
    """Builds SSDC-MiniNet. ``dropout`` (before the classifier) and ``input_norm`` add no
    parameters. ``channels``: 3 (RGB, every bundle) or 1 (``grey_model``'s export copy)."""
    if design not in DESIGN_SPECS:
        raise ValueError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
    if num_classes < 2:
        raise ValueError("a classifier needs at least two classes")
    spec = DESIGN_SPECS[design]
    inputs = keras.Input((input_size, input_size, channels), name="pixels")
    x = _input_norm(inputs, input_norm, input_size, channels)
    x = layers.Conv2D(spec.stem_filters, 3, strides=spec.stem_stride, padding="same",
                      use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    se_index = 0
    for i, block in enumerate(spec.blocks, start=1):
        prefix = "last" if i == len(spec.blocks) else f"ds{i}"
        x = layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same",
                                   use_bias=False, name=f"{prefix}_dw")(x)
        x = _bn(f"{prefix}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
        x = layers.Conv2D(block.filters, 1, use_bias=False, name=f"{prefix}_pw")(x)
        x = _bn(f"{prefix}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_pw_relu")(x)
        if block.se_after:
            se_index += 1
            x = _se_block(x, se_index, spec.se_ratio, spec.se_bias)
    x = layers.Identity(name="features")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, name="classifier")(x)
    outputs = layers.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name=f"ssdc_mininet_{design.lower()}")


def se_block_count(model: keras.Model) -> int:
    return sum(1 for layer in model.layers if layer.name.endswith("_excite"))


def inspection_model(model: keras.Model) -> keras.Model:
    """A model with the same weights that returns, from one forward pass, a dict with
    ``probs``, ``features``, for every SE block ``se{i}_excite`` and ``se{i}_input``, and what a
    verdict needs (``logits``, ``pool_<view>``, ``std_<view>``; see ``verdict_outputs``)."""
    outputs = dict(verdict_outputs(model))
    outputs["features"] = model.get_layer("features").output
    for i in range(1, se_block_count(model) + 1):
        outputs[f"se{i}_excite"] = model.get_layer(f"se{i}_excite").output
        outputs[f"se{i}_input"] = model.get_layer(f"se{i}_input").output
    return keras.Model(model.inputs, outputs, name=model.name + "_inspect")


def replace_head(model: keras.Model, num_classes: int) -> keras.Model:
    """Same backbone and weights, a new classifier for ``num_classes`` (for new class lists)."""
    features = model.get_layer("features").output
    x = model.get_layer("pool")(features)
    if any(layer.name == "dropout" for layer in model.layers):
        x = model.get_layer("dropout")(x)
    x = layers.Dense(num_classes, name="classifier")(x)
    outputs = layers.Softmax(name="probs")(x)
    # one input tensor, not the list ``model.inputs``: the bundled model's own structure, so that
    # calling the new model on a batch does not warn that the structure differs
    return keras.Model(model.inputs[0], outputs, name=model.name)


def detector_views(model: keras.Model) -> list[str]:
    """The layers whose pooled feature maps the unknown detector reads (training.openset.VIEWS
    that this model has)."""
    from .openset import VIEWS

    names = {layer.name for layer in model.layers}
    return [v for v in VIEWS if v in names]


def verdict_outputs(model: keras.Model) -> dict:
    """The graph outputs a verdict needs, from one forward pass: ``probs``, ``logits`` and, for
    every detector view, ``pool_<view>`` (the layer's feature maps averaged over space) and
    ``std_<view>`` (their standard deviation over space: how unevenly each channel responds, which
    the mean alone misses). Only weightless stock layers and keras.ops are added."""
    from keras import ops

    outputs = {"probs": model.get_layer("probs").output,
               "logits": model.get_layer("classifier").output}
    for v in detector_views(model):
        fmap = model.get_layer(v).output
        # the network's own average pooling of the layer where it has one (an SE block's
        # squeeze, the classifier's pool): the same numbers, and one pass less over the maps
        # (the converter does not merge two poolings of one tensor)
        pooled = _own_pooling(model, fmap)
        if pooled is None:
            pooled = layers.GlobalAveragePooling2D(name=f"pool_{v}")(fmap)
        outputs[f"pool_{v}"] = pooled
        # the variance as the mean square less the squared mean: one pass over the maps that
        # LiteRT runs in a tenth of the time of a centred square (its squared difference against
        # a broadcast mean: 0.13 against 0.013 ms for 100x100x32 on one thread); these layers'
        # channels have means within 3 standard deviations of 0, where float32 loses only the
        # sixth digit of the standard deviation (docs/unknown-detection.md)
        mean_square = ops.mean(ops.square(fmap), axis=(1, 2))
        variance = ops.maximum(mean_square - ops.square(pooled), 0.0)
        outputs[f"std_{v}"] = ops.sqrt(variance + 1e-12)
    return outputs


def _own_pooling(model: keras.Model, fmap):
    """The output of a global average pooling (channels last, not keeping dims) that the model
    applies to ``fmap`` itself, or None."""
    for layer in model.layers:
        if (isinstance(layer, layers.GlobalAveragePooling2D) and not layer.keepdims
                and layer.data_format == "channels_last" and len(layer._inbound_nodes) == 1
                and layer.input is fmap):
            return layer.output
    return None


def verdict_model(model: keras.Model) -> keras.Model:
    """Probabilities, logits and the detector's pooled features for a batch."""
    # one input tensor, not a list of one: called with an array, Keras warned on every batch
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, verdict_outputs(model), name=model.name + "_verdict")
