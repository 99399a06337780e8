"""Pooling: max and average 1D/2D/3D, and their global variants."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import Kind, conv_len, ints, pick, register


def _pool_params(draw, shapes, dtype):
    (shape,) = shapes
    spatial = shape[:-1]
    padding = pick(draw, ("valid", "same"))
    sizes = tuple(ints(draw, 1, min(3, d) if padding == "valid" else 3) for d in spatial)
    p = {"pool_size": sizes, "padding": padding}
    if draw(st.booleans()):
        p["strides"] = tuple(ints(draw, 1, 2) for _ in spatial)
    return p


def _pool_out(shapes, p):
    shape = shapes[0]
    strides = p.get("strides") or p["pool_size"]
    return tuple(
        conv_len(d, k, s, p["padding"])
        for d, k, s in zip(shape[:-1], p["pool_size"], strides, strict=True)
    ) + (shape[-1],)


for _op in ("Max", "Average"):
    for _n in (1, 2, 3):
        register(
            Kind(
                name=f"{_op}Pooling{_n}D",
                family="pooling",
                ranks=(_n + 1,),
                params=_pool_params,
                out_shape=_pool_out,
                # TensorFlow's CPU MaxPool3D/AvgPool3D kernels are float32 only
                dtypes=("float32",) if _n == 3 else ("float32", "float16", "float64"),
                make=(
                    lambda cls: lambda K, p, kw: getattr(K.layers, cls)(**p, **kw)
                )(f"{_op}Pooling{_n}D"),
            )
        )


def _global_params(draw, shapes, dtype):
    return {"keepdims": draw(st.booleans())}


def _global_out(shapes, p):
    shape = shapes[0]
    if p["keepdims"]:
        return (1,) * (len(shape) - 1) + (shape[-1],)
    return (shape[-1],)


for _op in ("Max", "Average"):
    for _n in (1, 2, 3):
        register(
            Kind(
                name=f"Global{_op}Pooling{_n}D",
                family="pooling",
                ranks=(_n + 1,),
                params=_global_params,
                out_shape=_global_out,
                make=(
                    lambda cls: lambda K, p, kw: getattr(K.layers, cls)(**p, **kw)
                )(f"Global{_op}Pooling{_n}D"),
                out_ranks=(lambda n: lambda r: (1, n + 1))(_n),
            )
        )
