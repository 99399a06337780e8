"""Reshaping: Flatten, Reshape, Permute, RepeatVector, Cropping, ZeroPadding, UpSampling."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import GROW_MAX, MAX_ELEMENTS, Kind, ints, pick, prod, register, reshape_target

register(
    Kind(
        name="Flatten",
        family="reshaping",
        ranks=(1, 2, 3, 4),
        params=lambda draw, s, d: {},
        out_shape=lambda s, p: (prod(s[0]),),
        make=lambda K, p, kw: K.layers.Flatten(**p, **kw),
        out_ranks=lambda r: (1,),
    )
)

register(
    Kind(
        name="Reshape",
        family="reshaping",
        ranks=(1, 2, 3, 4),
        params=lambda draw, s, d: {"target_shape": reshape_target(draw, s[0])},
        out_shape=lambda s, p: tuple(p["target_shape"]),
        make=lambda K, p, kw: K.layers.Reshape(**p, **kw),
        out_ranks=lambda r: (1, 2, 3, 4),
    )
)

register(
    Kind(
        name="Permute",
        family="reshaping",
        ranks=(2, 3, 4),
        params=lambda draw, s, d: {
            "dims": tuple(draw(st.permutations(tuple(range(1, len(s[0]) + 1)))))
        },
        out_shape=lambda s, p: tuple(s[0][i - 1] for i in p["dims"]),
        make=lambda K, p, kw: K.layers.Permute(**p, **kw),
    )
)

register(
    Kind(
        name="RepeatVector",
        family="reshaping",
        ranks=(1,),
        params=lambda draw, s, d: {"n": ints(draw, 1, 4)},
        out_shape=lambda s, p: (p["n"],) + s[0],
        make=lambda K, p, kw: K.layers.RepeatVector(**p, **kw),
        out_ranks=lambda r: (2,),
    )
)


def _crop_params(draw, shapes, dtype):
    (shape,) = shapes
    pairs = []
    for d in shape[:-1]:
        a = ints(draw, 0, (d - 1) // 2)
        b = ints(draw, 0, d - 1 - a)
        pairs.append((a, b))
    if len(pairs) == 1:
        return {"cropping": pairs[0]}
    return {"cropping": tuple(pairs)}


def _crop_out(shapes, p):
    shape = shapes[0]
    crops = p["cropping"]
    if len(shape) == 2:
        crops = (crops,)
    return tuple(d - a - b for d, (a, b) in zip(shape[:-1], crops, strict=True)) + (shape[-1],)


for _n in (1, 2, 3):
    register(
        Kind(
            name=f"Cropping{_n}D",
            family="reshaping",
            ranks=(_n + 1,),
            params=_crop_params,
            out_shape=_crop_out,
            make=(lambda n: lambda K, p, kw: getattr(K.layers, f"Cropping{n}D")(**p, **kw))(_n),
        )
    )


def _pad_params(draw, shapes, dtype):
    (shape,) = shapes
    pairs = []
    for d in shape[:-1]:
        room = max(0, min(2, (GROW_MAX - d) // 2))
        pairs.append((ints(draw, 0, room), ints(draw, 0, room)))
    if len(pairs) == 1:
        return {"padding": pairs[0]}
    return {"padding": tuple(pairs)}


def _pad_out(shapes, p):
    shape = shapes[0]
    pads = p["padding"]
    if len(shape) == 2:
        pads = (pads,)
    return tuple(d + a + b for d, (a, b) in zip(shape[:-1], pads, strict=True)) + (shape[-1],)


def _grow_ok(shape):
    return max(shape[:-1]) <= GROW_MAX - 2 and prod(tuple(d + 4 for d in shape[:-1])) * shape[
        -1
    ] <= MAX_ELEMENTS


for _n in (1, 2, 3):
    register(
        Kind(
            name=f"ZeroPadding{_n}D",
            family="reshaping",
            ranks=(_n + 1,),
            params=_pad_params,
            out_shape=_pad_out,
            make=(lambda n: lambda K, p, kw: getattr(K.layers, f"ZeroPadding{n}D")(**p, **kw))(
                _n
            ),
            accepts=_grow_ok,
        )
    )


def _up_ok(shape):
    return max(shape[:-1]) * 2 <= GROW_MAX and prod(shape) * 2 ** (len(shape) - 1) <= MAX_ELEMENTS


def _up1_params(draw, shapes, dtype):
    return {"size": ints(draw, 1, 2)}


def _upn_params(draw, shapes, dtype):
    (shape,) = shapes
    p = {"size": tuple(ints(draw, 1, 2) for _ in shape[:-1])}
    if len(shape) == 3:
        p["interpolation"] = pick(draw, ("nearest", "bilinear"))
    return p


def _up_out(shapes, p):
    shape = shapes[0]
    size = p["size"]
    if isinstance(size, int):
        size = (size,)
    return tuple(d * s for d, s in zip(shape[:-1], size, strict=True)) + (shape[-1],)


for _n in (1, 2, 3):
    register(
        Kind(
            name=f"UpSampling{_n}D",
            family="reshaping",
            ranks=(_n + 1,),
            params=_up1_params if _n == 1 else _upn_params,
            out_shape=_up_out,
            make=(lambda n: lambda K, p, kw: getattr(K.layers, f"UpSampling{n}D")(**p, **kw))(_n),
            accepts=_up_ok,
        )
    )
