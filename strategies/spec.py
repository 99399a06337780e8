"""Random Keras models as plain data.

A :class:`ModelSpec` is a frozen, hashable, JSON-able description of a model: its inputs, a DAG
of layer nodes, its outputs, its topology and a weight seed. ``to_json``/``from_json``
round-trip exactly. Every layer, input and model gets an explicit deterministic name from the
spec, so the same spec builds the same names in any process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TOPOLOGIES = ("sequential", "functional", "subclassed", "nested")
OUTER_SHARE = "outer:"  # LayerSpec.shares prefix: a node of the model holding a sub-model
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")  # variables float32, compute lower

_DTYPE_SHORT = {
    "float32": "f32",
    "float16": "f16",
    "float64": "f64",
    "bfloat16": "bf16",
    "int32": "i32",
    "int64": "i64",
}


def _freeze(value: Any) -> Any:
    """Lists become tuples, recursively (JSON gives lists back)."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def freeze_params(params: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """A params dict as a tuple of sorted ``(key, value)`` pairs, values frozen."""
    return tuple(sorted((str(k), _freeze(v)) for k, v in (params or {}).items()))


def _short_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return "(" + ",".join(_short_value(x) for x in v) + ")"
    return repr(v) if isinstance(v, str) else str(v)


def _short_shape(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"


def _open_shape(shape: tuple[int, ...], open_axes: tuple[int, ...]) -> tuple[int | None, ...]:
    return tuple(None if i in open_axes else d for i, d in enumerate(shape))


@dataclass(frozen=True)
class InputSpec:
    """One model input: shape without the batch axis, dtype, optional fixed batch size.

    ``vocab`` is set for integer inputs (ids in ``[0, vocab)``, fed to an Embedding or a
    preprocessing head) and for ``dtype="string"`` ones (tokens ``w0 .. w{vocab-1}``);
    ``words`` > 0 makes each string a sentence of 1 to ``words`` tokens (TextVectorization).
    ``open_axes`` (indices into ``shape``) are ``None`` in the built model: ``shape`` then
    holds a probe length there (the catalog's shape rules compute on it; ``input_data``
    draws that length or longer).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    batch_size: int | None = None
    vocab: int | None = None
    open_axes: tuple[int, ...] = ()
    words: int = 0

    @property
    def model_shape(self) -> tuple[int | None, ...]:
        """The shape the model's ``Input`` gets: ``None`` on open axes."""
        return _open_shape(self.shape, self.open_axes)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "batch_size": self.batch_size,
            "vocab": self.vocab,
        }
        if self.open_axes:  # only when set: specs written before the field read the same
            d["open_axes"] = list(self.open_axes)
        if self.words:  # only when set: specs written before the field read the same
            d["words"] = self.words
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        return cls(
            name=d["name"],
            shape=tuple(d["shape"]),
            dtype=d["dtype"],
            batch_size=d.get("batch_size"),
            vocab=d.get("vocab"),
            open_axes=tuple(d.get("open_axes", ())),
            words=d.get("words", 0),
        )

    def __repr__(self) -> str:
        extra = ""
        if self.open_axes:
            extra += f",open={_short_shape(self.open_axes)}"
        if self.batch_size is not None:
            extra += f",b={self.batch_size}"
        if self.vocab is not None:
            extra += f",vocab={self.vocab}"
        if self.words:
            extra += f",words={self.words}"
        dtype = _DTYPE_SHORT.get(self.dtype, self.dtype)
        return f"{self.name}:{_short_shape(self.shape)}{dtype}{extra}"


@dataclass(frozen=True)
class RegularizerSpec:
    """A regularizer: ``kind`` in l1, l2, l1l2, orthogonal, ksc_scaled_l2; params sorted pairs."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": {k: _thaw(v) for k, v in self.params}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegularizerSpec:
        return cls(kind=d["kind"], params=freeze_params(d["params"]))

    def __repr__(self) -> str:
        inner = ",".join(f"{k}={_short_value(v)}" for k, v in self.params)
        return f"{self.kind}({inner})"


@dataclass(frozen=True)
class TrainingSpec:
    """How the model is compiled and trained before it is saved.

    ``optimizer`` in adam, sgd, rmsprop (``momentum`` for sgd; ``decay_steps`` > 0 puts the
    learning rate on an ExponentialDecay schedule); one loss and loss weight per output;
    ``metrics`` per output (built-in names, ``ksc_mean_abs`` for the registered custom
    metric); ``steps`` ``train_on_batch`` steps on data drawn from ``seed``.
    """

    optimizer: str
    learning_rate: float
    losses: tuple[str, ...]
    loss_weights: tuple[float, ...]
    metrics: tuple[tuple[str, ...], ...]
    steps: int = 1
    momentum: float = 0.0
    decay_steps: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "losses": list(self.losses),
            "loss_weights": list(self.loss_weights),
            "metrics": [list(m) for m in self.metrics],
            "steps": self.steps,
            "momentum": self.momentum,
            "decay_steps": self.decay_steps,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingSpec:
        return cls(
            optimizer=d["optimizer"],
            learning_rate=d["learning_rate"],
            losses=tuple(d["losses"]),
            loss_weights=tuple(d["loss_weights"]),
            metrics=tuple(tuple(m) for m in d["metrics"]),
            steps=d.get("steps", 1),
            momentum=d.get("momentum", 0.0),
            decay_steps=d.get("decay_steps", 0),
            seed=d.get("seed", 0),
        )

    def __repr__(self) -> str:
        opt = f"{self.optimizer}(lr={self.learning_rate:.3g}"
        if self.momentum:
            opt += f",momentum={self.momentum:.3g}"
        if self.decay_steps:
            opt += f",decay={self.decay_steps}"
        losses = ",".join(f"{loss}*{w:.3g}" for loss, w in zip(self.losses, self.loss_weights))
        metrics = ",".join("+".join(m) or "-" for m in self.metrics)
        return f"{opt}) loss={losses} metrics={metrics} steps={self.steps}"


FROZEN = ("before", "after")  # trainable=False given to the constructor, or set once built


@dataclass(frozen=True)
class LayerSpec:
    """One node of the DAG.

    ``inputs`` names earlier tensors: model inputs (``in_0``) or earlier nodes (``n3``).
    ``shares`` names an earlier node whose layer *instance* this node calls again (shared
    layer); ``kind``/``params``/``regularizers`` then repeat that node's. In a sub-model,
    ``outer:n2`` names node ``n2`` of the model holding it (a layer used inside the sub-model
    and outside it). ``submodel`` holds
    the inner spec of a nested sub-model node (kind ``Submodel``). ``out_shape`` is the shape
    the catalog's shape rule predicts (without batch); ``build_model`` checks it.
    ``frozen`` is "before" or "after" for a layer (or sub-model) made ``trainable=False``
    at construction or once the model is built; "" for a trainable one. ``open_axes``:
    the axes of ``out_shape`` that are ``None`` in the built model (they follow an open input
    axis; ``out_shape`` holds their length at the inputs' probe lengths).
    """

    id: str
    kind: str
    inputs: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()
    regularizers: tuple[tuple[str, RegularizerSpec], ...] = ()
    shares: str | None = None
    out_shape: tuple[int, ...] = ()
    submodel: ModelSpec | None = None
    layer_name: str = ""
    frozen: str = ""
    open_axes: tuple[int, ...] = ()
    policy: str = ""  # a mixed-precision policy of this layer alone (MIXED_POLICIES)

    @property
    def model_shape(self) -> tuple[int | None, ...]:
        """The output shape of the built model's layer: ``None`` on open axes."""
        return _open_shape(self.out_shape, self.open_axes)

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "params": {k: _thaw(v) for k, v in self.params},
            "regularizers": [[slot, r.to_dict()] for slot, r in self.regularizers],
            "shares": self.shares,
            "out_shape": list(self.out_shape),
            "submodel": None if self.submodel is None else self.submodel.to_dict(),
            "layer_name": self.layer_name,
        }
        if self.frozen:  # only when set: specs written before the field read the same
            d["frozen"] = self.frozen
        if self.open_axes:
            d["open_axes"] = list(self.open_axes)
        if self.policy:
            d["policy"] = self.policy
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerSpec:
        return cls(
            id=d["id"],
            kind=d["kind"],
            inputs=tuple(d["inputs"]),
            params=freeze_params(d["params"]),
            regularizers=tuple(
                (slot, RegularizerSpec.from_dict(r)) for slot, r in d["regularizers"]
            ),
            shares=d.get("shares"),
            out_shape=tuple(d["out_shape"]),
            submodel=None if d.get("submodel") is None else ModelSpec.from_dict(d["submodel"]),
            layer_name=d.get("layer_name", ""),
            frozen=d.get("frozen", ""),
            open_axes=tuple(d.get("open_axes", ())),
            policy=d.get("policy", ""),
        )

    def __repr__(self) -> str:
        if self.submodel is not None:
            body = f"Submodel[{self.submodel!r}]"
        else:
            args = ",".join(f"{k}={_short_value(v)}" for k, v in self.params)
            body = f"{self.kind}({args})"
        if self.regularizers:
            body += "{" + ",".join(f"{s}:{r!r}" for s, r in self.regularizers) + "}"
        if self.shares:
            body += f"=shares:{self.shares}"
        if self.frozen:
            body += f"!frozen-{self.frozen}"
        if self.policy:
            body += f"!{self.policy}"
        src = ",".join(self.inputs)
        shape = self.model_shape if self.open_axes else self.out_shape
        return f"{self.id}={body}<-{src}->{_short_shape(shape)}"


@dataclass(frozen=True)
class ModelSpec:
    """A whole model: inputs, DAG of nodes (topologically ordered), outputs, topology, seed."""

    inputs: tuple[InputSpec, ...]
    nodes: tuple[LayerSpec, ...]
    outputs: tuple[str, ...]
    topology: str = "functional"
    dtype: str = "float32"
    seed: int = 0
    dict_inputs: bool = False
    name: str = "model"
    extra: tuple[tuple[str, Any], ...] = field(default=())
    training: TrainingSpec | None = None
    # a mixed-precision policy for every layer (MIXED_POLICIES; the model's dtype float32)
    mixed_precision: str = ""

    # --- lookups -------------------------------------------------------------------------
    def node(self, node_id: str) -> LayerSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def output_names(self) -> tuple[str, ...]:
        """Names of the output layers, in output order (functional serving keys in tf_keras)."""
        return tuple(self.node(o).layer_name for o in self.outputs)

    def kinds(self) -> tuple[str, ...]:
        """Every layer kind in the model, nested sub-models included (with repeats)."""
        out: list[str] = []
        for n in self.nodes:
            if n.submodel is not None:
                out.extend(n.submodel.kinds())
            else:
                out.append(n.kind)
        return tuple(out)

    def num_layers(self) -> int:
        return len(self.kinds())

    def frozen_nodes(self) -> tuple[LayerSpec, ...]:
        """Nodes made non-trainable, nested sub-models' included."""
        out: list[LayerSpec] = []
        for n in self.nodes:
            if n.frozen:
                out.append(n)
            if n.submodel is not None:
                out.extend(n.submodel.frozen_nodes())
        return tuple(out)

    def mixed_layers(self) -> tuple[LayerSpec, ...]:
        """Nodes computing in a mixed-precision policy, nested sub-models' included."""
        out: list[LayerSpec] = []
        for n in self.nodes:
            if n.submodel is not None:
                out.extend(n.submodel.mixed_layers())
            elif n.policy or self.mixed_precision:
                out.append(n)
        return tuple(out)

    def open_inputs(self) -> tuple[InputSpec, ...]:
        """Inputs with open axes (the root's; a nested sub-model's follow from them)."""
        return tuple(i for i in self.inputs if i.open_axes)

    # --- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {
            "inputs": [i.to_dict() for i in self.inputs],
            "nodes": [n.to_dict() for n in self.nodes],
            "outputs": list(self.outputs),
            "topology": self.topology,
            "dtype": self.dtype,
            "seed": self.seed,
            "dict_inputs": self.dict_inputs,
            "name": self.name,
            "extra": {k: _thaw(v) for k, v in self.extra},
        }
        if self.training is not None:  # only when set, like LayerSpec.frozen
            d["training"] = self.training.to_dict()
        if self.mixed_precision:
            d["mixed_precision"] = self.mixed_precision
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            inputs=tuple(InputSpec.from_dict(i) for i in d["inputs"]),
            nodes=tuple(LayerSpec.from_dict(n) for n in d["nodes"]),
            outputs=tuple(d["outputs"]),
            topology=d["topology"],
            dtype=d["dtype"],
            seed=d["seed"],
            dict_inputs=d["dict_inputs"],
            name=d.get("name", "model"),
            extra=freeze_params(d.get("extra", {})),
            training=None if d.get("training") is None else TrainingSpec.from_dict(d["training"]),
            mixed_precision=d.get("mixed_precision", ""),
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        flags = [self.topology, self.dtype, f"seed={self.seed}"]
        if self.dict_inputs:
            flags.append("dict")
        if self.training is not None:
            flags.append(f"compiled {self.training!r}")
        if self.mixed_precision:
            flags.append(self.mixed_precision)
        ins = " ".join(repr(i) for i in self.inputs)
        nodes = "; ".join(repr(n) for n in self.nodes)
        return f"ModelSpec<{' '.join(flags)} | {ins} | {nodes} | out={','.join(self.outputs)}>"


def from_json(text: str) -> ModelSpec:
    return ModelSpec.from_json(text)
