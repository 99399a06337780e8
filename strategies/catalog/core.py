"""Core layers: Dense, EinsumDense, Embedding, Activation, Masking and the activation layers."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import (
    ACTIVATIONS,
    INT_DTYPES,
    Kind,
    activation,
    framework_name,
    ints,
    pick,
    register,
)

ANY_RANK = (1, 2, 3, 4)


def _dense_params(draw, shapes, dtype):
    return {
        "units": ints(draw, 1, 8),
        "activation": activation(draw),
        "use_bias": not draw(st.booleans()),
    }


register(
    Kind(
        name="Dense",
        family="core",
        ranks=ANY_RANK,
        params=_dense_params,
        out_shape=lambda s, p: s[0][:-1] + (p["units"],),
        make=lambda K, p, kw: K.layers.Dense(**p, **kw),
        reg_slots=(("kernel_regularizer", True), ("bias_regularizer", False)),
        activity=True,
        supports_mask=True,
        produces_mask=lambda p, m: m,
    )
)


def _einsum_params(draw, shapes, dtype):
    (shape,) = shapes
    units = ints(draw, 1, 8)
    bias = draw(st.booleans())
    if len(shape) == 1:
        return {
            "equation": "ab,bc->ac",
            "output_shape": (units,),
            "bias_axes": "c" if bias else None,
            "activation": activation(draw),
        }
    # rank 2: (batch, t, c)
    return {
        "equation": "abc,cd->abd",
        "output_shape": (shape[0], units),
        "bias_axes": "d" if bias else None,
        "activation": activation(draw),
    }


register(
    Kind(
        name="EinsumDense",
        family="core",
        ranks=(1, 2),
        params=_einsum_params,
        out_shape=lambda s, p: tuple(p["output_shape"]),
        make=lambda K, p, kw: K.layers.EinsumDense(**p, **kw),
        reg_slots=(("kernel_regularizer", True), ("bias_regularizer", False)),
        activity=True,
    )
)


def _embedding_params(draw, shapes, dtype):
    return {
        "input_dim": 0,  # filled by the generator from the input's vocabulary
        "output_dim": ints(draw, 1, 4),
        "mask_zero": draw(st.booleans()),
    }


register(
    Kind(
        name="Embedding",
        family="core",
        ranks=(1, 2),
        dtypes=INT_DTYPES,
        params=_embedding_params,
        out_shape=lambda s, p: s[0] + (p["output_dim"],),
        make=lambda K, p, kw: K.layers.Embedding(**p, **kw),
        reg_slots=(("embeddings_regularizer", True),),
        activity=True,
        produces_mask=lambda p, m: bool(p["mask_zero"]),
        out_ranks=lambda r: (r + 1,),
    )
)

register(
    Kind(
        name="Activation",
        family="core",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"activation": pick(draw, ACTIVATIONS)},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.Activation(**p, **kw),
        supports_mask=True,
        produces_mask=lambda p, m: m,
    )
)

register(
    Kind(
        name="Masking",
        family="core",
        ranks=(2,),
        params=lambda draw, s, d: {"mask_value": pick(draw, (0.0, 1.0))},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.Masking(**p, **kw),
        produces_mask=lambda p, m: True,
    )
)

register(
    Kind(
        name="Identity",
        family="core",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.Identity(**p, **kw),
    )
)


def _relu_params(draw, shapes, dtype):
    p = {}
    if draw(st.booleans()):
        p["max_value"] = pick(draw, (6.0, 1.0))
    if draw(st.booleans()):
        p["negative_slope"] = pick(draw, (0.1, 0.3))
    if draw(st.booleans()):
        p["threshold"] = pick(draw, (0.5, 0.0))
    return p


register(
    Kind(
        name="ReLU",
        family="core",
        ranks=ANY_RANK,
        params=_relu_params,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.ReLU(**p, **kw),
    )
)


def _make_leaky(K, p, kw):
    slope = p["negative_slope"]
    if framework_name(K) == "tf_keras":
        return K.layers.LeakyReLU(alpha=slope, **kw)
    return K.layers.LeakyReLU(negative_slope=slope, **kw)


register(
    Kind(
        name="LeakyReLU",
        family="core",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"negative_slope": pick(draw, (0.3, 0.01, 0.2))},
        out_shape=lambda s, p: s[0],
        make=_make_leaky,
    )
)

register(
    Kind(
        name="ELU",
        family="core",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"alpha": pick(draw, (1.0, 0.5))},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.ELU(**p, **kw),
    )
)


def _prelu_params(draw, shapes, dtype):
    (shape,) = shapes
    p = {}
    if len(shape) >= 2 and draw(st.booleans()):
        p["shared_axes"] = tuple(range(1, len(shape)))
    return p


register(
    Kind(
        name="PReLU",
        family="core",
        ranks=ANY_RANK,
        params=_prelu_params,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.PReLU(**p, **kw),
        reg_slots=(("alpha_regularizer", False),),
    )
)

register(
    Kind(
        name="Softmax",
        family="core",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"axis": -1},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.Softmax(**p, **kw),
    )
)

register(
    Kind(
        name="Rescaling",
        family="core",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {
            "scale": pick(draw, (0.5, 2.0, -1.0)),
            "offset": pick(draw, (0.0, 0.25)),
        },
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.Rescaling(**p, **kw),
    )
)
