"""Attention layers on rank-2 (time, features) tensors: query and value of equal shape
(self-attention when the generator feeds the same tensor twice)."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import Kind, ints, pick, register


def _make_attention(cls):
    def make(K, p, kw):
        return getattr(K.layers, cls)(**p, **kw)

    return make


register(
    Kind(
        name="Attention",
        family="attention",
        ranks=(2,),
        arity="attention",
        params=lambda draw, s, d: {
            "use_scale": draw(st.booleans()),
            "score_mode": pick(draw, ("dot", "concat")),
        },
        out_shape=lambda s, p: s[0],
        make=_make_attention("Attention"),
        in_sequential=False,
    )
)

register(
    Kind(
        name="AdditiveAttention",
        family="attention",
        ranks=(2,),
        arity="attention",
        params=lambda draw, s, d: {"use_scale": draw(st.booleans())},
        out_shape=lambda s, p: s[0],
        make=_make_attention("AdditiveAttention"),
        in_sequential=False,
    )
)


def _mha_params(draw, shapes, dtype):
    return {
        "num_heads": ints(draw, 1, 2),
        "key_dim": ints(draw, 1, 4),
        "use_bias": not draw(st.booleans()),
    }


register(
    Kind(
        name="MultiHeadAttention",
        family="attention",
        ranks=(2,),
        arity="attention",
        params=_mha_params,
        out_shape=lambda s, p: s[0],
        make=_make_attention("MultiHeadAttention"),
        reg_slots=(("kernel_regularizer", False), ("bias_regularizer", False)),
        in_sequential=False,
    )
)
