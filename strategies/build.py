"""Build a :class:`ModelSpec` with Keras 3 (TensorFlow backend) or tf_keras.

Weights are set after building from ``spec.seed`` with numpy: every variable's generator is
keyed by ``crc32(layer name / variable short name # occurrence)``, never by Python ``hash`` or
by global variable order, so the same spec gives bitwise-identical weights in both frameworks
and in every process. The catalog's shape rule is checked against every built layer's real
output shape; a disagreement raises :class:`ShapeRuleError`.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np

from .catalog import FIXED, REGISTRY, custom_objects, lookup
from .catalog.metrics import custom_metrics
from .spec import OUTER_SHARE, LayerSpec, ModelSpec, RegularizerSpec, TrainingSpec

# Keras 3 reads its backend when first imported: these strategies build on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

FRAMEWORKS = ("keras", "tf_keras")


class ShapeRuleError(AssertionError):
    """A catalog shape rule disagrees with the shape Keras built."""


def framework_module(framework: str):
    if framework == "keras":
        import keras

        return keras
    if framework == "tf_keras":
        try:
            import tf_keras
        except ImportError:
            # TensorFlow 2.12-2.15 has no tf_keras package: its tf.keras is the same Keras 2
            # (the legacy corpus builds specs there), from 2.16 on tf.keras is Keras 3.
            import tensorflow as tf

            if tuple(int(x) for x in tf.__version__.split(".")[:2]) >= (2, 16):
                raise
            return tf.keras
        return tf_keras
    raise ValueError(f"framework must be one of {FRAMEWORKS}, not {framework!r}")


def make_regularizer(K, reg: RegularizerSpec):
    p = reg.param_dict
    if reg.kind == "l1":
        return K.regularizers.L1(l1=p["l1"])
    if reg.kind == "l2":
        return K.regularizers.L2(l2=p["l2"])
    if reg.kind == "l1l2":
        return K.regularizers.L1L2(l1=p["l1"], l2=p["l2"])
    if reg.kind == "orthogonal":
        return K.regularizers.OrthogonalRegularizer(factor=p["factor"], mode=p["mode"])
    if reg.kind == "ksc_scaled_l2":
        return custom_objects(K)["KscScaledL2"](factor=p["factor"])
    raise ValueError(f"unknown regularizer kind {reg.kind!r}")


def dtype_policy(K, dtype: str, policy: str = ""):
    """What a layer's ``dtype=`` gets: the spec's dtype, or a mixed-precision policy (variables
    float32, compute in float16/bfloat16) by name, which both frameworks take: Keras 3's
    automatic ``get_config`` of a custom layer refuses a ``DTypePolicy`` object argument."""
    if not policy:
        return dtype
    K.mixed_precision  # noqa: B018 (both frameworks have it: the name is a policy there)
    return policy


def make_layer(K, node: LayerSpec, dtype: str, mixed: str = ""):
    kind = lookup(node.kind)
    policy = node.policy or mixed
    kw: dict[str, Any] = {"name": node.layer_name, "dtype": dtype_policy(K, dtype, policy)}
    if node.frozen == "before":
        kw["trainable"] = False
    for slot, reg in node.regularizers:
        kw[slot] = make_regularizer(K, reg)
    params = {k: (list(v) if k == "target_shape" else v) for k, v in node.params}
    return kind.make(K, params, kw)


def _shape(t) -> tuple:
    shape = t.shape
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    return tuple(None if d is None else int(d) for d in shape)


def _check(node: LayerSpec, tensor, where: str) -> None:
    got = _shape(tensor)[1:]
    want = node.model_shape
    # a subclassed model is built by an eager call at the probe lengths
    if where == "subclassed" and node.open_axes and got == tuple(node.out_shape):
        return
    if got != want:
        raise ShapeRuleError(
            f"{where}: node {node.id} ({node.kind} {dict(node.params)}) built output shape "
            f"{got}, the catalog's shape rule says {want}"
        )


def _apply(layer, node: LayerSpec, args: list):
    kind = REGISTRY.get(node.kind) or FIXED.get(node.kind)
    if kind is None or kind.arity == "unary":
        return layer(args[0], **(kind.call_kwargs(node.param_dict) if kind else {}))
    if kind.arity == "merge":
        return layer(list(args))
    if node.kind == "MultiHeadAttention":
        return layer(args[0], args[1])
    return layer([args[0], args[1]])


def _make_layers(K, spec: ModelSpec, mixed: str = "", outer=None) -> dict[str, Any]:
    """One layer object per node; shared nodes reuse the original's (``outer:`` ones, in a
    sub-model, the model's holding it); sub-models built."""
    layers: dict[str, Any] = {}
    mixed = spec.mixed_precision or mixed  # a whole model's policy reaches its sub-models
    for node in spec.nodes:
        if node.shares and node.shares.startswith(OUTER_SHARE):
            layers[node.id] = outer[node.shares[len(OUTER_SHARE) :]]
        elif node.shares:
            layers[node.id] = layers[node.shares]
        elif node.submodel is not None:
            # "before": frozen as it is made, before the model holding it is built
            layers[node.id] = _build_graph(
                K, node.submodel, trainable=node.frozen != "before", mixed=mixed, outer=layers
            )
        else:
            layers[node.id] = make_layer(K, node, spec.dtype, mixed)
    return layers


def _inputs(K, spec: ModelSpec) -> list:
    return [
        K.Input(shape=i.model_shape, dtype=i.dtype, batch_size=i.batch_size, name=i.name)
        for i in spec.inputs
    ]


def _build_graph(K, spec: ModelSpec, trainable: bool = True, mixed: str = "", outer=None):
    """Sequential or functional model (no weights set yet)."""
    layers = _make_layers(K, spec, mixed, outer)
    ins = _inputs(K, spec)
    if spec.topology == "sequential":
        model = K.Sequential([ins[0]] + [layers[n.id] for n in spec.nodes], name=spec.name)
        if not trainable:  # setting True would also unfreeze the layers frozen before
            model.trainable = False
        for n in spec.nodes:
            _check(n, layers[n.id].output, "Sequential")
        return model
    env = {i.name: t for i, t in zip(spec.inputs, ins, strict=True)}
    for n in spec.nodes:
        out = _apply(layers[n.id], n, [env[r] for r in n.inputs])
        _check(n, out, "functional")
        env[n.id] = out
    outs = [env[o] for o in spec.outputs]
    model_in = {i.name: t for i, t in zip(spec.inputs, ins, strict=True)} if spec.dict_inputs \
        else (ins[0] if len(ins) == 1 else ins)
    model = K.Model(inputs=model_in, outputs=outs[0] if len(outs) == 1 else outs, name=spec.name)
    if not trainable:
        model.trainable = False
    return model


def _build_subclassed(K, spec: ModelSpec):
    layers = _make_layers(K, spec)
    names = [i.name for i in spec.inputs]

    class SpecModel(K.Model):
        def __init__(self):
            # The model's own dtype is the spec's: Keras casts float inputs to it.
            super().__init__(name=spec.name, dtype=spec.dtype)
            seen = set()
            for n in spec.nodes:
                layer = layers[n.id]
                if id(layer) not in seen:
                    seen.add(id(layer))
                    setattr(self, n.layer_name, layer)
            self.check_shapes = True
            # Keras records the shapes a subclassed model was built with, not the dtypes it
            # was called with: declare both, so savers can trace the true input signature.
            specs = [
                K.layers.InputSpec(shape=(None, *i.model_shape), dtype=i.dtype, name=i.name)
                for i in spec.inputs
            ]
            self.input_spec = specs[0] if len(specs) == 1 and not spec.dict_inputs else specs

        def call(self, inputs, training=None):
            if isinstance(inputs, dict):
                env = {k: inputs[k] for k in names}
            elif isinstance(inputs, list | tuple):
                # No zip(strict=True): TensorFlow 2.12's autograph swaps in a zip without it.
                if len(inputs) != len(names):
                    raise ValueError(f"{len(inputs)} inputs for the {len(names)} of {names}")
                env = dict(zip(names, inputs))  # noqa: B905
            else:
                env = {names[0]: inputs}
            for n in spec.nodes:
                layer = getattr(self, n.layer_name)  # shared nodes name the same layer
                out = _apply(layer, n, [env[r] for r in n.inputs])
                if self.check_shapes:
                    _check(n, out, "subclassed")
                env[n.id] = out
            outs = [env[o] for o in spec.outputs]
            return outs[0] if len(outs) == 1 else outs

    model = SpecModel()
    probe = {
        i.name: np.full((i.batch_size or 1,) + tuple(i.shape), "w0")
        if i.dtype == "string"
        else np.zeros((i.batch_size or 1,) + tuple(i.shape), dtype=i.dtype)
        for i in spec.inputs
    }
    from .generate import call_inputs

    model(call_inputs(spec, probe))
    # The shape rules are checked on the build; a saver may trace the call with shapes it
    # relaxed (tf_keras' training placeholder loses static shapes), which is its business.
    model.check_shapes = False
    return model


# --- weights -------------------------------------------------------------------------------


def _leaf_layers(model) -> list:
    """Layers that own variables directly, each once, in a stable (graph) order; sub-models
    are walked into, wrappers (Bidirectional, TimeDistributed) count as one layer."""
    out, seen = [], set()

    def is_model(layer) -> bool:
        return any(c.__name__ == "Model" for c in type(layer).__mro__)

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if is_model(layer):
            for child in layer.layers:
                visit(child)
        else:
            out.append(layer)

    visit(model)
    return out


def _short(var) -> str:
    name = getattr(var, "path", None) or var.name
    name = name.split("/")[-1]
    return name.split(":")[0]


def _variables(layer) -> list:
    seen, out = set(), []
    for v in layer.weights:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def weight_keys(model) -> list[tuple[str, Any]]:
    """(stable key, variable) for every floating-point variable of the model."""
    items = []
    for layer in _leaf_layers(model):
        counts: dict[str, int] = {}
        for v in _variables(layer):
            if not hasattr(v, "dtype"):  # tf_keras' lookup layers list a VocabWeightHandler
                continue
            dtype = str(getattr(v.dtype, "name", v.dtype))
            # an adapt's scratch state (tf_keras' Discretization summary) has no fixed shape
            if "float" not in dtype or None in tuple(v.shape):
                continue
            short = _short(v)
            if short == "kernel" and type(layer).__name__.startswith("DepthwiseConv"):
                short = "depthwise_kernel"  # Keras 3 calls it "kernel", tf_keras does not
            i = counts.get(short, 0)
            counts[short] = i + 1
            items.append((f"{layer.name}/{short}#{i}", v))
    return items


def _values(key: str, short: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(key.encode())])
    n = int(np.prod(shape)) if shape else 1
    if short in ("moving_variance", "variance"):  # "variance": Normalization (EfficientNet)
        vals = rng.uniform(0.5, 1.5, n)
    elif short in ("gamma",):
        vals = rng.uniform(0.8, 1.2, n)
    elif short in ("scale",):  # KscWeightLoss
        vals = rng.uniform(0.5, 1.5, n)
    elif short in ("moving_mean", "mean", "beta", "offset", "alpha"):
        vals = rng.uniform(-0.2, 0.2, n)
    elif "bias" in short:
        vals = rng.uniform(-0.1, 0.1, n)
    elif short == "embeddings":
        vals = rng.uniform(-0.5, 0.5, n)
    elif len(shape) >= 2:
        fan_in = int(np.prod(shape[:-1]))
        if "depthwise" in short:
            fan_in = int(np.prod(shape[:-2]))
        limit = float(np.sqrt(3.0 / max(fan_in, 1)))
        vals = rng.uniform(-limit, limit, n)
    else:
        vals = rng.uniform(-0.5, 0.5, n)
    return vals.reshape(shape)


def set_weights(model, seed: int, value_dtype: str = "float32") -> dict[str, np.ndarray]:
    """Assign every float variable from ``seed``; returns the arrays assigned, by key.

    Values are rounded to ``value_dtype`` (the spec's dtype) first, then stored in the
    variable's own dtype: tf_keras keeps float32 BatchNormalization variables in a float16
    model where Keras 3 keeps float16 ones, and both then hold the same numbers.
    """
    assigned = {}
    for key, v in weight_keys(model):
        shape = tuple(int(d) for d in v.shape)
        dtype = str(getattr(v.dtype, "name", v.dtype))
        short = key.split("/")[-1].split("#")[0]
        arr = _values(key, short, shape, seed).astype(value_dtype).astype(dtype)
        v.assign(arr)
        assigned[key] = arr
    return assigned


def weight_arrays(model) -> dict[str, np.ndarray]:
    """Current values of every float variable, by stable key."""
    return {key: np.asarray(v.numpy()) for key, v in weight_keys(model)}


def custom_objects_for(framework: str) -> dict[str, Any]:
    """The ``ksc`` custom classes of ``framework`` by class name (for ``custom_objects=``)."""
    return dict(custom_objects(framework_module(framework)))


def _freeze_after_build(model, spec: ModelSpec) -> None:
    """``trainable=False`` on the layers and sub-models the spec freezes once built."""
    by_name = {}

    def visit(layer):
        for child in getattr(layer, "layers", ()):
            by_name.setdefault(child.name, child)
            visit(child)

    visit(model)
    for node in spec.frozen_nodes():
        if node.frozen == "after":
            by_name[node.layer_name].trainable = False


def make_optimizer(K, training: TrainingSpec):
    rate: Any = training.learning_rate
    if training.decay_steps:
        rate = K.optimizers.schedules.ExponentialDecay(
            rate, decay_steps=training.decay_steps, decay_rate=0.5
        )
    if training.optimizer == "adam":
        return K.optimizers.Adam(learning_rate=rate)
    if training.optimizer == "sgd":
        return K.optimizers.SGD(learning_rate=rate, momentum=training.momentum)
    if training.optimizer == "rmsprop":
        return K.optimizers.RMSprop(learning_rate=rate)
    raise ValueError(f"unknown optimizer {training.optimizer!r}")


def compile_model(K, model, spec: ModelSpec) -> None:
    """Compile as ``spec.training`` says: one loss, loss weight and metric list per output."""
    training = spec.training
    metrics = custom_metrics(K)
    per_output = [[metrics[m]() if m in metrics else m for m in ms] for ms in training.metrics]
    single = len(spec.outputs) == 1
    model.compile(
        optimizer=make_optimizer(K, training),
        loss=training.losses[0] if single else list(training.losses),
        loss_weights=list(training.loss_weights),
        metrics=per_output[0] if single else per_output,
    )


def train_steps(model, spec: ModelSpec) -> None:
    """``spec.training.steps`` ``train_on_batch`` steps, each on its own seeded batch."""
    from .generate import call_inputs, training_batch

    for step in range(spec.training.steps):
        data, targets = training_batch(spec, spec.training.seed + step)
        model.train_on_batch(call_inputs(spec, data), targets[0] if len(targets) == 1 else targets)


def build_model(spec: ModelSpec, framework: str = "keras"):
    """The built model, weights set from ``spec.seed``, frozen, compiled and trained as the
    spec says; raises ShapeRuleError on a mismatch."""
    K = framework_module(framework)
    custom_objects(K)
    if spec.topology == "subclassed":
        model = _build_subclassed(K, spec)
    else:
        model = _build_graph(K, spec)
    set_weights(model, spec.seed, spec.dtype)
    _freeze_after_build(model, spec)
    if spec.training is not None:
        compile_model(K, model, spec)
        train_steps(model, spec)
    return model
