"""Convolutions 1D/2D/3D: plain, separable, depthwise and transposed (channels_last)."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import (
    GROW_MAX,
    MAX_ELEMENTS,
    Kind,
    activation,
    conv_out_spatial,
    deconv_len,
    ints,
    pick,
    prod,
    register,
    spatial_conv_params,
)

_KERNEL_BIAS = (("kernel_regularizer", False), ("bias_regularizer", False))


def _conv_params(draw, shapes, dtype):
    (shape,) = shapes
    p = spatial_conv_params(draw, shape[:-1])
    p["filters"] = ints(draw, 1, 4)
    p["activation"] = activation(draw)
    p["use_bias"] = not draw(st.booleans())
    return p


def _conv_out(shapes, p):
    return conv_out_spatial(shapes[0][:-1], p) + (p["filters"],)


for _n in (1, 2, 3):
    register(
        Kind(
            name=f"Conv{_n}D",
            family="convolution",
            ranks=(_n + 1,),
            params=_conv_params,
            out_shape=_conv_out,
            make=(lambda n: lambda K, p, kw: getattr(K.layers, f"Conv{n}D")(**p, **kw))(_n),
            reg_slots=_KERNEL_BIAS,
            activity=True,
        )
    )


def _sep_params(draw, shapes, dtype):
    (shape,) = shapes
    # TensorFlow's depthwise kernels need equal strides along all spatial axes
    p = spatial_conv_params(draw, shape[:-1], equal_strides=True)
    p["filters"] = ints(draw, 1, 4)
    p["activation"] = activation(draw)
    p["use_bias"] = not draw(st.booleans())
    p["depth_multiplier"] = ints(draw, 1, 2)
    return p


for _n in (1, 2):
    register(
        Kind(
            name=f"SeparableConv{_n}D",
            family="convolution",
            ranks=(_n + 1,),
            params=_sep_params,
            out_shape=_conv_out,
            make=(
                lambda n: lambda K, p, kw: getattr(K.layers, f"SeparableConv{n}D")(**p, **kw)
            )(_n),
            reg_slots=(
                ("depthwise_regularizer", False),
                ("pointwise_regularizer", False),
                ("bias_regularizer", False),
            ),
            activity=True,
        )
    )


def _depthwise_params(draw, shapes, dtype):
    (shape,) = shapes
    p = spatial_conv_params(draw, shape[:-1], equal_strides=True)
    p["depth_multiplier"] = ints(draw, 1, 2)
    p["activation"] = activation(draw)
    p["use_bias"] = not draw(st.booleans())
    return p


def _depthwise_out(shapes, p):
    shape = shapes[0]
    return conv_out_spatial(shape[:-1], p) + (shape[-1] * p["depth_multiplier"],)


for _n in (1, 2):
    register(
        Kind(
            name=f"DepthwiseConv{_n}D",
            family="convolution",
            ranks=(_n + 1,),
            params=_depthwise_params,
            out_shape=_depthwise_out,
            make=(
                lambda n: lambda K, p, kw: getattr(K.layers, f"DepthwiseConv{n}D")(**p, **kw)
            )(_n),
            reg_slots=(("depthwise_regularizer", False), ("bias_regularizer", False)),
            activity=True,
        )
    )


def _transpose_params(draw, shapes, dtype):
    (shape,) = shapes
    spatial = shape[:-1]
    padding = pick(draw, ("valid", "same"))
    filters = ints(draw, 1, 4)
    ks, ss = [], []
    budget = MAX_ELEMENTS // max(filters, 1)
    total = 1
    for d in spatial:
        k = ints(draw, 1, 3)
        s = ints(draw, 1, 2)
        if deconv_len(d, k, s, padding) > GROW_MAX:
            s = 1
        if deconv_len(d, k, s, padding) > GROW_MAX:
            k = 1
        ks.append(k)
        ss.append(s)
        total *= deconv_len(d, k, s, padding)
    if total > budget:  # shrink strides back to 1, kernels to 1: growth then stays bounded
        ss = [1] * len(ss)
        ks = [1] * len(ks)
    return {
        "filters": filters,
        "kernel_size": tuple(ks),
        "strides": tuple(ss),
        "padding": padding,
        "activation": activation(draw),
        "use_bias": not draw(st.booleans()),
    }


def _transpose_out(shapes, p):
    spatial = shapes[0][:-1]
    return tuple(
        deconv_len(d, k, s, p["padding"])
        for d, k, s in zip(spatial, p["kernel_size"], p["strides"], strict=True)
    ) + (p["filters"],)


for _n in (1, 2, 3):
    register(
        Kind(
            name=f"Conv{_n}DTranspose",
            family="convolution",
            ranks=(_n + 1,),
            params=_transpose_params,
            out_shape=_transpose_out,
            make=(lambda n: lambda K, p, kw: getattr(K.layers, f"Conv{n}DTranspose")(**p, **kw))(
                _n
            ),
            reg_slots=_KERNEL_BIAS,
            activity=True,
            accepts=lambda s: max(s[:-1]) <= GROW_MAX and prod(s[:-1]) * 4 <= MAX_ELEMENTS,
        )
    )
