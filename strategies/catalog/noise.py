"""Noise and dropout layers, and ActivityRegularization.

Every stochastic layer here is marked ``deterministic_in_training=False``: with
``training=True`` its output is random. With ``training=False`` all are the identity.
"""

from __future__ import annotations

from .base import Kind, pick, register

ANY_RANK = (1, 2, 3, 4)


def _rate(draw, shapes, dtype):
    return {"rate": pick(draw, (0.0, 0.1, 0.5))}


register(
    Kind(
        name="Dropout",
        family="noise",
        ranks=ANY_RANK,
        params=_rate,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.Dropout(**p, **kw),
        deterministic_in_training=False,
        supports_mask=True,
        produces_mask=lambda p, m: m,
    )
)

for _n in (1, 2, 3):
    register(
        Kind(
            name=f"SpatialDropout{_n}D",
            family="noise",
            ranks=(_n + 1,),
            params=_rate,
            out_shape=lambda s, p: s[0],
            make=(lambda n: lambda K, p, kw: getattr(K.layers, f"SpatialDropout{n}D")(**p, **kw))(
                _n
            ),
            deterministic_in_training=False,
        )
    )

register(
    Kind(
        name="GaussianNoise",
        family="noise",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"stddev": pick(draw, (0.1, 0.0, 1.0))},
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.GaussianNoise(**p, **kw),
        deterministic_in_training=False,
    )
)

register(
    Kind(
        name="GaussianDropout",
        family="noise",
        ranks=ANY_RANK,
        params=_rate,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.GaussianDropout(**p, **kw),
        deterministic_in_training=False,
    )
)

register(
    Kind(
        name="AlphaDropout",
        family="noise",
        ranks=ANY_RANK,
        params=_rate,
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.AlphaDropout(**p, **kw),
        deterministic_in_training=False,
    )
)

register(
    Kind(
        name="ActivityRegularization",
        family="noise",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {
            "l1": pick(draw, (0.0, 0.01, 0.1)),
            "l2": pick(draw, (0.0, 0.01, 0.1)),
        },
        out_shape=lambda s, p: s[0],
        make=lambda K, p, kw: K.layers.ActivityRegularization(**p, **kw),
        supports_mask=True,
        produces_mask=lambda p, m: m,
    )
)
