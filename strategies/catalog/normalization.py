"""Normalization: BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import Kind, pick, register

ANY_RANK = (1, 2, 3, 4)
_GAMMA_BETA = (("gamma_regularizer", False), ("beta_regularizer", False))


def _bn_params(draw, shapes, dtype):
    return {
        "momentum": pick(draw, (0.99, 0.9, 0.5)),
        "epsilon": pick(draw, (1e-3, 1e-2)),
        "center": not draw(st.booleans()),
        "scale": not draw(st.booleans()),
    }


register(
    Kind(
        name="BatchNormalization",
        family="normalization",
        ranks=ANY_RANK,
        params=_bn_params,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.BatchNormalization(**p, **kw),
        reg_slots=_GAMMA_BETA,
        supports_mask=True,
        produces_mask=lambda p, m: m,
    )
)


def _ln_params(draw, shapes, dtype):
    return {
        "epsilon": pick(draw, (1e-3, 1e-2)),
        "center": not draw(st.booleans()),
        "scale": not draw(st.booleans()),
    }


register(
    Kind(
        name="LayerNormalization",
        family="normalization",
        ranks=ANY_RANK,
        params=_ln_params,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.LayerNormalization(**p, **kw),
        reg_slots=_GAMMA_BETA,
        supports_mask=True,
        produces_mask=lambda p, m: m,
    )
)


def _gn_params(draw, shapes, dtype):
    (shape,) = shapes
    channels = shape[-1]
    divisors = tuple(g for g in range(1, channels + 1) if channels % g == 0)
    return {
        "groups": pick(draw, divisors),
        "epsilon": pick(draw, (1e-3, 1e-2)),
        "center": not draw(st.booleans()),
        "scale": not draw(st.booleans()),
    }


register(
    Kind(
        name="GroupNormalization",
        family="normalization",
        ranks=(1, 2, 3, 4),
        params=_gn_params,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.GroupNormalization(**p, **kw),
        reg_slots=_GAMMA_BETA,
    )
)

register(
    Kind(
        name="UnitNormalization",
        family="normalization",
        ranks=ANY_RANK,
        # float16 underflows its epsilon: an all-zero vector normalizes to NaN
        dtypes=("float32", "float64"),
        params=lambda draw, s, d: {"axis": -1},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.UnitNormalization(**p, **kw),
    )
)
