"""Hypothesis strategies that draw :class:`ModelSpec` values valid by construction.

No ``assume``/``filter``: a node only picks kinds that accept the shape, dtype and mask of its
source tensor, parameters are bounded by that shape, and merges of mismatched shapes get
adapters (Flatten -> Dense -> Reshape). Node ``i`` draws its source among earlier tensors,
latest first, so graphs shrink toward a chain; counts, ranks and dims shrink toward small and
the dtype toward float32.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import event
from hypothesis import strategies as st

from .catalog import FIXED, FLOAT_DTYPES, REGISTRY, Kind
from .catalog.base import prod
from .catalog.metrics import CUSTOM_METRICS
from .catalog.preprocessing import AFTER_INT64_HEADS, INT64_HEADS
from .opendims import draw_open_dims, open_keys
from .spec import (
    FROZEN,
    MIXED_POLICIES,
    OUTER_SHARE,
    TOPOLOGIES,
    InputSpec,
    LayerSpec,
    ModelSpec,
    RegularizerSpec,
    TrainingSpec,
    freeze_params,
)

REGULARIZER_KINDS = ("l2", "l1", "l1l2", "orthogonal", "ksc_scaled_l2")
FACTORS = (0.0, 0.01, 0.1, 0.001)
# largest per-example dims of an input, by rank (spatial, channels): tiny models build fast
_INPUT_DIMS = {1: (8, 8), 2: (8, 6), 3: (6, 4), 4: (4, 3)}
ADAPTER_KINDS = ("Flatten", "Dense", "Reshape", "Activation")
_ADAPT_BUDGET = 16384  # largest Dense kernel an adapter may need


@st.composite
def regularizer_specs(draw, orthogonal: bool = True) -> RegularizerSpec:
    """One regularizer. ``orthogonal=False`` leaves OrthogonalRegularizer out (it needs 2-D)."""
    kinds = REGULARIZER_KINDS if orthogonal else tuple(
        k for k in REGULARIZER_KINDS if k != "orthogonal"
    )
    kind = draw(st.sampled_from(kinds))
    f = st.sampled_from(FACTORS)
    if kind == "l1":
        params = {"l1": draw(f)}
    elif kind == "l2":
        params = {"l2": draw(f)}
    elif kind == "l1l2":
        params = {"l1": draw(f), "l2": draw(f)}
    elif kind == "orthogonal":
        params = {"factor": draw(f), "mode": draw(st.sampled_from(("rows", "columns")))}
    else:
        params = {"factor": draw(f)}
    return RegularizerSpec(kind=kind, params=freeze_params(params))


OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("mse", "mae", "huber")
METRICS = ("mae", "mse") + CUSTOM_METRICS


@st.composite
def training_specs(draw, n_outputs: int = 1) -> TrainingSpec:
    """How a model is compiled and trained: shrinks toward Adam, mse, no metric, one step."""
    optimizer = draw(st.sampled_from(OPTIMIZERS))
    metric_lists = st.lists(st.sampled_from(METRICS), max_size=2, unique=True)
    return TrainingSpec(
        optimizer=optimizer,
        learning_rate=draw(st.sampled_from((0.01, 0.001, 0.1))),
        losses=tuple(draw(st.sampled_from(LOSSES)) for _ in range(n_outputs)),
        loss_weights=tuple(draw(st.sampled_from((1.0, 0.5, 2.0))) for _ in range(n_outputs)),
        metrics=tuple(tuple(draw(metric_lists)) for _ in range(n_outputs)),
        steps=draw(st.integers(1, 3)),
        momentum=draw(st.sampled_from((0.0, 0.9))) if optimizer == "sgd" else 0.0,
        decay_steps=draw(st.sampled_from((0, 2))),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


# Keras 3.15 applies a constructor's trainable=False to a layer's own variables only: these
# kinds' sub-layers stay in the model's trainable variables and train (keras-team/keras#19398
# fixed it for own variables). Frozen before the build they would make a model Keras itself
# gets wrong, so they are frozen after it. tests/strategies checks that each still leaks.
FROZEN_BEFORE_LEAKS = frozenset(
    {"Bidirectional", "ConvLSTM1D", "KscNormBlock", "MultiHeadAttention", "TimeDistributed"}
)
# Keras 3.15's SpatialDropout1D/2D/3D constructors take no `trainable` (nor any other base
# layer argument but name, dtype and seed): they are frozen after the build only.
NO_TRAINABLE_ARGUMENT = frozenset({"SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"})


def _freeze_nodes(draw, nodes: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
    """Some layers and sub-models made non-trainable, before or after the build (rare:
    most specs stay trainable; shrinks toward trainable)."""
    if not _rare(draw, 4):
        return nodes
    out = []
    for n in nodes:
        # a shared node's layer is its original's; a kind drawing `trainable` itself keeps it
        if n.shares is None and "trainable" not in n.param_dict and _rare(draw, 3):
            after_only = n.kind in FROZEN_BEFORE_LEAKS or n.kind in NO_TRAINABLE_ARGUMENT
            when = "after" if after_only else draw(st.sampled_from(FROZEN))
            n = replace(n, frozen=when)
        out.append(n)
    return tuple(out)


def _input_shape(draw, rank: int) -> tuple[int, ...]:
    spatial, channels = _INPUT_DIMS[rank]
    dims = [draw(st.integers(1, spatial)) for _ in range(rank - 1)]
    dims.append(draw(st.integers(1, channels if rank > 1 else spatial)))
    return tuple(dims)


@st.composite
def input_specs(
    draw,
    *,
    name: str = "in_0",
    ranks: tuple[int, ...] = (1, 2, 3, 4),
    dtypes: tuple[str, ...] = ("float32",),
    allow_int: bool = False,
    batch_size: int | None = None,
    allow_string: bool = False,
    allow_text: bool = False,
) -> InputSpec:
    """One input: rank and dims shrink toward small, dtype toward the first of ``dtypes``.

    ``allow_string``: sometimes (rarely) a string input of tokens for the preprocessing
    heads; ``allow_text``: sometimes one of sentences (for TextVectorization).
    """
    if allow_string and _rare(draw, 6):
        vocab = draw(st.integers(3, 10))
        if allow_text and _rare(draw, 3):
            return InputSpec(name, (1,), "string", batch_size, vocab, words=draw(st.integers(1, 4)))
        return InputSpec(name, (draw(st.integers(1, 3)),), "string", batch_size, vocab)
    rank = _choice(draw, tuple(sorted(ranks)))
    shape = _input_shape(draw, rank)
    if allow_int and rank <= 2 and _rare(draw, 4):
        return InputSpec(name, shape, "int32", batch_size, vocab=draw(st.integers(2, 10)))
    return InputSpec(name, shape, draw(st.sampled_from(dtypes)), batch_size)


def _choice(draw, options: list | tuple, offset: int = 0):
    """A choice closer to uniform than one draw, that still shrinks toward ``options[0]``.

    Hypothesis favours some values when generating (the first entries, repeats); the sum of
    two independent draws modulo ``len(options)`` spreads that bias out, and both draws
    shrink to 0.
    """
    n = len(options)
    if n == 1:
        return options[0]
    idx = st.sampled_from(range(n))
    return options[(draw(idx) + draw(idx) + offset) % n]


def _pick_kind(draw, base: list[Kind], ok: list[Kind], rotation: int = 0) -> Kind:
    """A kind for the current tensor, each weighted by 1 / (number of ranks it accepts): a
    kind made for one rank (Conv2D) is drawn about as often overall as one taking any rank
    (Dense), so rank-specific kinds and their pairs are not crowded out.

    The index is drawn into ``base`` (kinds fitting the rank, whatever the dtype or mask) and
    moves forward to the next kind in ``ok``: a spec keeps its kinds when the shrinker turns
    float16 into float32. Hypothesis often draws minimal choices while generating;
    ``rotation`` (drawn once per spec) moves that bias to a different kind in each spec. It
    shrinks to 0, and the choice then shrinks toward the first candidate (Dense, when it
    fits). It does not depend on the node's position, so deleting a node leaves the kinds of
    the others alone.
    """
    weighted = [k for k in base for _ in range(k.draw_weight)]
    fits = {k.name for k in ok}
    n = len(weighted)
    i = draw(st.integers(0, n - 1)) if n > 1 else 0
    j = draw(st.integers(0, n - 1)) if n > 1 else 0
    start = (i + j + rotation) % n
    k = weighted[start]
    if k.name in fits:
        return k
    # Spread a miss over every fitting kind: moving on to the next fitting one would give
    # the kind after a run of misfits (a float16 run, Conv3D on small shapes) their share.
    return ok[(i + j + rotation) % len(ok)]


def _stable_number(text: str) -> int:
    """A number for ``text`` that is the same in every process (``hash`` is salted)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text)) % 9973


def _stop(draw) -> bool:
    """Stop adding steps? Rarely while generating (Hypothesis draws minimal values often, so
    it takes two minimal draws in a row); the shrinker turns both to 0 to stop early."""
    return all(draw(st.integers(0, 15)) == 0 for _ in range(3))


def _rare(draw, one_in: int = 4) -> bool:
    """A rare feature: True about one time in ``one_in``; shrinks to False."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def _skewed_count(draw, lo: int, hi: int) -> int:
    """An integer in [lo, hi], skewed toward hi when generating, shrinking toward lo."""
    if hi <= lo:
        return lo
    u = draw(st.integers(0, 1000)) / 1000.0
    return lo + round((hi - lo) * u**0.3)


@dataclass
class _Tensor:
    ref: str
    shape: tuple[int, ...]
    dtype: str
    masked: bool
    kind: str  # producing kind, "Input" for model inputs
    vocab: int | None = None


class _Graph:
    """Mutable state of one spec being drawn."""

    def __init__(self, draw, allowed: list[Kind], dtype: str, topology: str, prefix: str):
        self.draw = draw
        self.allowed = allowed
        self.dtype = dtype
        self.topology = topology
        self.prefix = prefix
        self.nodes: list[LayerSpec] = []
        self.tensors: list[_Tensor] = []
        self.consumed: set[str] = set()
        self.fixed_batch = False
        self.rotation = 0

    # --- helpers ---------------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"n{len(self.nodes)}"

    def _layer_name(self, node_id: str, kind: str) -> str:
        return f"{self.prefix}{node_id}_{kind.lower()}"

    def _may_follow(self, k: Kind, t: _Tensor) -> bool:
        if self.topology == "sequential" and not k.in_sequential:
            return False
        return t.kind not in INT64_HEADS or k.name in AFTER_INT64_HEADS

    def candidates(self, t: _Tensor) -> list[Kind]:
        return [
            k for k in self.allowed if self._may_follow(k, t) and k.can_take(
                t.shape, t.dtype, t.masked)
        ]

    def base(self, t: _Tensor) -> list[Kind]:
        """Kinds fitting ``t``'s rank and shape, ignoring its dtype and mask."""
        return [
            k
            for k in self.allowed
            if self._may_follow(k, t) and len(t.shape) in k.ranks and k.accepts(t.shape)
        ]

    def pick(self, t: _Tensor) -> Kind:
        if t.dtype not in FLOAT_DTYPES:
            # ids and strings: few kinds take them, and walking forward from a float kind
            # would always land on the same one; a plain choice among them instead
            return _choice(self.draw, self.candidates(t))
        # The rotation, scaled by a number of the producing kind, sends the bias of
        # Hypothesis' draws to a different consumer after each producer (more kind pairs);
        # it still shrinks to 0.
        rotation = self.rotation * (1 + _stable_number(t.kind))
        return _pick_kind(self.draw, self.base(t), self.candidates(t), rotation)

    def add(self, kind: Kind, inputs: list[_Tensor], params: dict, regs=()):
        node_id = self._new_id()
        shapes = tuple(t.shape for t in inputs)
        out_shape = tuple(kind.out_shape(shapes, params))
        masked = kind.produces_mask(params, inputs[0].masked)
        node = LayerSpec(
            id=node_id,
            kind=kind.name,
            inputs=tuple(t.ref for t in inputs),
            params=freeze_params(params),
            regularizers=tuple(regs),
            out_shape=out_shape,
            layer_name=self._layer_name(node_id, kind.name),
        )
        self.nodes.append(node)
        for t in inputs:
            self.consumed.add(t.ref)
        out = _Tensor(node_id, out_shape, self.dtype, masked, kind.name)
        self.tensors.append(out)
        return out

    def regularizers(
        self, kind: Kind, out_rank: int, params: dict
    ) -> list[tuple[str, RegularizerSpec]]:
        draw = self.draw
        # a layer without a bias has nothing for a bias regularizer to add a loss for
        no_bias = params.get("use_bias") is False or (
            "bias_axes" in params and params["bias_axes"] is None  # EinsumDense
        )
        slots = [s for s in kind.reg_slots if not (no_bias and s[0] == "bias_regularizer")]
        if kind.activity:
            # tf_keras' OrthogonalRegularizer needs a static batch size on activities, and a
            # subclassed model is traced with an open batch (its InputSpec declares None)
            static = self.fixed_batch and self.topology != "subclassed"
            slots.append(("activity_regularizer", out_rank == 1 and static))
        # Keras 3's OrthogonalRegularizer builds a float32 identity: float32 weights only
        ortho_ok = self.dtype == "float32"
        if not slots or not draw(st.booleans()):
            return []
        regs = []
        for slot, ortho in slots:
            if draw(st.booleans()):
                regs.append((slot, draw(regularizer_specs(orthogonal=ortho and ortho_ok))))
        return regs

    # --- adapters --------------------------------------------------------------------------
    def adapt(self, t: _Tensor, target: tuple[int, ...]) -> _Tensor:
        """Flatten -> Dense -> Reshape so that ``t`` gets shape ``target``."""
        if t.shape == target:
            return t
        if len(t.shape) > 1:
            t = self.add(REGISTRY["Flatten"], [t], {})
        n = prod(target)
        t = self.add(
            REGISTRY["Dense"], [t], {"units": n, "activation": "linear", "use_bias": True}
        )
        if target != (n,):
            t = self.add(REGISTRY["Reshape"], [t], {"target_shape": target})
        return t

    def _partner(self, source: _Tensor, target: tuple[int, ...], concat: bool) -> _Tensor:
        """Another tensor for a merge or attention, adapted to ``target`` when affordable."""
        pool = [
            t
            for t in reversed(self.tensors)
            if not t.masked and t.dtype == source.dtype and t.kind not in INT64_HEADS
        ]
        others = [t for t in pool if t.ref != source.ref]
        if not others:
            return source
        fits = [
            t
            for t in others
            if t.shape == target or (concat and t.shape[:-1] == target[:-1])
        ]
        if fits and not _rare(self.draw, 4):  # mostly a partner that fits, sometimes adapt
            return fits[self.draw(st.integers(0, len(fits) - 1))]
        t = others[self.draw(st.integers(0, len(others) - 1))]
        if t.shape == target or (concat and t.shape[:-1] == target[:-1]):
            return t
        if prod(t.shape) * prod(target) > _ADAPT_BUDGET:
            return source
        return self.adapt(t, target)

    # --- one step --------------------------------------------------------------------------
    def step(self, source: _Tensor, kind: Kind) -> _Tensor:
        draw = self.draw
        if kind.arity == "merge":
            n = draw(st.integers(*kind.n_inputs))
            ins = [source]
            for _ in range(n - 1):
                ins.append(self._partner(source, source.shape, kind.name == "Concatenate"))
        elif kind.arity == "attention":
            ins = [source]
            if draw(st.booleans()):
                ins.append(self._partner(source, source.shape, False))
            else:
                ins.append(source)
        else:
            ins = [source]
        shapes = tuple(t.shape for t in ins)
        params = kind.params(draw, shapes, source.dtype)
        if kind.vocab_params is not None:
            params.update(kind.vocab_params(draw, source.vocab or 2, params))
        if kind.name == "Embedding":
            params["input_dim"] = (source.vocab or 2) + draw(st.integers(0, 2))
        out_rank = len(kind.out_shape(shapes, params))
        regs = self.regularizers(kind, out_rank, params)
        return self.add(kind, ins, params, regs)

    def try_share(self, source: _Tensor) -> _Tensor | None:
        """Call an earlier node's layer, or sub-model, again on ``source`` (same shape, dtype
        and mask)."""
        if (
            self.topology == "sequential"
            or source.dtype not in FLOAT_DTYPES
            or source.kind in INT64_HEADS
        ):
            return None
        by_ref = {t.ref: t for t in self.tensors}
        options = []
        for n in self.nodes:
            k = REGISTRY.get(n.kind)
            if n.shares or (n.submodel is None and (k is None or not k.shareable)):
                continue
            if len(n.inputs) != 1 or n.inputs[0] == source.ref:
                continue
            src = by_ref[n.inputs[0]]
            if (src.shape, src.dtype, src.masked) == (source.shape, source.dtype, source.masked):
                options.append(n)
        if not options or not _rare(self.draw, 5):
            return None
        orig = options[self.draw(st.integers(0, len(options) - 1))]
        node_id = self._new_id()
        # a mask does not cross a sub-model's boundary
        masked = orig.submodel is None and REGISTRY[orig.kind].produces_mask(
            orig.param_dict, source.masked
        )
        node = LayerSpec(
            id=node_id,
            kind=orig.kind,
            inputs=(source.ref,),
            params=orig.params,
            regularizers=orig.regularizers,
            shares=orig.id,
            out_shape=orig.out_shape,
            layer_name=orig.layer_name,
        )
        self.nodes.append(node)
        self.consumed.add(source.ref)
        out = _Tensor(node_id, orig.out_shape, self.dtype, masked, orig.kind)
        self.tensors.append(out)
        return out

    def _share_into(self, inner: _Graph, t: _Tensor) -> _Tensor | None:
        """Sometimes call one of this model's layers inside the sub-model ``inner`` on ``t``:
        a layer used inside a nested sub-model and outside it."""
        by_ref = {x.ref: x for x in self.tensors}
        options = [
            n
            for n in self.nodes
            if not n.shares
            and n.submodel is None
            and len(n.inputs) == 1
            and REGISTRY[n.kind].shareable
            and REGISTRY[n.kind].arity == "unary"
            and (by_ref[n.inputs[0]].shape, by_ref[n.inputs[0]].dtype) == (t.shape, t.dtype)
            and not by_ref[n.inputs[0]].masked
        ]
        if not options or not _rare(self.draw, 4):
            return None
        orig = options[self.draw(st.integers(0, len(options) - 1))]
        node = LayerSpec(
            id=inner._new_id(),
            kind=orig.kind,
            inputs=(t.ref,),
            params=orig.params,
            regularizers=orig.regularizers,
            shares=OUTER_SHARE + orig.id,
            out_shape=orig.out_shape,
            layer_name=orig.layer_name,
        )
        inner.nodes.append(node)
        inner.consumed.add(t.ref)
        out = _Tensor(node.id, orig.out_shape, self.dtype, False, orig.kind)
        inner.tensors.append(out)
        return out

    def submodel(self, source: _Tensor) -> _Tensor:
        """A nested sequential/functional chain used as one layer."""
        draw = self.draw
        node_id = self._new_id()
        name = self._layer_name(node_id, "sub")
        inner_top = _choice(draw, ("sequential", "functional"))
        inner_allowed = [
            k
            for k in self.allowed
            if k.arity == "unary"
            # a mask does not cross a sub-model's boundary
            and k.name not in ("Masking", "KscMaskZero")
            and k.dtypes != ("int32",)
        ] or [REGISTRY["Dense"]]
        inner = _Graph(draw, inner_allowed, self.dtype, inner_top, prefix=f"{name}_")
        inner.rotation = self.rotation
        inp = InputSpec(f"{name}_in", source.shape, source.dtype)
        t = _Tensor(inp.name, inp.shape, inp.dtype, False, "Input")
        inner.tensors.append(t)
        for _ in range(_skewed_count(draw, 1, 3)):
            cands = inner.candidates(t)
            if not cands:
                break
            t = self._share_into(inner, t) or inner.step(t, inner.pick(t))
        if not inner.nodes:
            t = inner.step(t, REGISTRY["Dense"])
        sub = ModelSpec(
            inputs=(inp,),
            nodes=tuple(inner.nodes),
            outputs=(inner.nodes[-1].id,),
            topology=inner_top,
            dtype=self.dtype,
            seed=0,
            name=name,
        )
        node = LayerSpec(
            id=node_id,
            kind="Submodel",
            inputs=(source.ref,),
            out_shape=inner.nodes[-1].out_shape,
            submodel=sub,
            layer_name=name,
        )
        self.nodes.append(node)
        self.consumed.add(source.ref)
        out = _Tensor(node_id, node.out_shape, self.dtype, False, "Submodel")
        self.tensors.append(out)
        return out


def _allowed_kinds(kinds) -> list[Kind]:
    if kinds is None:
        return list(REGISTRY.values())
    fixed = [k for k in kinds if k in FIXED]
    if fixed:
        raise ValueError(f"{fixed}: fixed kinds (the zoo's specs) are never drawn")
    unknown = [k for k in kinds if k not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown layer kinds: {unknown}")
    return [REGISTRY[k] for k in REGISTRY if k in set(kinds)]


@st.composite
def model_specs(
    draw,
    *,
    max_layers: int = 8,
    kinds: list[str] | tuple[str, ...] | None = None,
    topologies: list[str] | tuple[str, ...] | None = None,
    dtypes: list[str] | tuple[str, ...] | None = None,
    frozen: bool = True,
    compiled: bool | None = False,
    open_dims: bool | None = None,
    mixed_precision: bool | None = None,
) -> ModelSpec:
    """Random valid models.

    ``max_layers`` bounds the drawn steps (adapters for merges may add a few layers).
    ``kinds`` restricts the drawn kinds (Flatten/Dense/Reshape/Activation may still appear
    as adapters). ``topologies`` picks among sequential, functional, subclassed, nested;
    ``dtypes`` among float32, float16, float64 (the first listed is the shrink target).
    ``frozen`` lets some layers and sub-models be ``trainable=False``. ``compiled``: True
    compiles and trains every model (:class:`TrainingSpec`), None some, False none.
    ``open_dims``: True opens every input axis the layers downstream take (``None`` in the
    built model, see :mod:`strategies.opendims`), None some of them in some specs, False none.
    ``mixed_precision``: True gives every float32, uncompiled spec a mixed-precision policy
    (the whole model's or some layers'), None some, False none.
    """
    allowed = _allowed_kinds(kinds)
    tops = tuple(topologies or TOPOLOGIES)
    bad = [t for t in tops if t not in TOPOLOGIES]
    if bad:
        raise ValueError(f"unknown topologies: {bad}")
    if not any(k.in_sequential for k in allowed):
        tops = tuple(t for t in tops if t != "sequential")
        if not tops:
            raise ValueError(f"no kind of {kinds} fits a Sequential model")
    dts = tuple(dtypes or FLOAT_DTYPES)
    if compiled:
        # Keras 3.15 cannot train a float16/float64 model whose layers add losses (it sums
        # them with the float32 loss): compiled models are float32 until mixed precision.
        dts = ("float32",)
    # only dtypes some allowed kind computes in (AveragePooling3D alone: float32)
    dts = tuple(d for d in dts if any(d in k.dtypes for k in allowed)) or dts
    if not any(set(k.dtypes) & {*FLOAT_DTYPES, "int32"} for k in allowed):
        # string inputs only (the preprocessing heads): never nested (a sub-model takes floats)
        tops = tuple(t for t in tops if t != "nested") or ("functional",)
    topology = draw(st.sampled_from(tops))
    dtype = draw(st.sampled_from(dts))
    float_kinds = [k for k in allowed if dtype in k.dtypes]
    int_ok = any("int32" in k.dtypes for k in allowed)
    string_ok = any("string" in k.dtypes for k in allowed) and topology != "nested"
    text_ok = any("text" in k.dtypes for k in allowed) and topology != "nested"
    if not float_kinds and not int_ok and not (string_ok or text_ok):
        raise ValueError("no allowed kind accepts the requested dtypes")
    g = _Graph(draw, allowed, dtype, topology, prefix="")
    if topology == "sequential":
        g.allowed = [k for k in g.allowed if k.in_sequential]

    # inputs
    # one input half of the time, else two or three
    n_inputs = 1 if topology == "sequential" else max(1, draw(st.integers(0, 3)))
    batch_size = draw(st.integers(1, 4)) if draw(st.booleans()) else None
    g.fixed_batch = batch_size is not None
    g.rotation = draw(st.integers(0, 2**16 - 1))
    ranks = sorted({r for k in float_kinds if k.in_sequential or topology != "sequential"
                    for r in k.ranks}) or [1]
    inputs = []
    for j in range(n_inputs):
        only_int = not float_kinds
        spec = draw(
            input_specs(
                name=f"in_{j}",
                ranks=(1, 2) if only_int else tuple(ranks),
                dtypes=(dtype,),
                allow_int=int_ok and (only_int or topology != "nested"),
                batch_size=batch_size,
                allow_string=string_ok or text_ok,
                allow_text=text_ok,
            )
        )
        if only_int and spec.dtype not in ("int32", "string"):
            spec = (
                InputSpec(spec.name, spec.shape, "int32", batch_size, vocab=4)
                if int_ok
                else InputSpec(spec.name, (1,), "string", batch_size, 4, words=2 * text_ok)
            )
        inputs.append(spec)
        label = "text" if spec.words else spec.dtype  # the kinds that take it: dtypes
        g.tensors.append(_Tensor(spec.name, spec.shape, label, False, "Input", spec.vocab))
    dict_inputs = topology in ("functional", "nested") and draw(st.booleans())

    # like st.lists: a "go on" choice before each optional step, so the shrinker can delete
    # a step together with its choices (a count drawn up front would not shrink as well)
    has_sub = False
    for i in range(max(n_inputs, max_layers)):
        if i >= n_inputs and _stop(draw):
            break
        if i < n_inputs:
            source = g.tensors[i]
            if not g.candidates(source):
                continue
        else:
            viable = [t for t in reversed(g.tensors) if g.candidates(t)]
            if topology == "sequential":
                viable = viable[:1] if viable and viable[0] is g.tensors[-1] else []
            if not viable:
                break
            # the latest tensor half of the time (chains), else any earlier one (branches)
            branch = _rare(draw, 4)
            source = viable[draw(st.integers(0, len(viable) - 1)) if branch else 0]
        if (
            topology == "nested"
            and not has_sub
            and source.dtype in FLOAT_DTYPES
            and not source.masked
            and source.kind not in INT64_HEADS
            and draw(st.integers(0, 2)) == 0
        ):
            g.submodel(source)
            has_sub = True
            continue
        if i >= n_inputs and g.try_share(source) is not None:
            continue
        g.step(source, g.pick(source))
    if topology == "nested" and not any(n.submodel is not None for n in g.nodes):
        # the sub-model position fell on an unsuitable tensor: nest at the end instead
        floats = [
            t
            for t in reversed(g.tensors)
            if t.dtype in FLOAT_DTYPES and not t.masked and t.kind not in INT64_HEADS
        ]
        if floats:
            g.submodel(floats[0])
    if not g.nodes and float_kinds:
        raise ValueError("no allowed kind accepts any input: widen `kinds`")

    # every input must reach an output
    for t in list(g.tensors):
        if t.kind == "Input" and t.ref not in g.consumed:
            g.step(t, REGISTRY[_INPUT_CONSUMER.get(t.dtype, "Activation")])

    # outputs: every sink, from a layer called exactly once (names stay unambiguous)
    uses: dict[str, int] = {}
    for n in g.nodes:
        uses[n.layer_name] = uses.get(n.layer_name, 0) + 1
        for inner in n.submodel.nodes if n.submodel is not None else ():
            uses[inner.layer_name] = uses.get(inner.layer_name, 0) + 1
    outputs = []
    for t in list(g.tensors):
        if t.kind == "Input" or t.ref in g.consumed:
            continue
        node = g.nodes[int(t.ref[1:])]
        if node.kind in INT64_HEADS:
            t = g.add(REGISTRY["Dense"], [t], _linear_dense(t))
        elif uses[node.layer_name] > 1:
            t = g.add(REGISTRY["Activation"], [t], {"activation": "linear"})
        outputs.append(t.ref)
    if topology == "sequential":
        outputs = [g.nodes[-1].id]

    seed = draw(st.integers(0, 2**31 - 1))
    # drawn last, so that structure draws (and the corpus they shrink to) stay as they were
    nodes = _freeze_nodes(draw, tuple(g.nodes)) if frozen else tuple(g.nodes)
    train = dtype == "float32" and (compiled if compiled is not None else _rare(draw, 4))
    spec = ModelSpec(
        inputs=tuple(inputs),
        nodes=nodes,
        outputs=tuple(outputs),
        topology=topology,
        dtype=dtype,
        seed=seed,
        dict_inputs=dict_inputs,
        training=draw(training_specs(len(outputs))) if train else None,
    )
    # drawn after everything else, like the frozen parts: a closed spec is drawn as before
    if open_dims or (open_dims is None and _rare(draw, 5)):
        spec = draw_open_dims(draw, spec, every=bool(open_dims))
        if spec.open_inputs():
            event("open dims")
    if mixed_precision or (mixed_precision is None and _rare(draw, 8)):
        spec = _draw_mixed(draw, spec)
    for k in sorted(set(spec.kinds())):
        event(f"kind={k}")
    return spec


# Kinds that compute in bfloat16 on TensorFlow's CPU kernels (a mixed_bfloat16 layer); for
# mixed_float16 a kind must list float16 among its dtypes.
_BFLOAT16_KINDS = frozenset(
    {"Dense", "Activation", "ReLU", "Dropout", "Identity", "Add", "Multiply", "Rescaling",
     "LayerNormalization", "BatchNormalization", "Flatten", "Reshape", "Concatenate"}
)  # fmt: skip


def _mixed_ok(kind_name: str, policy: str) -> bool:
    kind = REGISTRY.get(kind_name)
    if kind is None:
        return False
    if policy == "mixed_bfloat16":
        return kind_name in _BFLOAT16_KINDS
    return "float16" in kind.dtypes or kind_name == "Embedding"


def _mix_nodes(draw, spec: ModelSpec, policy: str) -> ModelSpec:
    nodes, chosen = [], {}
    for n in spec.nodes:
        if n.submodel is not None:
            n = replace(n, submodel=_mix_nodes(draw, n.submodel, policy))
        elif n.shares:  # the same layer as its original: the same policy
            n = replace(n, policy=chosen.get(n.shares, ""))
        elif _mixed_ok(n.kind, policy) and draw(st.booleans()):
            n = replace(n, policy=policy)
            chosen[n.id] = policy
        nodes.append(n)
    return replace(spec, nodes=tuple(nodes))


def _draw_mixed(draw, spec: ModelSpec) -> ModelSpec:
    """A mixed-precision policy for the whole model or for some layers (float32 models only:
    variables stay float32; uncompiled only, see ``model_specs``' ``compiled``)."""
    if spec.dtype != "float32" or spec.training is not None:
        return spec
    policy = MIXED_POLICIES[draw(st.integers(0, 1))]
    if draw(st.booleans()) and all(_mixed_ok(k, policy) for k in spec.kinds()):
        spec = replace(spec, mixed_precision=policy)
    else:
        spec = _mix_nodes(draw, spec, policy)
    if spec.mixed_layers():
        event(f"mixed precision {policy}")
    return spec


def _linear_dense(t) -> dict:
    return {"units": t.shape[-1], "activation": "linear", "use_bias": True}


# what reads an input no drawn step took
_INPUT_CONSUMER = {"int32": "Embedding", "string": "StringLookup", "text": "TextVectorization"}


def _vocab_of(spec: ModelSpec, name: str) -> int | None:
    for i in spec.inputs:
        if i.name == name:
            return i.vocab
    return None


def _batch(spec: ModelSpec, draw) -> int:
    for i in spec.inputs:
        if i.batch_size is not None:
            return i.batch_size
    return draw(st.integers(1, 4))


OPEN_EXTRA = 3  # input_data draws an open axis' length up to its probe length + this


@st.composite
def input_data(
    draw, spec: ModelSpec, lengths: dict[tuple[str, int], int] | None = None
) -> dict[str, Any]:
    """Arrays for every input, keyed by input name, one shared batch size 1-4.

    Floats lie in [-2, 2] (safe for float16), sometimes with whole timesteps at 0 so that
    Masking has something to mask; integer ids lie in ``[0, vocab)``; strings are tokens
    ``w0 .. w{vocab-1}`` (or sentences of them), some in the vocabulary a layer holds (a
    strict subset of them), some not. An open axis gets its length from ``lengths``
    (``(input name, axis) -> length``, see :func:`strategies.opendims.open_lengths`), else
    one drawn from its probe length to ``OPEN_EXTRA`` longer (shrinking to the probe).
    """
    import numpy as np

    batch = _batch(spec, draw)
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from((1.0, 2.0, 0.0)))
    zero_steps = draw(st.booleans())
    rng = np.random.default_rng(seed)
    sizes = dict(lengths or {})
    for name, axis in open_keys(spec):
        if (name, axis) not in sizes:
            probe = next(i.shape[axis] for i in spec.inputs if i.name == name)
            sizes[name, axis] = probe + draw(st.integers(0, OPEN_EXTRA))
    out: dict[str, Any] = {}
    for i in spec.inputs:
        shape = (batch,) + tuple(sizes.get((i.name, a), d) for a, d in enumerate(i.shape))
        if i.dtype == "string":
            arr = _strings(rng, i, shape)
        elif i.dtype.startswith("int"):
            arr = rng.integers(0, i.vocab or 2, size=shape).astype(i.dtype)
        else:
            arr = (rng.uniform(-1.0, 1.0, size=shape) * scale).astype(i.dtype)
            if zero_steps and len(i.shape) >= 2:
                arr[:, 0] = 0
        out[i.name] = arr
    return out


def _strings(rng, i: InputSpec, shape: tuple[int, ...]):
    """Tokens ``w0 .. w{vocab-1}``, or sentences of 1 to ``words`` of them."""
    import numpy as np

    ids = rng.integers(0, i.vocab or 2, size=shape + (max(i.words, 1),))
    lengths = rng.integers(1, max(i.words, 1) + 1, size=shape)
    flat = [
        " ".join(f"w{t}" for t in row[:n])
        for row, n in zip(ids.reshape(-1, ids.shape[-1]), lengths.reshape(-1), strict=True)
    ]
    return np.array(flat, dtype=str).reshape(shape)


def training_batch(spec: ModelSpec, seed: int) -> tuple[dict[str, Any], list[Any]]:
    """Inputs (as ``input_data`` gives them) and one target per output for a training step,
    from ``seed``; the batch size is the spec's fixed one, else 4."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = next((i.batch_size for i in spec.inputs if i.batch_size is not None), 4)
    data: dict[str, Any] = {}
    for i in spec.inputs:
        shape = (batch,) + tuple(i.shape)
        if i.dtype == "string":
            data[i.name] = _strings(rng, i, shape)
        elif i.dtype.startswith("int"):
            data[i.name] = rng.integers(0, i.vocab or 2, size=shape).astype(i.dtype)
        else:
            data[i.name] = rng.uniform(-1.0, 1.0, size=shape).astype(i.dtype)
    targets = [
        rng.uniform(-1.0, 1.0, size=(batch,) + tuple(spec.node(o).out_shape)).astype(spec.dtype)
        for o in spec.outputs
    ]
    return data, targets


def call_inputs(spec: ModelSpec, data: dict[str, Any]) -> Any:
    """What ``model(...)`` of the built model expects: one array, a list, or a dict."""
    if spec.dict_inputs:
        return {i.name: data[i.name] for i in spec.inputs}
    if len(spec.inputs) == 1:
        return data[spec.inputs[0].name]
    return [data[i.name] for i in spec.inputs]
