"""The worker of an out-of-process implementation: the protocol of docs/out-of-process.md.

Runs INSIDE the implementation's own interpreter (another virtual environment, another
TensorFlow), started by the suite (``conformance/remote.py``) as

    python worker.py TARGET

where TARGET is a worker-side built-in name (``reference``, ``tf_keras``, ``legacy_keras``)
or ``package.module:Attr`` (an adapter class or instance with ``save`` and ``load``, as
``conformance.Implementation`` describes). It imports no ``conformance`` module: only
``strategies`` (from ``PYTHONPATH``) to build the specs it is sent, and the implementation.

It reads one JSON request per line on the stdin and writes one JSON reply per line on the
stdout it was started with; everything else the process prints (Python's ``print``,
TensorFlow's C++ logs) goes to stderr, so that nothing but replies reaches the suite, and the
implementation's own stdin is empty.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import platform
import sys
import traceback
import warnings
from collections import OrderedDict

PROTOCOL = 1
# Models kept for later requests (the suite's case cache holds 32 cases; a model dropped
# here is rebuilt from its spec by the suite, so this bounds memory, not correctness).
KEPT_MODELS = 48

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Started as a script, Python puts this file's folder (the suite's package) first on the
# path: the worker must not import the suite's modules, even by accident.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402

REPLIES = None  # the stream replies go to (a planted adapter of the tests writes garbage there)


class ProtocolError(ValueError):
    """A request that does not follow the protocol."""


# --- the implementations this worker knows by name -----------------------------------------


def _keras2():
    """(module, package): tf_keras where installed, else TensorFlow 2.12-2.15's tf.keras."""
    try:
        import tf_keras

        return tf_keras, "tf_keras"
    except ImportError:
        import tensorflow as tf

        if tuple(int(x) for x in tf.__version__.split(".")[:2]) >= (2, 16):
            raise ImportError(
                "this environment has neither tf_keras nor a Keras 2 tf.keras (TensorFlow "
                f"{tf.__version__}'s tf.keras is Keras 3)"
            ) from None
        return tf.keras, "tf.keras"


class Keras2Saver:
    """This environment's own Keras 2 saver and loader (``save_format="tf"``): tf_keras where
    installed (TensorFlow 2.16+), else tf.keras (2.12-2.15)."""

    framework = "tf_keras"

    def __init__(self, name="legacy_keras", require_tf_keras=False):
        self.name = name
        self.require_tf_keras = require_tf_keras

    def _module(self):
        K, package = _keras2()
        if self.require_tf_keras and package != "tf_keras":
            raise ImportError("tf_keras is not installed here (use legacy_keras for tf.keras)")
        return K

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        model.save(
            path,
            overwrite=overwrite,
            include_optimizer=include_optimizer,
            save_format="tf",
            signatures=signatures,
        )

    def load(self, path):
        return self._module().models.load_model(path)


class Reference:
    """This project's ``reference_impl`` (Keras 3 on TensorFlow)."""

    name = "reference"
    framework = "keras"

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        import reference_impl

        reference_impl.save(
            model, path, overwrite=overwrite, include_optimizer=include_optimizer,
            signatures=signatures,
        )

    def load(self, path):
        import reference_impl

        return reference_impl.load(path)


BUILTIN = {
    "reference": Reference,
    "tf_keras": lambda: Keras2Saver("tf_keras", require_tf_keras=True),
    "legacy_keras": Keras2Saver,
}


def resolve(target):
    if target in BUILTIN:
        return BUILTIN[target]()
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ProtocolError(
            f"{target!r} is neither a worker built-in ({', '.join(sorted(BUILTIN))}) nor "
            "package.module:Attr"
        )
    sys.path.insert(0, os.getcwd())
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj


# --- what the suite needs about a model ----------------------------------------------------


def _valued(variables):
    """The variables that have a value (not tf.keras 2.15's lookup ``VocabWeightHandler``)."""
    return [v for v in variables if hasattr(v, "numpy") and hasattr(v, "assign")]


def _variable_entry(v):
    """A variable's name, shape and dtype; an object without a value that a model still lists
    among its variables (tf.keras 2.15's lookup ``VocabWeightHandler``) is marked ``kind``."""
    if not hasattr(v, "numpy"):
        return {"name": getattr(v, "name", type(v).__name__), "shape": [], "dtype": "none",
                "kind": type(v).__name__}
    dtype = v.dtype.name if hasattr(v.dtype, "name") else str(v.dtype)
    return {"name": v.name, "shape": list(v.shape), "dtype": dtype}


def _framework_module(framework):
    if framework == "keras":
        import keras

        return keras
    return _keras2()[0]


def _flatten_layers(layer, include_self=False):
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


def _sublayers(K, layer):
    if isinstance(layer, K.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _own_training(framework, layer):
    if framework == "keras":
        return bool(getattr(layer, "_call_has_training_arg", False))
    return bool(getattr(layer, "_expects_training_arg", False))


def _regularization(framework, layer):
    """(count, total) of the layer's weight-regularization losses, its sub-layers' included."""
    if framework == "keras":
        losses = layer._get_regularization_losses() if hasattr(
            layer, "_get_regularization_losses"
        ) else []
        losses = list(losses)
    else:
        losses = [
            loss() for sub in layer._flatten_layers(include_self=True)
            for loss in sub._callable_losses
        ]
    total = float(sum(np.asarray(loss, dtype=np.float64) for loss in losses))
    return len(losses), total


def _to_numpy(value):
    array = np.asarray(value)
    if array.dtype.kind == "O":
        array = array.astype(bytes)
    return array


def _save_arrays(path, arrays):
    """``arrays`` in an .npz as a0, a1, ...; dtypes numpy cannot store (bfloat16) as float32,
    the real dtype names beside them."""
    import tensorflow as tf

    out, dtypes = {}, []
    for index, value in enumerate(arrays):
        array = _to_numpy(value.numpy() if hasattr(value, "numpy") else value)
        name = tf.as_dtype(array.dtype).name if array.dtype.kind not in "SUO" else "string"
        if array.dtype.kind == "V" or name == "bfloat16":
            array = array.astype(np.float32)
        dtypes.append(name)
        out[f"a{index}"] = array
    np.savez(path, **out)
    return {"npz": path, "count": len(arrays), "dtypes": dtypes}


def _load_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


class Session:
    def __init__(self, implementation):
        self.impl = implementation
        self.framework = getattr(implementation, "framework", "keras")
        self.models = OrderedDict()  # id -> (model, spec dict or None)
        self._next = 0

    # -- bookkeeping --------------------------------------------------------------------

    def keep(self, model, spec):
        self._next += 1
        key = f"m{self._next}"
        self.models[key] = (model, spec)
        while len(self.models) > KEPT_MODELS:
            self.models.popitem(last=False)
        return key

    def model(self, request):
        key = request.get("model")
        if key not in self.models:
            raise LookupError(
                f"unknown model {key!r} (released, evicted or from an earlier worker)"
            )
        self.models.move_to_end(key)
        return self.models[key]

    def spec(self, raw):
        from strategies.spec import ModelSpec

        if not isinstance(raw, dict):
            raise ProtocolError("'spec' must be a spec object (ModelSpec.to_dict())")
        return ModelSpec.from_dict(raw)

    def inputs(self, spec, path):
        """The model's call arguments from an .npz of input arrays by name."""
        arrays = _load_arrays(path)
        missing = [i.name for i in spec.inputs if i.name not in arrays]
        if missing:
            raise ProtocolError(f"{path} lacks the input array(s) {missing}")
        if spec.dict_inputs:
            return {i.name: arrays[i.name] for i in spec.inputs}
        if len(spec.inputs) == 1:
            return arrays[spec.inputs[0].name]
        return [arrays[i.name] for i in spec.inputs]

    # -- the operations -----------------------------------------------------------------

    def op_hello(self, request):
        import tensorflow as tf

        impl = self.impl
        claims = getattr(impl, "claims", None)
        try:
            keras_version = _framework_module(self.framework).__version__
        except AttributeError:  # tf.keras of 2.12-2.15 has none: the keras package's it is
            import keras

            keras_version = keras.__version__
        return {
            "protocol": PROTOCOL,
            "implementation": {
                "name": getattr(impl, "name", type(impl).__name__),
                "framework": self.framework,
                "claims": sorted(claims) if claims is not None else None,
                "not_claimed": dict(getattr(impl, "not_claimed", None) or {}),
                "supports": getattr(impl, "supports", None),
            },
            "versions": {
                "python": platform.python_version(),
                "tensorflow": tf.__version__,
                "keras": str(keras_version),
            },
        }

    def op_build(self, request):
        from strategies.build import build_model

        raw = request.get("spec")
        if raw is not None:
            model = build_model(self.spec(raw), framework=self.framework)
        elif "fixture" in request:
            make = FIXTURES.get(request["fixture"])
            if make is None:
                raise ProtocolError(
                    f"unknown fixture {request['fixture']!r}; known: {', '.join(sorted(FIXTURES))}"
                )
            model = make(_framework_module(self.framework))
        elif "keras_json" in request:
            model = self._from_config(request)
        else:
            raise ProtocolError("build needs 'spec' or 'keras_json'")
        return {"model": self.keep(model, raw)}

    def _from_config(self, request):
        K = _framework_module(self.framework)
        model = K.models.model_from_json(_older_keras_config(K, request["keras_json"]))
        arrays = _load_arrays(request["weights"])
        model.set_weights([arrays[f"a{i}"] for i in range(len(arrays))])
        return model

    def op_save(self, request):
        model, _ = self.model(request)
        path = _required(request, "path")
        described = request.get("signatures")
        self.impl.save(
            model, path,
            overwrite=bool(request.get("overwrite", True)),
            include_optimizer=bool(request.get("include_optimizer", True)),
            signatures=_signatures(model, described) if described else None,
        )
        return {"path": path}

    def op_load(self, request):
        path = _required(request, "path")
        _register_catalog_classes()
        model = self.impl.load(path)
        return {"model": self.keep(model, None)}

    def op_shutdown(self, request):
        return {}

    def op_release(self, request):
        self.models.pop(request.get("model"), None)
        return {}

    def op_describe(self, request):
        model, _ = self.model(request)
        directory = _required(request, "dir")
        K = _framework_module(self.framework)
        variables = list(model.variables)
        index = {id(v): i for i, v in enumerate(variables)}
        described = {
            "name": model.name,
            "class": type(model).__name__,
            "trainable": bool(model.trainable),
            "expects_training": _own_training(self.framework, model),
            "variables": [_variable_entry(v) for v in variables],
            "trainable_variables": [index.get(id(v), -1) for v in model.trainable_variables],
            "non_trainable_variables": [
                index.get(id(v), -1) for v in model.non_trainable_variables
            ],
            "values": _save_arrays(
                os.path.join(directory, "variables.npz"),
                [v if hasattr(v, "numpy") else np.zeros((0,), np.float32) for v in variables],
            ),
            "optimizer": getattr(model, "optimizer", None) is not None,
        }
        count, total = _regularization(self.framework, model)
        described["regularization"] = {"count": count, "total": total}
        described["layers"] = self._layer_table(K, model)
        return {"original": described}

    def _layer_table(self, K, model):
        """Every layer reached from the model once, by key: the root is "0"; ``children`` lists
        the direct sub-layers' keys in order (a shared layer is one key)."""
        keys, table = {}, {}

        def visit(layer):
            if id(layer) in keys:
                return keys[id(layer)]
            key = str(len(keys))
            keys[id(layer)] = key
            count, total = _regularization(self.framework, layer)
            entry = {
                "name": layer.name,
                "class": type(layer).__name__,
                "trainable": bool(layer.trainable),
                "uses_training": _own_training(self.framework, layer) or any(
                    _own_training(self.framework, sub) for sub in _flatten_layers(layer)
                ),
                "activity_regularizer": getattr(layer, "activity_regularizer", None) is not None,
                # tf_keras names a revived class after the saved one, on a Revived* base
                "compute_dtype": str(getattr(
                    getattr(layer, "dtype_policy", None), "compute_dtype", "") or ""),
                "revived": any("Revived" in cls.__name__ for cls in type(layer).__mro__),
                "regularization": {"count": count, "total": total},
                "variables": [_variable_entry(v) for v in layer.variables],
            }
            table[key] = entry
            entry["children"] = [visit(child) for child in _sublayers(K, layer)]
            return key

        visit(model)
        return table

    def _layer(self, model, key):
        K = _framework_module(self.framework)
        keys, found = {}, {}

        def visit(layer):
            if id(layer) in keys:
                return
            keys[id(layer)] = str(len(keys))
            found[keys[id(layer)]] = layer
            for child in _sublayers(K, layer):
                visit(child)

        visit(model)
        if key not in found:
            raise ProtocolError(f"the model has no layer {key!r}")
        return found[key]

    def op_call(self, request):
        """The model (or one of its layers) called on the inputs; the model's variables are
        restored afterwards, so that calls never change what later requests see."""
        import tensorflow as tf

        model, _ = self.model(request)
        training = bool(request.get("training", False))
        directory = _required(request, "dir")
        layer_key = request.get("layer")
        held = _valued(model.variables)
        saved = [np.array(v.numpy()) for v in held]
        try:
            if layer_key is None:
                inputs = _call_args(
                    _load_arrays(_required(request, "inputs")), request.get("structure")
                )
                result = model(inputs, training=training)
                losses = [loss for loss in model.losses]
            else:
                layer = self._layer(model, layer_key)
                x = _load_arrays(_required(request, "inputs"))["x"]
                kwargs = request.get("kwargs") or {}
                if not isinstance(kwargs, dict):
                    raise ProtocolError("'kwargs' must be an object of call arguments")
                if kwargs:  # the spec's non-default call arguments, as the model's graph uses
                    result = layer(tf.constant(x), **kwargs)
                else:
                    result = layer(tf.constant(x), training=training)
                losses = []
            outputs = tf.nest.flatten(result)
            return {
                "outputs": _save_arrays(os.path.join(directory, "outputs.npz"), outputs),
                "losses": _save_arrays(os.path.join(directory, "losses.npz"), losses),
            }
        finally:
            for variable, value in zip(held, saved):
                variable.assign(value)

    def op_mask(self, request):
        """A layer's ``compute_mask(x, None)``: an array list of one mask, or none."""
        import tensorflow as tf

        model, _ = self.model(request)
        layer = self._layer(model, _required(request, "layer"))
        x = _load_arrays(_required(request, "inputs"))["x"]
        mask = layer.compute_mask(tf.constant(x), None)
        masks = [] if mask is None else [mask]
        return {"mask": _save_arrays(os.path.join(_required(request, "dir"), "mask.npz"), masks)}

    def op_gradients(self, request):
        """Gradients of a fixed loss (the squared outputs of a training-mode call plus the
        model's losses) for the model's trainable variables, in their order; a variable the
        loss does not reach has the dtype ``none``. The variables are restored afterwards."""
        import tensorflow as tf

        model, _ = self.model(request)
        inputs = _call_args(_load_arrays(_required(request, "inputs")), request.get("structure"))
        held = _valued(model.variables)
        saved = [np.array(v.numpy()) for v in held]
        try:
            trainable = list(model.trainable_variables)
            with tf.GradientTape() as tape:
                outputs = model(inputs, training=True)
                loss = tf.add_n(
                    [tf.reduce_sum(tf.cast(t, tf.float32) ** 2) for t in tf.nest.flatten(outputs)]
                    + [tf.cast(loss, tf.float32) for loss in model.losses]
                )
            grads = tape.gradient(loss, trainable)
        finally:
            for variable, value in zip(held, saved):
                variable.assign(value)
        present = [g for g in grads if g is not None]
        result = _save_arrays(
            os.path.join(_required(request, "dir"), "gradients.npz"),
            [tf.convert_to_tensor(g) for g in present],
        )
        result["present"] = [g is not None for g in grads]
        return {"gradients": result}

    def op_activity(self, request):
        import tensorflow as tf

        model, _ = self.model(request)
        layer = self._layer(model, _required(request, "layer"))
        regularizer = getattr(layer, "activity_regularizer", None)
        if regularizer is None:
            raise ProtocolError(f"layer {layer.name!r} has no activity regularizer")
        y = _load_arrays(_required(request, "inputs"))["y"]
        return {"value": float(np.asarray(regularizer(tf.constant(y)), dtype=np.float64))}

    def op_resume(self, request):
        """LOAD-RESUME's steps on this side: a fresh model of the (compiled) spec saved with
        and without its optimizer, both loaded, then the clause's training steps in its order;
        what each model reports, for the suite to compare."""
        from strategies.build import build_model

        spec = self.spec(request.get("spec"))
        directory = _required(request, "dir")
        with_path = _required(request, "with_path")
        without_path = _required(request, "without_path")
        model = build_model(spec, framework=self.framework)
        self.impl.save(model, with_path, include_optimizer=True)
        self.impl.save(model, without_path, include_optimizer=False)
        _register_catalog_classes()
        loaded, fresh = self.impl.load(with_path), self.impl.load(without_path)
        report = {
            who: {
                "class": type(m).__name__,
                "trains": callable(getattr(m, "train_on_batch", None)),
                "optimizer": _optimizer_name(m),
                "iterations": _iterations(m),
            }
            for who, m in (("original", model), ("loaded", loaded), ("fresh", fresh))
        }
        if not (report["loaded"]["trains"] and report["fresh"]["trains"]):
            return {"resume": report}
        if report["fresh"]["optimizer"] is not None:  # the clause's order of steps
            report["fresh"]["step"] = _one_step(fresh, spec)
            report["loaded"]["first_step"] = _one_step(loaded, spec)
        report["original"]["step"] = _one_step(model, spec)
        report["loaded"]["step"] = _one_step(loaded, spec)
        for who, m in (("original", model), ("loaded", loaded)):
            variables = _valued(m.variables)
            slots = _optimizer_variables(m)
            report[who]["variables"] = _save_arrays(
                os.path.join(directory, f"{who}-variables.npz"), variables
            )
            report[who]["variable_names"] = [v.name for v in variables]
            report[who]["slots"] = _save_arrays(os.path.join(directory, f"{who}-slots.npz"), slots)
            report[who]["slot_names"] = [v.name for v in slots]
        return {"resume": report}

    def op_optimizer(self, request):
        """SAVE-OPTIMIZER on this side: a fresh model of the (compiled, trained) spec saved
        without, then with, its optimizer; its optimizer variables before and after the first
        save, and whether ``model.optimizer`` is still the same object."""
        from strategies.build import build_model

        spec = self.spec(request.get("spec"))
        directory = _required(request, "dir")
        model = build_model(spec, framework=self.framework)
        optimizer = model.optimizer
        before = _optimizer_variables(model)
        names = [v.name for v in before]
        values = [np.array(v.numpy()) for v in before]
        self.impl.save(model, _required(request, "without_path"), include_optimizer=False)
        same = model.optimizer is optimizer
        after = _optimizer_variables(model)
        self.impl.save(model, _required(request, "with_path"), include_optimizer=True)
        return {"optimizer": {
            "same_optimizer": same,
            "names": names,
            "before": _save_arrays(os.path.join(directory, "before.npz"), values),
            "after": _save_arrays(os.path.join(directory, "after.npz"), after),
        }}

    def op_unchanged(self, request):
        """SAVE-NO-MUTATION on this side: a fresh model of the spec, saved; what changed."""
        from strategies.build import build_model

        spec = self.spec(request.get("spec"))
        model = build_model(spec, framework=self.framework)
        inputs = self.inputs(spec, _required(request, "inputs"))
        before = _snapshot(model, inputs)
        self.impl.save(model, _required(request, "path"))
        return {"problems": _differences(before, _snapshot(model, inputs))}


# InputLayer arguments newer Keras 2 releases write and older ones refuse, with the value
# that means "as before": dropped when the worker's InputLayer does not take them.
_NEWER_INPUT_ARGUMENTS = {"optional": False}


def _older_keras_config(K, text):
    """A model's JSON from a newer tf_keras (the suite's) made readable by this Keras: tf.keras
    2.15 refuses InputLayer's ``optional`` that tf_keras 2.21 writes."""
    import inspect

    accepted = set(inspect.signature(K.layers.InputLayer.__init__).parameters)
    if all(key in accepted for key in _NEWER_INPUT_ARGUMENTS):
        return text
    document = json.loads(text)

    def visit(node):
        if isinstance(node, dict):
            config = node.get("config")
            if node.get("class_name") == "InputLayer" and isinstance(config, dict):
                for key, default in _NEWER_INPUT_ARGUMENTS.items():
                    if key not in accepted and config.get(key, default) == default:
                        config.pop(key, None)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)
    return json.dumps(document)


def _call_args(arrays, structure):
    """The call arguments ``structure`` describes: ``{"kind": "dict" | "list" | "single",
    "names": [...]}``, the arrays by name."""
    if not isinstance(structure, dict) or structure.get("kind") not in ("dict", "list", "single"):
        raise ProtocolError("'structure' must be {'kind': 'dict'|'list'|'single', 'names': [...]}")
    names = list(structure.get("names") or ())
    missing = [name for name in names if name not in arrays]
    if missing or not names:
        raise ProtocolError(f"the inputs lack the array(s) {missing or names}")
    if structure["kind"] == "dict":
        return {name: arrays[name] for name in names}
    if structure["kind"] == "list":
        return [arrays[name] for name in names]
    return arrays[names[0]]


def _register_catalog_classes():
    """The strategies' registered custom classes, registered with every Keras here, as the
    suite's process has them when it loads (its builds register them; so does LOAD-LEGACY)."""
    from strategies.catalog import custom

    for module in ("keras", "tf_keras"):
        try:
            custom.custom_objects(importlib.import_module(module))
        except ImportError:
            continue


def _signatures(model, described):
    """``tf.function`` signatures from their description: ``{key: {"inputs": [{"name",
    "shape", "dtype"}], "outputs": [names]}}``, each the model's inference call under those
    input specs, its flattened outputs under those names."""
    import tensorflow as tf

    if not isinstance(described, dict):
        raise ProtocolError("'signatures' must map keys to {'inputs': [...], 'outputs': [...]}")
    out = {}
    for key, signature in described.items():
        specs = [
            tf.TensorSpec(spec["shape"], spec["dtype"], name=spec["name"])
            for spec in signature["inputs"]
        ]
        out[key] = _serving_function(model, specs, list(signature["outputs"]))
    return out


def _serving_function(model, specs, names):
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    def serve(*args):
        result = model(args[0] if len(args) == 1 else list(args), training=False)
        return dict(zip(names, tf.nest.flatten(result)))

    return tf.function(serve, input_signature=specs)


def _model_with_unbuilt_layer(K):
    """SAVE-UNBUILT's model (``conformance/expected/fixtures.py``, which the suite builds; the
    same here): a built subclassed model holding a layer its call never uses."""

    class HoldsUnusedLayer(K.Model):
        def __init__(self):
            super().__init__(name="holds_unused")
            self.used = K.layers.Dense(2, name="used_dense")
            self.unused = K.layers.Dense(2, name="never_called_dense")

        def call(self, inputs):
            return self.used(inputs)

    model = HoldsUnusedLayer()
    model(np.zeros((1, 3), dtype="float32"))
    return model


# The suite's fixed models that have no config to send, by name.
FIXTURES = {"model_with_unbuilt_layer": _model_with_unbuilt_layer}


def _optimizer_name(model):
    optimizer = getattr(model, "optimizer", None)
    return None if optimizer is None else type(optimizer).__name__


def _iterations(model):
    optimizer = getattr(model, "optimizer", None)
    return None if optimizer is None else int(np.asarray(optimizer.iterations))


def _optimizer_variables(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    found = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
    return list(found)


def _one_step(model, spec):
    """``train_on_batch`` on the batch after the spec's own training: metrics by name."""
    from strategies.generate import call_inputs, training_batch

    data, targets = training_batch(spec, spec.training.seed + spec.training.steps)
    result = model.train_on_batch(
        call_inputs(spec, data), targets[0] if len(targets) == 1 else targets, return_dict=True
    )
    return {name: float(np.asarray(value)) for name, value in result.items()}


def _required(request, key):
    if key not in request:
        raise ProtocolError(f"the request lacks {key!r}")
    return request[key]


# --- SAVE-NO-MUTATION: what must be the same before and after a save -----------------------


def _seed_states(model):
    out = []
    for layer in model._flatten_layers(include_self=True):
        seed = layer.__dict__.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            out.append((layer.name, "seed", seed))
        for index, generator in enumerate(getattr(layer, "_seed_generators", None) or []):
            out.append((layer.name, f"SeedGenerator {index} state", generator.state.numpy()))
        generator = layer.__dict__.get("_random_generator")
        if generator is not None:
            out.append((layer.name, "random generator seed", getattr(generator, "_seed", None)))
            state = getattr(getattr(generator, "_generator", None), "state", None)
            if state is not None:
                out.append((layer.name, "random generator state", state.numpy()))
    return out


def _snapshot(model, inputs):
    import tensorflow as tf

    result = model(inputs, training=False)
    return {
        "outputs": [np.asarray(t) for t in tf.nest.flatten(result)],
        "losses": [np.asarray(loss) for loss in model.losses],
        "variables": [(v.name, np.array(v.numpy())) for v in _valued(model.variables)],
        "trainable": [v.name for v in model.trainable_variables],
        "layer_trainable": [(layer.name, layer.trainable) for layer in model._flatten_layers()],
        "calls": [
            (layer.name, layer.__dict__.get("call"), type(layer).call)
            for layer in model._flatten_layers()
        ],
        "seeds": _seed_states(model),
        "optimizer": id(getattr(model, "optimizer", None)),
        "structure": tf.nest.map_structure(lambda _: 0, result),
    }


def _bitwise(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "SUO":
        return bool(np.array_equal(a, b))
    return a.tobytes() == b.tobytes()


def _differences(before, after):
    problems = []
    for key in ("trainable", "layer_trainable", "optimizer", "structure"):
        if before[key] != after[key]:
            problems.append(f"save changed the model's {key}")
    if [s[:2] for s in before["seeds"]] != [s[:2] for s in after["seeds"]]:
        problems.append("save changed the model's seed generators")
    for (layer, what, b), (_, _, a) in zip(before["seeds"], after["seeds"]):
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            problems.append(f"save changed layer {layer!r}'s {what}: {b} before, {a} after")
    if [n for n, _ in before["variables"]] != [n for n, _ in after["variables"]]:
        problems.append("save changed the model's variable list")
    for (name, b), (_, a) in zip(before["variables"], after["variables"]):
        if not _bitwise(a, b):
            problems.append(f"variable {name} after save: not bitwise equal")
    for index, (b, a) in enumerate(zip(before["outputs"], after["outputs"])):
        if not _bitwise(a, b):
            problems.append(f"output {index} after save: not bitwise equal")
    if len(before["losses"]) != len(after["losses"]):
        problems.append("save changed the number of losses")
    for index, (b, a) in enumerate(zip(before["losses"], after["losses"])):
        if not _bitwise(a, b):
            problems.append(f"loss {index} after save: not bitwise equal")
    for (name, own_b, cls_b), (_, own_a, cls_a) in zip(before["calls"], after["calls"]):
        if own_a is not own_b or cls_a is not cls_b:
            problems.append(f"save left layer {name!r}'s call replaced")
    return problems


# --- the loop ------------------------------------------------------------------------------


@contextlib.contextmanager
def captured():
    """Warnings and log records (any logger, WARNING and up) issued inside the block."""
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield messages
        finally:
            root.removeHandler(handler)
            messages.extend(str(w.message) for w in caught)


def _error(exc, phase):
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc)[:20000],
        "phase": phase,
        "traceback": "".join(traceback.format_exception(exc))[-8000:],
    }


def handle(session, line):
    try:
        request = json.loads(line)
    except ValueError as exc:
        return {"id": None, "ok": False, "error": _error(ProtocolError(f"not JSON: {exc}"),
                                                           "protocol")}
    if not isinstance(request, dict):
        return {"id": None, "ok": False,
                "error": _error(ProtocolError("a request is a JSON object"), "protocol")}
    op = request.get("op")
    method = getattr(session, f"op_{op}", None) if isinstance(op, str) else None
    if method is None:
        return {"id": request.get("id"), "ok": False,
                "error": _error(ProtocolError(f"unknown op {op!r}"), "protocol")}
    phase = op if op in ("save", "load", "build", "unchanged", "resume", "optimizer") else "worker"
    with captured() as messages:
        try:
            reply = method(request)
        except Exception as exc:
            reply = None
            error = _error(exc, phase)
    if reply is None:
        return {"id": request.get("id"), "ok": False, "error": error, "messages": messages}
    return {"id": request.get("id"), "ok": True, "messages": messages, **reply}


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python worker.py TARGET (a worker built-in or module:Attr)\n")
        return 2
    # Replies go to the stdout this process was started with; fd 1 and sys.stdout are
    # pointed at stderr, so that a print or a C++ log line never corrupts a reply.
    global REPLIES
    replies = REPLIES = open(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Requests come on the stdin this process was started with; the implementation's own
    # stdin is empty, so that a question it asks (tf_keras' "overwrite?") reads end-of-file
    # instead of the next request.
    requests = open(os.dup(0), encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(os.devnull)
    try:
        session = Session(resolve(argv[1]))
    except Exception as exc:
        replies.write(json.dumps({"id": None, "ok": False, "error": _error(exc, "start")}) + "\n")
        return 1
    for line in requests:
        if not line.strip():
            continue
        reply = handle(session, line)
        try:
            text = json.dumps(reply)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"id": reply.get("id"), "ok": False,
                               "error": _error(exc, "worker")})
        replies.write(text + "\n")
        replies.flush()
        if reply.get("ok") and json.loads(line).get("op") == "shutdown":
            break
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
