"""The catalog's entry type, registry and shared parameter helpers.

Each :class:`Kind` holds what the generator needs to place a layer so that every drawn spec
builds: which input ranks (without batch) and dtypes it accepts, a parameter strategy bounded
by the current input shape, a shape rule, its construction for ``keras`` and ``tf_keras`` and
the regularizer slots it has. Ranks never count the batch axis: a ``Dense`` on ``(batch, 4)``
sees rank 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

FLOAT_DTYPES = ("float32", "float16", "float64")
INT_DTYPES = ("int32",)

MAX_DIM = 8  # largest dimension of an input
GROW_MAX = 16  # largest dimension a growing layer (UpSampling, padding, ...) may produce
MAX_ELEMENTS = 2048  # largest per-example tensor a growing layer may produce

ACTIVATIONS = (
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "swish",
    "gelu",
    "hard_sigmoid",
    "exponential",
)

Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy], Any]


@dataclass(frozen=True)
class Kind:
    """One catalog entry."""

    name: str
    family: str
    ranks: tuple[int, ...]
    params: Callable[[Draw, tuple[Shape, ...], str], dict[str, Any]]
    out_shape: Callable[[tuple[Shape, ...], dict[str, Any]], Shape]
    make: Callable[[Any, dict[str, Any], dict[str, Any]], Any]
    arity: str = "unary"  # unary | merge | attention
    n_inputs: tuple[int, int] = (1, 1)  # merges: (min, max) number of inputs
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    reg_slots: tuple[tuple[str, bool], ...] = ()  # (constructor arg, orthogonal allowed)
    activity: bool = False  # accepts activity_regularizer
    deterministic_in_training: bool = True
    supports_mask: bool = False  # may be fed a masked tensor
    produces_mask: Callable[[dict[str, Any], bool], bool] = field(
        default=lambda p, masked_in: False
    )
    accepts: Callable[[Shape], bool] = field(default=lambda s: True)
    out_ranks: Callable[[int], tuple[int, ...]] = field(default=lambda r: (r,))
    in_sequential: bool = True
    shareable: bool = True
    # Relative draw weight; 0 means 12 // len(ranks) (see generate._pick_kind).
    weight: int = 0
    # Keyword arguments the layer is called with in the model's graph (besides training).
    call_kwargs: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda p: {})
    # Params that depend on the source input's vocabulary (ids in [0, vocab), or tokens):
    # (draw, vocab, params) -> more params; the generator calls it (preprocessing heads).
    vocab_params: Callable[[Draw, int, dict[str, Any]], dict[str, Any]] | None = None

    @property
    def draw_weight(self) -> int:
        return self.weight or 12 // len(self.ranks)

    @property
    def short(self) -> str:
        return self.name.lower()

    def can_take(self, shape: Shape, dtype: str, masked: bool) -> bool:
        if len(shape) not in self.ranks or dtype not in self.dtypes:
            return False
        if masked and not self.supports_mask:
            return False
        return bool(self.accepts(shape))


REGISTRY: dict[str, Kind] = {}  # the kinds model_specs draws from
# Kinds only fixed specs name (the zoo's applications): built like any other, never drawn,
# and outside the coverage table's denominators.
FIXED: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.name in REGISTRY or kind.name in FIXED:
        raise ValueError(f"duplicate catalog kind {kind.name}")
    REGISTRY[kind.name] = kind
    return kind


def register_fixed(kind: Kind) -> Kind:
    if kind.name in REGISTRY or kind.name in FIXED:
        raise ValueError(f"duplicate catalog kind {kind.name}")
    FIXED[kind.name] = kind
    return kind


def lookup(name: str) -> Kind:
    """A drawable or a fixed kind by name (what building a spec needs)."""
    return REGISTRY[name] if name in REGISTRY else FIXED[name]


def framework_name(K: Any) -> str:
    """"tf_keras" for Keras 2 (tf_keras, or TensorFlow 2.12-2.15's tf.keras), else "keras"."""
    if K.__name__.startswith(("tf_keras", "keras.api._v2")):  # _v2: tf.keras before 2.16
        return "tf_keras"
    return "tf_keras" if str(getattr(K, "__version__", "3")).startswith("2.") else "keras"


# --- parameter helpers ---------------------------------------------------------------------


def ints(draw: Draw, lo: int, hi: int) -> int:
    return draw(st.integers(lo, max(lo, hi)))


def pick(draw: Draw, options: tuple | list) -> Any:
    """Uniform choice (``sampled_from`` favours the first entries), shrinking to the first."""
    options = tuple(options)
    return options[draw(st.integers(0, 2**16 - 1)) % len(options)]


def small_float(draw: Draw, options: tuple[float, ...]) -> float:
    return draw(st.sampled_from(options))


def activation(draw: Draw) -> str:
    return pick(draw, ACTIVATIONS)


def prod(shape: Shape) -> int:
    return int(math.prod(shape))


def conv_len(d: int, k: int, s: int, padding: str, dilation: int = 1) -> int:
    k_eff = (k - 1) * dilation + 1
    if padding == "same":
        return -(-d // s)
    return (d - k_eff) // s + 1


def deconv_len(d: int, k: int, s: int, padding: str) -> int:
    if padding == "same":
        return d * s
    return d * s + max(k - s, 0)


def spatial_conv_params(
    draw: Draw, spatial: Shape, *, allow_dilation: bool = True, equal_strides: bool = False
) -> dict:
    """kernel_size, strides, padding, dilation_rate bounded so every output dim is >= 1."""
    n = len(spatial)
    padding = pick(draw, ("valid", "same"))
    strided = draw(st.booleans())
    dilated = allow_dilation and not strided and draw(st.booleans())
    ks, ss, ds = [], [], []
    for d in spatial:
        dil = ints(draw, 1, 2) if dilated and d >= 3 else 1
        kmax = min(3, d) if padding == "valid" else 3
        if padding == "valid" and dil > 1:
            kmax = min(kmax, (d - 1) // dil + 1)
        k = ints(draw, 1, kmax)
        s = ints(draw, 1, 2) if strided and not (equal_strides and ss) else 1
        if equal_strides and ss:
            s = ss[0]
        ks.append(k)
        ss.append(s)
        ds.append(dil)
    if dilated and all(x == 1 for x in ds):
        dilated = False
    out = {"kernel_size": tuple(ks), "strides": tuple(ss), "padding": padding}
    if dilated:
        out["dilation_rate"] = tuple(ds)
    del n
    return out


def conv_out_spatial(spatial: Shape, p: dict) -> Shape:
    dil = p.get("dilation_rate", (1,) * len(spatial))
    return tuple(
        conv_len(d, k, s, p["padding"], di)
        for d, k, s, di in zip(spatial, p["kernel_size"], p["strides"], dil, strict=True)
    )


def factorize(n: int) -> list[int]:
    out, f = [], 2
    while f * f <= n:
        while n % f == 0:
            out.append(f)
            n //= f
        f += 1
    if n > 1:
        out.append(n)
    return out


def reshape_target(draw: Draw, shape: Shape, max_rank: int = 4) -> Shape:
    """A target shape with the same number of elements, rank 1..max_rank."""
    n = prod(shape)
    rank = pick(draw, tuple(range(1, max_rank + 1)))
    dims = [1] * rank
    for f in factorize(n):
        dims[ints(draw, 0, rank - 1)] *= f
    return tuple(dims)
