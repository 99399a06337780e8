"""Input signatures: what the saved call functions of a layer are traced with.

A layer's call functions take the tensor arguments its ``call`` requires
(:func:`call_argument_names`): the first named ``inputs``, the others as ``call`` names them
(an RNN cell's ``states``, the ``value`` of an attention layer, a subclassed model's second
input). A *signature* is a tuple with one spec structure (``tf.TensorSpec`` leaves, batch
dimension None) per tensor argument.

Where signatures come from:

* the root: :func:`root_signature`, named for serving. A Functional model (or a built
  Sequential) names each input after its Input layer; a revived model keeps what it was
  saved with; any other model or layer is named after its ``call`` arguments
  (:func:`built_signature` with ``named=True``).
* a layer that the root's trace does not reach (:mod:`reference_impl.tracing` records the
  signatures of those it reaches): :func:`built_signature`, unnamed.

:func:`output_names` gives the serving signature's output keys.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import tensorflow as tf

from reference_impl._compat import Functional
from reference_impl.revive import RevivedLayer

__all__ = [
    "built_signature",
    "call_argument_names",
    "functional_of",
    "output_names",
    "relaxed_spec",
    "root_signature",
]


def root_signature(model: keras.layers.Layer) -> Any:
    """The signature the root is traced and served with, specs named; None if unknown.

    Functional models (and built Sequential ones) name each input after its Input layer.
    Other models and layers use :func:`built_signature`, named after the arguments of
    ``call``. Returns None when the inputs are not known.
    """
    functional = functional_of(model)
    if functional is not None:
        return (
            tf.nest.map_structure(
                lambda x: tf.TensorSpec(relaxed_spec(x).shape, x.dtype, name=x.name),
                functional._inputs_struct,
            ),
        )
    if isinstance(model, RevivedLayer):
        # Saved again as it was saved: the same input names and structure.
        if model.saved_serving_signature is not None:
            return model.saved_serving_signature
        signatures = model.saved_input_signatures
        return signatures[0] if signatures else None
    return built_signature(model, named=True)


def built_signature(layer: keras.layers.Layer, named: bool = False) -> tuple | None:
    """The signature a layer was built for, from its ``input_spec`` or build shapes; or None.

    Used for a layer the root's trace does not reach (unnamed) and for a root that is not
    Functional (``named``: each spec named after its ``call`` argument, as serving needs).

    A layer whose functions take one argument: :func:`_one_argument_specs`. One that takes
    several (a subclassed model's ``call(a, b)``): the ``input_spec`` it declares, a list
    with an ``InputSpec`` (shape and dtype) per argument, else the shapes it was built with
    if Keras recorded one per argument.
    """
    names = call_argument_names(layer)
    argument_names = _declared_argument_names(layer) if named else [None] * len(names)
    if len(names) == 1:
        spec = _one_argument_specs(layer, argument_names[0])
        return None if spec is None else (spec,)
    declared = _declared_leaves(getattr(layer, "input_spec", None))
    if isinstance(declared, (list, tuple)) and len(declared) == len(names):
        leaves = list(declared)
    else:
        # Keras 3 records the build shape of the first argument only, as a rule.
        shapes = list((getattr(layer, "_build_shapes_dict", None) or {}).values())
        if len(shapes) != len(names) or not all(_is_shape(shape) for shape in shapes):
            return None
        dtype = tf.as_dtype(layer.input_dtype)
        leaves = [_Leaf(list(shape), dtype) for shape in shapes]
    return tuple(_as_specs(leaf, name) for leaf, name in zip(leaves, argument_names, strict=True))


def _one_argument_specs(layer: keras.layers.Layer, name: str | None) -> Any:
    """The spec structure of a one-argument layer that is not Functional, or None.

    Where the layer declares ``input_spec`` (a ``keras.InputSpec`` or a list, tuple or dict
    of them) with a ``shape`` and a ``dtype`` for every input, those are used: Keras 3
    records the shapes a layer was built with but not the dtypes it was called with.
    Otherwise the shapes it was built with are used, with the layer's input dtype; only
    layers built from one call argument qualify, and that argument may be a nested list or
    dict of tensors. Leaves are named after ``name``: ``name`` itself, a dict key, or
    ``name_<i>`` in a list.
    """
    declared = _declared_leaves(getattr(layer, "input_spec", None))
    shapes = getattr(layer, "_build_shapes_dict", None)
    built = None
    if shapes and len(shapes) == 1:
        try:
            built = _built_leaves(next(iter(shapes.values())), tf.as_dtype(layer.input_dtype))
        except ValueError:
            built = None
    if declared is not None:
        if built is not None:
            flat_declared, flat_built = tf.nest.flatten(declared), tf.nest.flatten(built)
            if len(flat_declared) == len(flat_built):
                # The structure the layer is called with (a single tensor for a one-element
                # input_spec list, say), with the declared shapes and dtypes.
                declared = tf.nest.pack_sequence_as(built, flat_declared)
        return _as_specs(declared, name)
    return None if built is None else _as_specs(built, name)


def _declared_leaves(input_spec: Any) -> Any:
    """``input_spec`` as a nest of unnamed :class:`_Leaf`; None unless all are complete.

    None unless every ``InputSpec`` in it declares both a shape and a dtype.
    """
    if input_spec is None:
        return None
    if isinstance(input_spec, keras.InputSpec):
        if input_spec.shape is None or input_spec.dtype is None:
            return None
        return _Leaf(list(input_spec.shape), tf.as_dtype(input_spec.dtype))
    if isinstance(input_spec, dict) and input_spec:
        items = {key: _declared_leaves(value) for key, value in input_spec.items()}
        return None if any(v is None for v in items.values()) else items
    if isinstance(input_spec, (list, tuple)) and input_spec:
        values = [_declared_leaves(value) for value in input_spec]
        if any(v is None for v in values):
            return None
        # Keras tracks lists set on a layer as its own list type; a plain list is saved.
        return tuple(values) if isinstance(input_spec, tuple) else list(values)
    return None


def _built_leaves(structure: Any, dtype: tf.DType) -> Any:
    """A nest of build shapes as a nest of unnamed :class:`_Leaf`; ValueError if not one."""
    if _is_shape(structure):
        return _Leaf(list(structure), dtype)
    if isinstance(structure, dict):
        return {key: _built_leaves(value, dtype) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)) and structure:
        return type(structure)(_built_leaves(value, dtype) for value in structure)
    raise ValueError(f"not a shape structure: {structure!r}")


class _Leaf:
    """One input's shape and dtype, before it is named."""

    def __init__(self, shape: list, dtype: tf.DType) -> None:
        self.shape, self.dtype = shape, dtype


def _as_specs(structure: Any, leaf_name: str | None) -> Any:
    """A nest of :class:`_Leaf` as ``tf.TensorSpec``, batch dimension None, named.

    Leaves are named as :func:`_one_argument_specs` says (None: unnamed).
    """
    if isinstance(structure, _Leaf):
        dims = list(structure.shape)
        if dims:
            dims[0] = None
        return tf.TensorSpec(dims, structure.dtype, name=leaf_name)
    if isinstance(structure, dict):
        return {key: _as_specs(value, str(key)) for key, value in structure.items()}
    names = [None if leaf_name is None else f"{leaf_name}_{i}" for i in range(len(structure))]
    return type(structure)(_as_specs(v, n) for v, n in zip(structure, names, strict=True))


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in value
    )


# -- the tensor arguments ----------------------------------------------------------------


def call_argument_names(layer: keras.layers.Layer) -> tuple[str, ...]:
    """The names of the tensor arguments the layer's functions take, ``inputs`` first.

    The first argument of ``call``, named ``inputs``, then every further positional argument
    ``call`` requires (no default): an RNN cell's ``states``, a subclassed model's second
    input. Optional arguments, ``training`` and ``mask`` are not among them.
    """
    saved = getattr(layer, "saved_argument_names", None)
    if saved is not None:
        # A revived layer (reference_impl.revive) takes what its saved functions took.
        return tuple(saved)
    parameters = _call_parameters(layer)
    names = ["inputs"]
    for parameter in parameters[1:]:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        if parameter.default is not parameter.empty or parameter.name in ("training", "mask"):
            break
        names.append(parameter.name)
    return tuple(names)


def _declared_argument_names(layer: keras.layers.Layer) -> list[str]:
    """:func:`call_argument_names` as ``call`` declares them (the first not renamed ``inputs``).

    Used to name a serving signature's inputs.
    """
    parameters = [parameter.name for parameter in _call_parameters(layer)]
    count = len(call_argument_names(layer))
    return parameters[:count] if len(parameters) >= count else ["inputs"] * count


def _call_parameters(layer: keras.layers.Layer) -> list[inspect.Parameter]:
    """The parameters of the layer's class's ``call``, after ``self``."""
    # The unbound method: the instance's `call` may be swapped while saving.
    return list(inspect.signature(type(layer).call).parameters.values())[1:]


# -- specs and names -----------------------------------------------------------------------


def relaxed_spec(structure: Any) -> Any:
    """Unnamed ``tf.TensorSpec`` structure for tensors or specs, batch dimension None.

    Names are dropped because a tensor passed at call time carries none: a trace made for a
    named spec would not be reused for it.
    """

    def spec(x: Any) -> tf.TensorSpec:
        shape = tf.TensorShape(x.shape)
        if shape.rank:
            shape = tf.TensorShape([None] + shape.as_list()[1:])
        return tf.TensorSpec(shape, tf.as_dtype(x.dtype))

    return tf.nest.map_structure(spec, structure)


def functional_of(model: keras.layers.Layer) -> Any:
    """The Functional graph of a Functional model or a built Sequential, else None."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if isinstance(model, Functional):
        return model
    return None


def output_names(model: keras.layers.Layer, outputs: Any) -> list[str] | None:
    """The serving output keys for a flat list of outputs, or None for dict outputs.

    Functional models use their output layers' names; subclassed models ``output_1..n``.
    """
    if isinstance(outputs, dict):
        return None
    flat = tf.nest.flatten(outputs)
    if isinstance(model, RevivedLayer) and model.saved_output_names is not None:
        if len(model.saved_output_names) == len(flat):
            return list(model.saved_output_names)
    functional = functional_of(model)
    if functional is not None and not isinstance(functional._outputs_struct, dict):
        names = list(functional.output_names)
        if len(names) == len(flat) and len(set(names)) == len(names):
            return names
    return [f"output_{i}" for i in range(1, len(flat) + 1)]
