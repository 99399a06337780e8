"""Reviving a saved Keras object whose class is not known, from its saved functions.

The SavedModel is loaded with ``tf.saved_model.load``. Every saved layer of the tree (the
root and, through ``keras_api.layers``, each sublayer once) becomes a :class:`RevivedLayer`
(:class:`RevivedModel` for the root model) holding the revived layers of its sublayers, so
the layer tree, the order of ``variables`` and the trainable / non-trainable partition are
the saved ones, and a revived model saved again gives the same saved layout. Each revived
layer is a Keras 3 layer that:

* exposes the loaded ``tf.Variable`` objects as Keras variables *sharing their storage*
  (``keras.Variable`` wraps an existing ``tf.Variable`` without copying it, so the saved
  functions and the optimizer see the same values), trainable and not as saved;
* calls its own saved ``call_and_return_conditional_losses`` (not its sublayers) with the
  ``training`` value Keras resolves (inference when none), and adds the returned
  input-dependent losses with ``add_loss``; its own activity regularizer runs the saved
  ``activity_regularizer_fn`` from Keras' ``__call__``, as for any layer;
* casts its inputs to the dtypes of the saved input signature;
* gives each regularized variable a ``regularizer`` that runs the saved zero-argument loss
  function, so the regularization losses appear in ``losses`` wherever Keras looks for them
  (also inside a larger model).

It can therefore be called, fine-tuned with a gradient step, used inside a new model, and
saved again with :func:`reference_impl.save`. Its config cannot rebuild it (there is no
class to rebuild); a re-saved revived model is revived again.

A root Sequential is the exception: it becomes a :class:`RevivedSequential`, a
``keras.Sequential`` of its revived layers that calls them in order rather than its own
saved functions, as tf_keras does, because ``add()`` and ``pop()`` may change it.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import tensorflow as tf

from reference_impl.attributes import KERAS_API
from reference_impl.metadata import INPUT_LAYER_IDENTIFIER, SEQUENTIAL_IDENTIFIER, MetadataNode

__all__ = ["RevivedLayer", "RevivedModel", "RevivedSequential", "revive"]


class _SavedFunctions:
    """Holds the loaded object out of Keras' and TensorFlow's attribute tracking."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self.api = getattr(loaded, KERAS_API)
        self.input_signatures: list = []
        self.serving_signature: Any = None
        self.output_names: list | None = None


def _takes_training(function: Any) -> bool:
    """Whether a loaded call function was saved with a ``training`` argument."""
    for concrete in function.concrete_functions:
        names = list(concrete.function_type.parameters)
        values = concrete.structured_input_signature[0]
        # By name (a literal keyword argument may be a bool too), else any Python bool.
        return "training" in names or any(isinstance(a, bool) for a in values)
    return False


_LITERALS = (bool, int, float, str)


def _tensor_arguments(concrete: Any) -> tuple:
    """A saved call function's signature: its arguments but the Python values (``training``,
    keyword arguments traced as constants)."""
    return tuple(
        a for a in concrete.structured_input_signature[0] if not isinstance(a, _LITERALS)
    )


def _literal_parameters(function: Any) -> dict[str, Any]:
    """The Python-valued parameters of a saved call function but ``training``, each with the
    value of its first trace (what a call without it falls back to without metadata)."""
    for concrete in getattr(function, "concrete_functions", None) or []:
        names = list(concrete.function_type.parameters)
        values = concrete.structured_input_signature[0]
        return {
            name: value
            for name, value in zip(names, values)
            if name != "training" and isinstance(value, _LITERALS)
        }
    return {}


def _as_saved_dtypes(inputs: Any, signature: Any) -> Any:
    """``inputs`` cast leaf by leaf to the saved signature's dtypes, where they line up.

    Keras casts floating inputs to the layer's compute dtype before ``call``; the saved
    functions want the dtypes they were traced with.
    """
    if signature is None:
        return inputs
    flat_inputs, flat_specs = tf.nest.flatten(inputs), tf.nest.flatten(signature)
    if len(flat_inputs) != len(flat_specs):
        return inputs
    cast = [
        tf.cast(x, spec.dtype) if tf.as_dtype(x.dtype) != spec.dtype else x
        for x, spec in zip(flat_inputs, flat_specs, strict=True)
    ]
    return tf.nest.pack_sequence_as(inputs, cast)


def _captured_handles(function: Any) -> list:
    return [c for concrete in function.concrete_functions for c in concrete.captured_inputs]


class RevivedLayer(keras.layers.Layer):
    """A Keras layer around the saved functions of a layer whose class is unknown.

    Built by :func:`revive` for every saved layer of the tree: its sublayers are revived
    layers too (in the saved ``keras_api.layers`` order, a shared layer once), and each
    variable belongs to the deepest revived layer that lists it, so ``variables``,
    ``trainable_variables`` and ``non_trainable_variables`` come out in the saved order and
    partition, and saving the revived model again gives the same layer tree.
    """

    def __init__(
        self,
        saved: _SavedFunctions,
        record: dict | None = None,
        sublayers: list | None = None,
        own_variables: list | None = None,
        **kwargs: Any,
    ):
        record = record or {}
        kwargs.setdefault("name", record.get("name"))
        kwargs.setdefault("trainable", record.get("trainable", True))
        if record.get("dtype") is not None:
            kwargs.setdefault("dtype", record["dtype"])
        # Inputs keep their dtypes (a float64 input is not cast to float32 and back): the
        # call casts them to the saved signature's.
        kwargs.setdefault("autocast", False)
        api = saved.api
        activity_fn = getattr(api, "activity_regularizer_fn", None)
        if activity_fn is not None:
            kwargs.setdefault("activity_regularizer", _SavedActivityRegularizer(activity_fn))
        super().__init__(**kwargs)
        self._saved = saved
        # The call without the layer's own activity loss: Keras' __call__ adds that one.
        self._call_function = getattr(api, "call_and_return_conditional_losses", None)
        if self._call_function is None or activity_fn is None:
            self._call_function = self._call_function or getattr(
                api, "call_and_return_all_conditional_losses", None
            )
        self._takes_training = self._call_function is not None and _takes_training(
            self._call_function
        )
        # Keyword arguments traced as constants, with their defaults (the saved metadata's).
        self._literal_defaults = _literal_parameters(self._call_function)
        for name, value in (record.get("call_arguments") or {}).items():
            if name in self._literal_defaults:
                self._literal_defaults[name] = value
        # The layer's own mask, where the saver kept it as a function of the inputs.
        self._mask_function = getattr(api, "compute_mask_fn", None)
        if self._mask_function is not None:
            self.supports_masking = True
        # As saved: reference_impl.save gives the functions a training argument only then.
        self._call_has_training_arg = self._takes_training
        self._revived_layers = list(sublayers or [])
        for variable in own_variables or []:
            self._track_variable(variable)
        saved.input_signatures = _saved_input_signatures(self._call_function)
        if saved.input_signatures:
            self.build(
                tf.nest.map_structure(
                    lambda s: tuple(s.shape.as_list()), saved.input_signatures[0][0]
                )
            )
        else:
            self.built = True

    def build(self, input_shape: Any) -> None:
        # The variables already exist; building only records the input shape.
        del input_shape

    def call(
        self, inputs: Any, *more_inputs: Any, training: bool | None = None, **kwargs: Any
    ) -> Any:
        # More positional inputs where the saved functions take several (an RNN cell's
        # states, a model's second input); keyword arguments the saved functions were
        # traced with as constants (only the values traced can be called).
        if self._call_function is None:
            raise NotImplementedError(
                f"Revived layer '{self.name}' was saved without call functions "
                "(it was not built when saved)."
            )
        arguments = (inputs, *more_inputs)
        signatures = self._saved.input_signatures
        if signatures and len(signatures[0]) >= len(arguments):
            # The saved signature may end with optional arguments (a mask traced as None).
            arguments = tuple(
                _as_saved_dtypes(a, s) for a, s in zip(arguments, signatures[0][: len(arguments)])
            )
        unknown = sorted(set(kwargs) - set(self._literal_defaults))
        if unknown:
            raise TypeError(
                f"Revived layer '{self.name}' was saved without call argument(s) {unknown}"
            )
        literals = tuple(kwargs.get(n, d) for n, d in self._literal_defaults.items())
        args = (*arguments, *literals, *((bool(training),) if self._takes_training else ()))
        try:
            outputs, losses = self._call_function(*args)
        except (TypeError, ValueError) as error:
            if not literals:
                raise
            raise ValueError(
                f"Revived layer '{self.name}' has no saved function for the call argument "
                f"values {dict(zip(self._literal_defaults, literals))} (only the values the "
                f"model was saved with are traced): {error}"
            ) from error
        for loss in losses:
            keras.layers.Layer.add_loss(self, loss)
        return outputs

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if self._mask_function is None:
            return super().compute_mask(inputs, previous_mask)
        signatures = self._saved.input_signatures
        if signatures and len(signatures[0]) == 1:
            inputs = _as_saved_dtypes(inputs, signatures[0][0])
        # The mask the layer made with no incoming mask (what the saver traced).
        return self._mask_function(inputs)

    @property
    def saved_mask_function(self) -> Any:
        return self._mask_function

    # What reference_impl.save reads to save a revived layer as it was saved (these live on
    # the untracked holder, so Keras does not wrap them).

    @property
    def saved_input_signatures(self) -> list:
        """The input signatures the saved call functions were traced for."""
        return list(self._saved.input_signatures)

    @property
    def saved_literal_defaults(self) -> dict[str, Any]:
        """The keyword arguments traced as constants, with their defaults."""
        return dict(self._literal_defaults)

    @property
    def saved_call_variants(self) -> list[tuple[tuple, tuple]]:
        """``(signature, literal values)`` for each saved trace, in order, each once, so a
        re-save traces the same keyword-argument values."""
        names = tuple(self._literal_defaults)
        variants: list[tuple[tuple, tuple]] = []
        function = self._call_function
        for concrete in getattr(function, "concrete_functions", None) or []:
            values = concrete.structured_input_signature[0]
            given = dict(zip(concrete.function_type.parameters, values))
            literals = tuple(given.get(n, self._literal_defaults[n]) for n in names)
            variant = (_tensor_arguments(concrete), literals)
            if variant not in variants:
                variants.append(variant)
        return variants

    @property
    def saved_argument_names(self) -> tuple[str, ...]:
        """The names of the saved call functions' tensor arguments (``inputs``, ...)."""
        for concrete in getattr(self._call_function, "concrete_functions", None) or []:
            parameters = list(concrete.function_type.parameters)
            return tuple(parameters[: len(_tensor_arguments(concrete))])
        return ("inputs",)

    @property
    def saved_serving_signature(self) -> Any:
        """The root's saved serving input signature (named specs), or None."""
        return self._saved.serving_signature

    @property
    def saved_output_names(self) -> list | None:
        """The root's saved serving output names in output order, or None (``output_i``)."""
        return self._saved.output_names

    def get_config(self) -> dict:
        # Not enough to rebuild the layer: its class is what was unknown.
        return {"name": self.name, "trainable": self.trainable}


class RevivedModel(RevivedLayer, keras.Model):
    """A Keras model around the saved functions of a model whose class is unknown.

    Saved again, its serving signature keeps the saved input and output names.
    """

    def __init__(self, saved: _SavedFunctions, record: dict | None = None, **kwargs: Any):
        super().__init__(saved, record, **kwargs)
        names = _output_names(record or {})
        if names:
            # compile() names per-output losses and metrics by them, as the original's
            self.output_names = names


def _output_names(record: dict) -> list[str]:
    """The output layer names a functional model's saved config lists, or []."""
    config = record.get("config")
    layers = config.get("output_layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        return []
    if isinstance(layers[0], str):  # one output: [name, node_index, tensor_index]
        return [layers[0]]
    names = [entry[0] for entry in layers if isinstance(entry, list) and entry]
    return names if all(isinstance(n, str) for n in names) else []


class RevivedSequential(keras.Sequential):
    """A Sequential model whose class (or a layer's) is unknown: its layers are revived.

    Unlike :class:`RevivedModel` it does not call the model's saved functions: as tf_keras
    (``save_impl.wrap_layer_functions``) never reuses a revived Sequential's, because
    ``add()`` and ``pop()`` may change it. It runs its layers in order, so a changed model
    computes, and is saved as, what it now holds; its revived layers still call their own
    saved functions.
    """


def _saved_input_signatures(function: Any) -> list:
    """The distinct signatures a loaded call function was saved for, in order.

    A signature is a tuple with the spec structure of each tensor argument.
    """
    signatures: list = []
    for concrete in getattr(function, "concrete_functions", None) or []:
        signature = _tensor_arguments(concrete)
        if signature not in signatures:
            signatures.append(signature)
    return signatures


class _SavedRegularizer:
    """A variable's regularizer that runs the saved zero-argument loss function."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn

    def __call__(self, value: Any) -> Any:
        del value  # The saved function reads the variable itself.
        return self.loss_fn()

    def get_config(self) -> dict:
        return {}


class _SavedActivityRegularizer:
    """A layer's activity regularizer that runs the saved ``activity_regularizer_fn``."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, output: Any) -> Any:
        return self.function(output)

    def get_config(self) -> dict:
        # The metadata records the regularizer by class; it has nothing else to record.
        return {}


_MODEL_IDENTIFIERS = ("_tf_keras_model", "_tf_keras_network", "_tf_keras_sequential")


def revive(path: str, root: MetadataNode | None, nodes: list | None = None) -> RevivedLayer:
    """Load the SavedModel at ``path`` and revive its layer tree around the saved functions.

    Args:
        path: the SavedModel directory.
        root: the root's metadata node (None without metadata).
        nodes: every metadata node, for the sublayers' names, dtypes and trainable flags.
    """
    loaded = tf.saved_model.load(path)
    records = {node.node_path: dict(node.metadata) for node in nodes or []}
    identifiers = {node.node_path: node.identifier for node in nodes or []}
    if root is not None:
        records["root"] = dict(root.metadata)
    is_model = root is None or root.identifier in _MODEL_IDENTIFIERS
    reviver = _Reviver(loaded, records)
    if root is not None and root.identifier == SEQUENTIAL_IDENTIFIER:
        sequential = reviver.revive_sequential(loaded, identifiers)
        if sequential is not None:
            return sequential
    revived = reviver.revive(loaded, "root", model_class=is_model)
    if revived._call_function is None:
        warnings.warn(
            f"The object at '{path}' was saved without call functions; the revived "
            f"{type(revived).__name__} holds its variables but cannot be called.",
            stacklevel=3,
        )
    return revived


class _Reviver:
    """Revives each saved layer once, children first; each variable once."""

    def __init__(self, loaded: Any, records: dict[str, dict]) -> None:
        self.records = records
        self.layers: dict[int, RevivedLayer] = {}
        self.variables: dict[int, keras.Variable] = {}
        self.trainable_ids = set()
        self.regularizers: dict[int, Any] = {}
        # Every layer's own list: tf_keras' root list leaves out sublayers' (an RNN cell's).
        for loss_fn in _all_regularization_losses(loaded, set()):
            for handle in _captured_handles(loss_fn):
                self.regularizers.setdefault(id(handle), loss_fn)
        self._collect_trainable(loaded, set())

    def _collect_trainable(self, node: Any, seen: set) -> None:
        # A variable is trainable where the deepest layer that lists it says so.
        if id(node) in seen or getattr(node, KERAS_API, None) is None:
            return
        seen.add(id(node))
        api = getattr(node, KERAS_API)
        for child in getattr(api, "layers", []):
            self._collect_trainable(child, seen)
        children = {id(v) for child in getattr(api, "layers", []) for v in _api_variables(child)}
        for variable in api.trainable_variables:
            if id(variable) not in children:
                self.trainable_ids.add(id(variable))

    def keras_variable(self, saved_variable: Any) -> keras.Variable:
        key = id(saved_variable)
        if key not in self.variables:
            variable = keras.Variable(
                initializer=saved_variable,  # the same tf.Variable, not a copy
                shape=saved_variable.shape,
                dtype=saved_variable.dtype.name,
                trainable=key in self.trainable_ids,
                name=saved_variable.name.split(":")[0].replace("/", "_"),
            )
            loss_fn = self.regularizers.get(id(saved_variable.handle))
            if loss_fn is not None:
                variable.regularizer = _SavedRegularizer(loss_fn)
            self.variables[key] = variable
        return self.variables[key]

    def revive(self, node: Any, path: str, model_class: bool = False) -> RevivedLayer:
        if id(node) in self.layers:
            return self.layers[id(node)]
        api = getattr(node, KERAS_API)
        children = list(getattr(api, "layers", []))
        sublayers = [
            self.revive(child, f"{path}.{KERAS_API}.layers.{i}")
            for i, child in enumerate(children)
            if getattr(child, KERAS_API, None) is not None
        ]
        in_children = {id(v) for child in children for v in _api_variables(child)}
        own = [self.keras_variable(v) for v in api.variables if id(v) not in in_children]
        record = self.records.get(path, {})
        cls = RevivedModel if model_class else RevivedLayer
        layer = cls(_SavedFunctions(node), record, sublayers=sublayers, own_variables=own)
        if path == "root":
            layer._saved.serving_signature, layer._saved.output_names = _serving(api, record)
        self.layers[id(node)] = layer
        return layer


    def revive_sequential(self, loaded: Any, identifiers: dict[str, str]) -> Any:
        """The root Sequential as a :class:`RevivedSequential` of its revived layers, or
        None where it cannot be one (no single-tensor serving input, variables of its own,
        layers that do not chain)."""
        api = getattr(loaded, KERAS_API)
        record = self.records.get("root", {})
        signature, _ = _serving(api, record)
        if signature is None or len(signature) != 1 or not isinstance(signature[0], tf.TensorSpec):
            return None
        children = list(getattr(api, "layers", []))
        in_children = {id(v) for child in children for v in _api_variables(child)}
        if any(id(v) not in in_children for v in api.variables):
            return None
        layers = []
        for index, child in enumerate(children):
            path = f"root.{KERAS_API}.layers.{index}"
            if getattr(child, KERAS_API, None) is None:
                continue
            if identifiers.get(path) == INPUT_LAYER_IDENTIFIER:
                continue
            layers.append(self.revive(child, path))
        spec = signature[0]
        shape = spec.shape.as_list()
        inputs = keras.Input(
            shape=tuple(shape[1:]), batch_size=shape[0], dtype=spec.dtype.name, name=spec.name
        )
        try:
            model = RevivedSequential([inputs, *layers], name=record.get("name"))
        except Exception:  # the revived layers do not chain: revive it as a whole instead
            return None
        if record.get("trainable") is False:
            model.trainable = False
        return model


def _all_regularization_losses(node: Any, seen: set) -> list:
    """The saved regularization loss functions of ``node`` and its layers, each once."""
    api = getattr(node, KERAS_API, None)
    if api is None or id(node) in seen:
        return []
    seen.add(id(node))
    found = list(getattr(api, "regularization_losses", []))
    for child in getattr(api, "layers", []):
        found += [f for f in _all_regularization_losses(child, seen) if f not in found]
    return found


def _api_variables(node: Any) -> list:
    api = getattr(node, KERAS_API, None)
    return list(api.variables) if api is not None else []


def _serving(api: Any, record: dict) -> tuple[Any, list | None]:
    """The saved serving input signature (named specs) and output names in output order."""
    function = getattr(api, "_default_save_signature", None)
    concretes = list(getattr(function, "concrete_functions", None) or [])
    if not concretes:
        return None, None
    concrete = concretes[0]
    signature = tuple(concrete.structured_input_signature[0])
    outputs = concrete.structured_outputs
    if not isinstance(outputs, dict):
        return signature, None
    keys = list(outputs)
    if keys == [f"output_{i}" for i in range(1, len(keys) + 1)] or sorted(keys) == sorted(
        f"output_{i}" for i in range(1, len(keys) + 1)
    ):
        return signature, None
    if len(keys) == 1:
        return signature, keys
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    output_layers = config.get("output_layers")
    if isinstance(output_layers, list):
        names = [entry[0] for entry in output_layers if isinstance(entry, list) and entry]
        if sorted(names) == sorted(keys):
            return signature, names
    return signature, sorted(keys)
