"""Merging layers. Their inputs have equal shapes (the generator inserts adapters)."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import Kind, register

ANY_RANK = (1, 2, 3, 4)

for _name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
    register(
        Kind(
            name=_name,
            family="merging",
            ranks=ANY_RANK,
            arity="merge",
            n_inputs=(2, 2) if _name == "Subtract" else (2, 3),
            params=lambda draw, s, d: {},
            out_shape=lambda s, p: s[0],
            make=(lambda n: lambda K, p, kw: getattr(K.layers, n)(**p, **kw))(_name),
            in_sequential=False,
            shareable=False,
        )
    )


def _concat_out(shapes, p):
    return shapes[0][:-1] + (sum(s[-1] for s in shapes),)


register(
    Kind(
        name="Concatenate",
        family="merging",
        ranks=ANY_RANK,
        arity="merge",
        n_inputs=(2, 3),
        params=lambda draw, s, d: {"axis": -1},
        out_shape=_concat_out,
        make=lambda K, p, kw: K.layers.Concatenate(**p, **kw),
        in_sequential=False,
        shareable=False,
    )
)


def _dot_params(draw, shapes, dtype):
    rank = len(shapes[0])
    # float16 underflows the l2-normalize epsilon: zero vectors would give NaN
    return {"axes": rank, "normalize": dtype != "float16" and draw(st.booleans())}


def _dot_out(shapes, p):
    a, b = shapes[0], shapes[1]
    if len(a) == 1:
        return (1,)
    return (a[0], b[0])


register(
    Kind(
        name="Dot",
        family="merging",
        ranks=(1, 2),
        arity="merge",
        n_inputs=(2, 2),
        params=_dot_params,
        out_shape=_dot_out,
        make=lambda K, p, kw: K.layers.Dot(**p, **kw),
        in_sequential=False,
        shareable=False,
        out_ranks=lambda r: (r,),
    )
)
