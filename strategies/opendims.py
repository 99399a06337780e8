"""Open (``None``) dimensions: which kinds take them and how they travel through a spec.

A spec is drawn with concrete shapes; :func:`draw_open_dims` then opens input axes (``None``
in the built model) where every layer downstream takes it, so the catalog's shape rules keep
computing on concrete tuples (the spec's lengths become probe lengths) and specs without open
axes are drawn exactly as before. Each open axis carries a tag naming its length as a
function of one input axis (``in_0:0``, then ``in_0:0>k3s2d1v`` after a strided convolution):
a merge or an attention needs equal tags on its inputs, because lengths equal at the probe
are not equal at other lengths.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from .spec import InputSpec, ModelSpec

Tags = tuple[str | None, ...]

# How a kind takes an open axis; a kind not named here takes none (Flatten, Reshape, the
# custom layers, ...). Every rule but "embedding" needs the last (channel/feature) axis
# closed: the layer's variables are sized by it.
_POINTWISE = (
    "Dense", "Activation", "Identity", "ReLU", "LeakyReLU", "ELU", "Softmax", "Rescaling",
    "Masking", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "BatchNormalization", "LayerNormalization", "UnitNormalization",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "Attention", "AdditiveAttention", "MultiHeadAttention",
)  # fmt: skip
_SPATIAL = tuple(
    f"{base}{n}D"
    for n in (1, 2, 3)
    for base in ("Conv", "SeparableConv", "DepthwiseConv", "MaxPooling", "AveragePooling")
    if not (n == 3 and base in ("SeparableConv", "DepthwiseConv"))
)
_GLOBAL = tuple(f"Global{op}Pooling{n}D" for op in ("Max", "Average") for n in (1, 2, 3))

RULES: dict[str, str] = {
    **{k: "pointwise" for k in _POINTWISE},  # keeps every axis (merges: equal tags)
    **{k: "spatial" for k in _SPATIAL},  # spatial axes through kernel/stride/padding
    **{k: "global" for k in _GLOBAL},  # reduces the spatial axes away
    **{k: "rnn" for k in ("SimpleRNN", "LSTM", "GRU", "Bidirectional")},  # time axis
    # Not TimeDistributed: Keras 3.15.1's, traced by tf.function with a None time axis,
    # returns one timestep ((1, 4, 3) in, (1, 1, 1) out), so no saver can keep it open
    # (tf_keras' also fixes every axis but time when built eagerly).
    "Embedding": "embedding",  # ids of any length; appends a closed axis
}


class _Closed(Exception):
    """A layer does not take the open axes reaching it."""


def _spatial(tags: Tags, p: dict) -> Tags:
    n = len(tags) - 1
    if "kernel_size" in p:
        ks, ss = p["kernel_size"], p.get("strides") or (1,) * n
    else:  # pooling: strides default to the pool size
        ks = p["pool_size"]
        ss = p.get("strides") or ks
    dil = p.get("dilation_rate") or (1,) * n
    out: list[str | None] = []
    for t, k, s, d in zip(tags[:-1], ks, ss, dil, strict=True):
        keeps = s == 1 and (p["padding"] == "same" or k == 1)
        out.append(t if t is None or keeps else f"{t}>k{k}s{s}d{d}{p['padding'][0]}")
    return (*out, None)


def out_tags(kind: str, params: dict, in_tags: list[Tags], out_rank: int) -> Tags:
    """The output's tags of one layer, or :class:`_Closed` if it does not take them."""
    if not any(t is not None for tags in in_tags for t in tags):
        return (None,) * out_rank
    rule = RULES.get(kind)
    first = in_tags[0]
    if rule is None or any(tags != first for tags in in_tags[1:]):
        raise _Closed(kind)
    if rule != "embedding" and first[-1] is not None:
        raise _Closed(kind)
    if rule == "pointwise":
        out = first
    elif rule == "embedding":
        out = (*first, None)
    elif rule == "rnn":
        out = (first[0], None) if params["return_sequences"] else (None,)
    elif rule == "global":
        out = (None,) * out_rank
    else:
        out = _spatial(first, params)
    if len(out) != out_rank:
        raise _Closed(kind)
    return out


def _axes(tags: Tags) -> tuple[int, ...]:
    return tuple(i for i, t in enumerate(tags) if t is not None)


def _propagate(spec: ModelSpec, input_tags: dict[str, Tags]) -> tuple[ModelSpec, dict]:
    env = dict(input_tags)
    inputs = tuple(replace(i, open_axes=_axes(env[i.name])) for i in spec.inputs)
    nodes = []
    for n in spec.nodes:
        ins = [env[r] for r in n.inputs]
        sub = n.submodel
        if sub is not None:
            sub, inner = _propagate(sub, {sub.inputs[0].name: ins[0]})
            tags = inner[sub.outputs[0]]
        else:
            tags = out_tags(n.kind, n.param_dict, ins, len(n.out_shape))
        env[n.id] = tags
        nodes.append(replace(n, open_axes=_axes(tags), submodel=sub))
    return replace(spec, inputs=inputs, nodes=tuple(nodes)), env


def open_spec(spec: ModelSpec, opened: dict[str, tuple[int, ...]]) -> ModelSpec | None:
    """``spec`` with the axes ``opened`` (input name -> axes) open, or None if some layer
    downstream does not take them."""
    if opened and _orthogonal_activity(spec):
        # OrthogonalRegularizer on activities needs a static batch, and a model with open
        # axes is traced with an open batch as well
        return None
    tags = {
        i.name: tuple(
            f"{i.name}:{a}" if a in opened.get(i.name, ()) else None for a in range(len(i.shape))
        )
        for i in spec.inputs
    }
    try:
        return _propagate(spec, tags)[0]
    except _Closed:
        return None


def _orthogonal_activity(spec: ModelSpec) -> bool:
    for n in spec.nodes:
        if any(slot == "activity_regularizer" and reg.kind == "orthogonal"
               for slot, reg in n.regularizers):
            return True
        if n.submodel is not None and _orthogonal_activity(n.submodel):
            return True
    return False


def candidate_axes(inp: InputSpec) -> tuple[int, ...]:
    """Axes an input may open: all but the feature axis of a float input, any of ids."""
    if inp.dtype.startswith("int"):
        return tuple(range(len(inp.shape)))
    return tuple(range(len(inp.shape) - 1))


def draw_open_dims(draw, spec: ModelSpec, every: bool) -> ModelSpec:
    """Open input axes one by one where the layers downstream take it: each drawn (shrinking
    to closed), or ``every`` one that fits."""
    opened: dict[str, tuple[int, ...]] = {}
    for inp in spec.inputs:
        for axis in candidate_axes(inp):
            if not every and not draw(st.booleans()):
                continue
            trial = {**opened, inp.name: opened.get(inp.name, ()) + (axis,)}
            if open_spec(spec, trial) is not None:
                opened = trial
    if not opened:
        return spec
    return open_spec(spec, opened)


def open_keys(spec: ModelSpec) -> tuple[tuple[str, int], ...]:
    """(input name, axis) of every open input axis of the root."""
    return tuple((i.name, a) for i in spec.inputs for a in i.open_axes)


def open_lengths(spec: ModelSpec, extra: int) -> dict[tuple[str, int], int]:
    """Every open axis at its probe length plus ``extra`` (>= 0: valid convolutions and
    pooling need at least the probe length)."""
    if extra < 0:
        raise ValueError("open lengths are the probe length or longer")
    shapes = {i.name: i.shape for i in spec.inputs}
    return {(name, a): shapes[name][a] + extra for name, a in open_keys(spec)}
