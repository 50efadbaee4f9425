"""The DEX model family in Keras 3: four backbones, one builder.

Every model is named after its backbone (``model.name``), so :func:`dex_bias.models.spec_for`
finds its :class:`~dex_bias.models.spec.ModelSpec`. Outputs follow yu4u's
age-gender-estimation: ``[pred_gender (N, 2), pred_age (N, 101)]``, both softmax; gender
column 1 is female (UTKFace code 1). ``vgg_face`` has the age head only (see its builder).

References
----------
- Rothe, Timofte & Van Gool, DEX, ICCV-W 2015 / IJCV 2018 (101-way softmax, expected value).
- yu4u/age-gender-estimation v0.5 (WideResNet-16-8, 64 px) and v0.6 (EfficientNetB3, 224 px).
- Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016.
- Parkhi, Vedaldi & Zisserman, "Deep Face Recognition", BMVC 2015 (VGG-Face);
  serengil/deepface's age model (Conv2D(101, 1x1) on fc7's dropout).
"""

from __future__ import annotations

from collections.abc import Callable

from dex_bias.models.spec import AGE_OUTPUT, AGES, GENDER_OUTPUT, MODEL_SPECS


def _keras():
    import keras

    return keras


def _dex_heads(
    features, *, use_bias: bool = True, weight_decay: float | None = None, kernel_initializer: str = "glorot_uniform"
):
    keras = _keras()
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None

    def head(units: int, name: str):
        return keras.layers.Dense(
            units,
            activation="softmax",
            name=name,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=regularizer,
        )(features)

    gender, age = head(2, GENDER_OUTPUT), head(AGES.size, AGE_OUTPUT)
    return [gender, age]


def build_compact(
    *,
    width: int = 16,
    convs_per_block: tuple[int, ...] = (1, 2, 2, 2),
    dropout: float = 0.3,
    dense_units: int = 128,
    weight_decay: float = 1e-4,
    bn_momentum: float = 0.9,
):
    """dex_bias's small DEX CNN: 64x64 RGB/255 -> [pred_gender, pred_age].

    Four blocks of 3x3 convolutions (``width``, 2x, 4x, 8x filters; ``convs_per_block`` each;
    BatchNorm, ReLU), 2x2 max pooling after each of the first three, global average pooling,
    dropout, a ``dense_units`` ReLU layer and the two DEX heads. BatchNorm's moving averages
    use momentum 0.9 (Keras's 0.99 lags far behind the weights when an epoch is a dozen steps,
    which makes validation predictions useless early on). Sized (322,391 parameters) to train on a
    few hundred faces in a minute or two on two CPU cores.
    """
    keras = _keras()
    layers = keras.layers
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    spec = MODEL_SPECS["compact"]
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = inputs
    for block, (filters, convs) in enumerate(zip((width, width * 2, width * 4, width * 8), convs_per_block), start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=False,
                kernel_regularizer=regularizer,
                name=f"block{block}_conv{conv}",
            )(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{block}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        if block < 4:
            x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(dense_units, activation="relu", kernel_regularizer=regularizer, name="features")(x)
    return keras.Model(inputs, _dex_heads(x), name="compact")


def build_efficientnet_b3():
    """yu4u v0.6: EfficientNetB3 (no top, average pooling, 224 px, BGR 0-255) + the DEX heads.

    The rescaling to 0-1 and the per-channel normalisation are layers inside EfficientNet, so
    the input is raw 0-255 pixels. 10,941,846 parameters (10,854,543 trainable): the published
    ``EfficientNetB3_224_weights.11-3.44.hdf5`` is 132,434,532 bytes: 4 bytes per parameter
    plus Adam's two 4-byte moments per trainable one (130.6 MB) and the HDF5 overhead.
    """
    keras = _keras()
    spec = MODEL_SPECS["efficientnet_b3"]
    base = keras.applications.EfficientNetB3(
        include_top=False, weights=None, pooling="avg", input_shape=spec.input_shape
    )
    return keras.Model(base.input, _dex_heads(base.output), name="efficientnet_b3")


def build_wrn_16_8(*, depth: int = 16, k: int = 8, weight_decay: float = 5e-4):
    """yu4u v0.5 WideResNet-16-8 (pre-activation wide basic blocks, no biases), 64 px BGR 0-255.

    Stages of 16, 16k, 32k, 64k filters; ``(depth - 4) / 6`` blocks per stage; strides 1, 2, 2;
    then BN-ReLU, 8x8 average pooling with stride 1 and ``same`` padding (yu4u's layout keeps
    the 16x16 map), Flatten and the two bias-free DEX heads. 24,463,856 parameters.
    """
    keras = _keras()
    layers = keras.layers
    if (depth - 4) % 6:
        raise ValueError(f"WideResNet depth must be 6n + 4; got {depth}")
    per_stage = (depth - 4) // 6
    regularizer = keras.regularizers.L2(weight_decay)

    def conv(filters, size, strides, x):
        return layers.Conv2D(
            filters,
            size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )(x)

    def wide_basic(n_in, n_out, stride, x):
        if n_in != n_out:
            x = layers.Activation("relu")(layers.BatchNormalization()(x))
            branch = x
        else:
            branch = layers.Activation("relu")(layers.BatchNormalization()(x))
        branch = conv(n_out, 3, stride, branch)
        branch = layers.Activation("relu")(layers.BatchNormalization()(branch))
        branch = conv(n_out, 3, 1, branch)
        shortcut = conv(n_out, 1, stride, x) if n_in != n_out else x
        return layers.add([branch, shortcut])

    spec = MODEL_SPECS["wrn_16_8"]
    inputs = keras.Input(shape=spec.input_shape)
    stages = [16, 16 * k, 32 * k, 64 * k]
    x = conv(stages[0], 3, 1, inputs)
    for n_in, n_out, stride in ((stages[0], stages[1], 1), (stages[1], stages[2], 2), (stages[2], stages[3], 2)):
        x = wide_basic(n_in, n_out, stride, x)
        for _ in range(per_stage - 1):
            x = wide_basic(n_out, n_out, 1, x)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.AveragePooling2D(pool_size=8, strides=1, padding="same")(x)
    x = layers.Flatten()(x)
    heads = _dex_heads(x, use_bias=False, weight_decay=weight_decay, kernel_initializer="he_normal")
    return keras.Model(inputs, heads, name="wrn_16_8")


def build_vgg_face():
    """serengil's VGG-Face age model: 224 px RGB/255 -> pred_age (N, 101); no gender head.

    VGG-Face (13 3x3 convolutions in 5 blocks, ``fc6`` as a 7x7 convolution, ``fc7`` as 1x1,
    dropout 0.5 after each), with serengil's age head ``Conv2D(101, 1x1)`` on fc7's dropout,
    Flatten and Softmax. The VGG-Face identity layer (``Conv2D(2622)``) is not part of the age
    model. 134,674,341 parameters (the published ``age_model_weights.h5`` is about 539 MB).

    The two-head contract: serengil's gender model is a separate network on the same base, so
    this model has one output, ``pred_age``; inference writes ``prob_female`` as missing (NaN)
    and training uses the age loss only.
    """
    keras = _keras()
    layers = keras.layers
    spec = MODEL_SPECS["vgg_face"]
    inputs = keras.Input(shape=spec.input_shape)
    x = inputs
    for block, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for index in range(1, convs + 1):
            x = layers.ZeroPadding2D(1)(x)
            x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{block}_{index}")(x)
        x = layers.MaxPooling2D(2, strides=2)(x)
    x = layers.Conv2D(4096, 7, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv2D(4096, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv2D(AGES.size, 1, name="predictions")(x)
    x = layers.Flatten()(x)
    age = layers.Activation("softmax", name=AGE_OUTPUT)(x)
    return keras.Model(inputs, age, name="vgg_face")


BUILDERS: dict[str, Callable] = {
    "compact": build_compact,
    "efficientnet_b3": build_efficientnet_b3,
    "wrn_16_8": build_wrn_16_8,
    "vgg_face": build_vgg_face,
}


def build_model(backbone: str = "compact", **options):
    """Build the untrained DEX model of ``backbone`` (a key of ``MODEL_SPECS``); ``options`` go to its builder."""
    if backbone not in BUILDERS:
        raise KeyError(f"unknown backbone {backbone!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[backbone](**options)
