"""Tracing a layer's call functions, each layer once, reusing its children's traces.

Every saved layer gets a :class:`LayerCallFunctions`. Its *core* function is
``call_and_return_conditional_losses``: it runs the layer's own ``__call__`` on the inputs and
returns ``(outputs, losses)``, where ``losses`` are the input-dependent losses that the layer
and its descendants added with ``add_loss`` (the layer's own activity regularizer excluded).
The other call functions are thin wrappers around the core one, so all call functions of a
layer are traced from the same inputs.

Linear save time comes from :func:`children_call_traced_functions`. While it is active, the
``call`` of every non-root layer is replaced (on the instance, restored afterwards) by a
wrapper that calls that layer's core ``tf.function`` and re-adds the returned losses. When a
parent is traced its children are therefore one function-call op each, and a child's own ops
are traced once per input signature, however deep the model is. The wrapper also records the
signatures a layer is reached with, which is how a shared layer called on two shapes gets a
trace for each.

Loss bookkeeping: Keras keeps the losses of the last call in ``layer._losses``. A trace must
neither see losses from outside nor leave graph tensors behind, so :func:`_isolated_losses`
saves the losses of the traced layer and its descendants, clears them for the trace, reads
what the trace added, and puts the saved ones back. The model's own losses are therefore the
same after a save as before it.

Arguments: the functions take the tensor arguments the layer's ``call`` requires, the first
named ``inputs`` and the others as ``call`` names them (an RNN cell's ``states``, the
``value`` of an attention layer, a subclassed model's second input), then ``training``. A
*signature* here is a tuple with one spec structure per tensor argument. ``training`` is
passed as a Python boolean: a layer whose call, or a descendant's call, takes ``training`` is
traced with ``True`` and with ``False``; its functions then take ``(inputs, ..., training)``,
the others ``(inputs, ...)``.

Where traces are made matters, because ``tf.function`` keys its traces by context and
``tf.saved_model.save`` looks them up again from its own:

* every trace is made from the eager context (:func:`call_traced` lifts out of the parent's
  graph with ``tf.init_scope``) and inside TensorFlow's save context
  (:func:`in_save_context`);
* every trace is made for the spec names ``save`` will ask for (:func:`canonical_spec`).

Otherwise ``save`` would not find the traces and would trace every function again, outside
:func:`children_call_traced_functions`, with all the children's ops inlined.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.common import global_state
from keras.src.layers.layer import CallContext

# TensorFlow has no public way to enter its save context; see in_save_context.
from tensorflow.python.saved_model import save_context

__all__ = [
    "LayerCallFunctions",
    "call_argument_names",
    "call_traced",
    "canonical_signature",
    "canonical_spec",
    "children_call_traced_functions",
    "descendants",
    "in_save_context",
    "relaxed_spec",
    "uses_training",
    "with_parameters",
]

_CALL_CONTEXT = "current_call_ctx"


def descendants(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layer's sublayers, recursively, each once, in Keras' own order."""
    return layer._flatten_layers(include_self=False)


def uses_training(layer: keras.layers.Layer) -> bool:
    """Whether the layer's functions take ``training``.

    True when the layer's own call takes ``training`` or any descendant's call does. Keras
    3's Functional and Sequential models always take it (as tf_keras' graph networks
    always expect it), even when none of their layers uses it.
    """
    if layer._call_has_training_arg:
        return True
    return any(sub._call_has_training_arg for sub in descendants(layer))


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
    # The unbound method: the instance's `call` may be swapped while saving.
    parameters = list(inspect.signature(type(layer).call).parameters.values())[1:]
    names = ["inputs"]
    for parameter in parameters[1:]:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        if parameter.default is not parameter.empty or parameter.name in ("training", "mask"):
            break
        names.append(parameter.name)
    return tuple(names)


def with_parameters(function: Any, names: tuple[str, ...], name: str) -> Any:
    """``function(*args)`` presented to ``tf.function`` with parameters ``names``.

    The saved function's arguments then carry those names (``inputs``, ``states``,
    ``training``), whatever the layer.
    """
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    function.__signature__ = inspect.Signature([inspect.Parameter(n, positional) for n in names])
    function.__name__ = name
    return function


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


@contextlib.contextmanager
def _isolated_losses(layer: keras.layers.Layer) -> Iterator[list]:
    """Clear the losses of ``layer`` and its descendants; yield a list filled on exit.

    On exit the list receives the losses added meanwhile (Keras' ``layer.losses`` without the
    weight regularization losses) and the previous losses are put back.
    """
    layers = [layer, *descendants(layer)]
    saved = [(sub._losses[:], set(sub._loss_ids)) for sub in layers]
    collected: list = []
    try:
        for sub in layers:
            sub._losses.clear()
            sub._loss_ids.clear()
        yield collected
        for sub in layers:
            collected.extend(sub._losses)
    finally:
        for sub, (losses, loss_ids) in zip(layers, saved, strict=True):
            sub._losses[:] = losses
            sub._loss_ids.clear()
            sub._loss_ids.update(loss_ids)


@contextlib.contextmanager
def _fresh_call_context(layer: keras.layers.Layer, training: bool | None) -> Iterator[None]:
    """Make ``layer`` the outermost Keras call, with ``training`` set for its descendants."""
    outer = global_state.get_global_attribute(_CALL_CONTEXT)
    context = CallContext(entry_layer=layer)
    if training is not None:
        context.set_value("training", training)
    global_state.set_global_attribute(_CALL_CONTEXT, context)
    try:
        yield
    finally:
        global_state.set_global_attribute(_CALL_CONTEXT, outer)


# Attributes in which a recurrent cell keeps the dropout masks of the current sequence
# (Keras' DropoutRNNCell): made at the first step, reused by the others.
_SEQUENCE_STATE = ("_dropout_mask", "_recurrent_dropout_mask")


def _keeps_sequence_state(layer: keras.layers.Layer) -> bool:
    return hasattr(layer, "reset_dropout_mask")


@contextlib.contextmanager
def _temporarily(obj: Any, **values: Any) -> Iterator[None]:
    """Set instance attributes, then restore them (or delete those that were not set)."""
    missing = object()
    saved = {name: obj.__dict__.get(name, missing) for name in values}
    try:
        for name, value in values.items():
            object.__setattr__(obj, name, value)
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                obj.__dict__.pop(name, None)
            else:
                object.__setattr__(obj, name, value)


# Trivial functions, one per argument name the saved functions use (made on first use).
_PROBES: dict[str, Any] = {}


def _probe(argument: str) -> Any:
    if argument not in _PROBES:

        def probe(value):
            del value
            return tf.constant(0)

        _PROBES[argument] = tf.function(
            with_parameters(probe, (argument,), f"probe_{argument}"), autograph=False
        )
    return _PROBES[argument]


def canonical_spec(structure: Any, argument: str = "inputs") -> Any:
    """The spec ``tf.saved_model.save`` will ask a function for, given its input.

    ``save`` lists a function's traces by their recorded input signature, in which
    TensorFlow names every spec after the argument (``inputs``, ``inputs_0``, ...), and a
    named spec does not find a trace made for an unnamed one. Tracing with the names
    TensorFlow gives means each layer is traced once, not once more while saving. The names
    are read from a trivial probe function with the same argument name.
    """
    with tf.init_scope():
        probe_trace = _probe(argument).get_concrete_function(relaxed_spec(structure))
    return probe_trace.structured_input_signature[0][0]


def canonical_signature(arguments: tuple, names: tuple[str, ...]) -> tuple:
    """:func:`canonical_spec` of each tensor argument, under its name."""
    return tuple(canonical_spec(a, n) for a, n in zip(arguments, names, strict=True))


def call_traced(function: Any, arguments: tuple, names: tuple[str, ...], *literal_args: Any) -> Any:
    """Call ``function(*arguments, *literal_args)`` from inside another trace, eagerly traced.

    ``tf.function`` keys its traces by the context they are made in. A trace made while a
    parent is being traced would not be found again by ``tf.saved_model.save``, which asks
    from the eager context, and it would trace everything once more (inlining the children's
    ops). So the concrete function is made (or found) in the eager context and called here.
    ``names`` are the function's tensor argument names.
    """
    with tf.init_scope():
        specs = canonical_signature(arguments, names)
        concrete = function.get_concrete_function(*specs, *literal_args)
    return concrete(*arguments, *literal_args)


class LayerCallFunctions:
    """The ``tf.function`` call endpoints of one layer, all traced from the same inputs.

    Attributes:
        layer: the Keras layer.
        argument_names: the names of the functions' tensor arguments (``inputs`` first).
        takes_training: whether the functions take a ``training`` argument after them.
        signatures: the signatures (a spec structure per tensor argument) the layer was
            traced with, in order of discovery.
    """

    def __init__(self, layer: keras.layers.Layer) -> None:
        self.layer = layer
        self.argument_names = call_argument_names(layer)
        self.takes_training = uses_training(layer)
        self.signatures: list[tuple] = []
        self._signature_keys: set[str] = set()
        self._original_call = layer.call
        self.call_and_return_conditional_losses = self._make_core_function()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.argument_names + (("training",) if self.takes_training else ())

    # -- the core trace ------------------------------------------------------------------

    def _make_core_function(self) -> tf.types.experimental.GenericFunction:
        layer = self.layer
        count = len(self.argument_names)

        def core(*args: Any) -> tuple[Any, list]:
            # Inside the layer's own trace its real call runs (not the wrapper installed
            # for its parents), and its activity regularizer is left out: that one belongs
            # to call_and_return_all_conditional_losses.
            arguments, training = args[:count], (args[count] if len(args) > count else None)
            kwargs = {"training": training} if layer._call_has_training_arg else {}
            # A cell traced from inside its RNN's loop must not capture the loop's masks.
            fresh_state = dict.fromkeys(_SEQUENCE_STATE) if _keeps_sequence_state(layer) else {}
            with (
                _temporarily(
                    layer, call=self._original_call, activity_regularizer=None, **fresh_state
                ),
                _fresh_call_context(layer, training),
                _isolated_losses(layer) as losses,
            ):
                outputs = layer(*arguments, **kwargs)
            return outputs, losses

        name = f"{layer.name}_layer_call_and_return_conditional_losses"
        return tf.function(with_parameters(core, self.parameter_names, name))

    def _training_args(self, training: bool | None) -> tuple:
        return (bool(training),) if self.takes_training else ()

    def trace(self, signature: tuple, training: bool | None = None) -> None:
        """Trace the core function for ``signature`` (and ``training``) unless already done."""
        signature = canonical_signature(signature, self.argument_names)
        key = repr((signature, bool(training) if self.takes_training else None))
        if key in self._signature_keys:
            return
        self._signature_keys.add(key)
        if signature not in self.signatures:
            self.signatures.append(signature)
        self.call_and_return_conditional_losses.get_concrete_function(
            *signature, *self._training_args(training)
        )

    def trace_all_modes(self, signature: tuple) -> None:
        """Trace the core function for ``signature``, in both training modes where it matters."""
        for training in (True, False) if self.takes_training else (None,):
            self.trace(signature, training)

    # -- used from the parent's trace -----------------------------------------------------

    def _tensor_arguments(self, args: tuple, kwargs: dict) -> tuple | None:
        """The call's tensor arguments in order, or None if the functions cannot express it."""
        count = len(self.argument_names)
        if len(args) > count:
            return None
        arguments = list(args)
        for name in self.argument_names[len(args) :]:
            if name not in kwargs:
                return None
            arguments.append(kwargs.pop(name))
        if any(value is not None for value in tf.nest.flatten(kwargs)):
            return None
        if not all(tf.is_tensor(x) for x in tf.nest.flatten(arguments)):
            return None
        return tuple(arguments)

    def replacement_call(self, *args: Any, **kwargs: Any) -> Any:
        """Stand-in for ``layer.call`` while a parent is traced: calls the traced function.

        Calls that the functions cannot express (optional tensor arguments, a mask, a
        tensor-valued ``training``) fall back to the layer's real call.
        """
        training = kwargs.pop("training", None)
        mask = kwargs.pop("mask", None)
        if training is None:
            context = global_state.get_global_attribute(_CALL_CONTEXT)
            training = context.get_value("training") if context is not None else None
        arguments = None
        if all(m is None for m in tf.nest.flatten(mask)) and (
            training is None or isinstance(training, bool)
        ):
            arguments = self._tensor_arguments(args, dict(kwargs))
        if arguments is None:
            if self.layer._call_has_training_arg and training is not None:
                kwargs["training"] = training
            if mask is not None:
                kwargs["mask"] = mask
            return self._original_call(*args, **kwargs)
        with tf.init_scope():
            self.trace_all_modes(relaxed_spec(arguments))
        if _keeps_sequence_state(self.layer):
            # Its traced function would draw new dropout masks at every step of the
            # sequence; the real call shares one across steps, as the RNN expects.
            return self._original_call(*args, training=training, **kwargs)
        outputs, losses = call_traced(
            self.call_and_return_conditional_losses,
            arguments,
            self.argument_names,
            *self._training_args(training),
        )
        # Keras' own add_loss: a Functional model overrides it to raise NotImplementedError
        # (it only takes symbolic losses), yet its sublayers' losses must be re-added.
        for loss in losses:
            keras.layers.Layer.add_loss(self.layer, loss)
        return outputs

    # -- the endpoints saved with the layer ---------------------------------------------

    def endpoints(self) -> dict[str, tf.types.experimental.GenericFunction]:
        """All call functions, traced for every recorded signature (core first traced)."""
        layer = self.layer
        core = self.call_and_return_conditional_losses
        names, count = self.argument_names, len(self.argument_names)
        regularizer = layer.activity_regularizer
        activity_fn = None
        if regularizer is not None:

            def activity_regularizer(output):
                return regularizer(output)

            activity_regularizer.__name__ = f"{layer.name}_activity_regularizer"
            activity_fn = tf.function(activity_regularizer)

        def all_losses(*args):
            arguments, training = args[:count], args[count:]
            outputs, losses = call_traced(core, arguments, names, *training)
            losses = list(losses)
            if activity_fn is not None:
                for output in tf.nest.flatten(outputs):
                    loss = call_traced(activity_fn, (output,), ("output",))
                    if output.shape.rank:
                        # As Keras 3's __call__ does: the loss per example of the batch.
                        batch = tf.cast(tf.shape(output)[0], loss.dtype)
                        loss = tf.math.divide_no_nan(loss, batch)
                    losses.append(loss)
            return outputs, losses

        def call_fn(*args):
            return call_traced(core, args[:count], names, *args[count:])[0]

        parameters = self.parameter_names
        functions = {
            "__call__": tf.function(
                with_parameters(call_fn, parameters, f"{layer.name}_layer_call_fn"),
                autograph=False,
            ),
            "call_and_return_conditional_losses": core,
            # Without an activity regularizer "all" the conditional losses are the core's:
            # the same function is saved under both names, and traced once.
            "call_and_return_all_conditional_losses": core,
        }
        wrappers = ["__call__"]
        if activity_fn is not None:
            all_name = f"{layer.name}_layer_call_and_return_all_conditional_losses"
            functions["call_and_return_all_conditional_losses"] = tf.function(
                with_parameters(all_losses, parameters, all_name), autograph=False
            )
            functions["activity_regularizer_fn"] = activity_fn
            wrappers.append("call_and_return_all_conditional_losses")
        for signature in self.signatures:
            for training in (True, False) if self.takes_training else (None,):
                for name in wrappers:
                    functions[name].get_concrete_function(
                        *signature, *self._training_args(training)
                    )
        return functions


@contextlib.contextmanager
def children_call_traced_functions(
    collections: Iterable[LayerCallFunctions], root: keras.layers.Layer
) -> Iterator[None]:
    """While active, every layer but ``root`` calls its traced core function."""
    with contextlib.ExitStack() as stack:
        for functions in collections:
            if functions.layer is not root:
                stack.enter_context(_temporarily(functions.layer, call=functions.replacement_call))
        yield


def in_save_context(options: tf.saved_model.SaveOptions) -> contextlib.AbstractContextManager:
    """TensorFlow's save context, to trace in.

    ``tf.function`` keys its traces by context, and ``tf.saved_model.save`` looks them up
    from inside this one. Traces made outside it would not be found: ``save`` would trace
    every function again, and those traces would inline the children's ops. Tracing inside
    it, then saving with the same ``options``, saves exactly the traces made here.
    """
    return save_context.save_context(options)
