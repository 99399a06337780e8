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

The ``training`` argument is passed as a Python boolean: a layer whose call, or a descendant's
call, takes ``training`` is traced with ``True`` and with ``False``; its functions then take
``(inputs, training)``, the others take ``(inputs)``.

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
    "call_traced",
    "canonical_spec",
    "children_call_traced_functions",
    "descendants",
    "in_save_context",
    "relaxed_spec",
    "uses_training",
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


def _probe_inputs(inputs):
    del inputs
    return tf.constant(0)


def _probe_output(output):
    del output
    return tf.constant(0)


# Trivial functions with the argument names the saved functions use.
_PROBES = {
    "inputs": tf.function(_probe_inputs, autograph=False),
    "output": tf.function(_probe_output, autograph=False),
}


def canonical_spec(structure: Any, argument: str = "inputs") -> Any:
    """The spec ``tf.saved_model.save`` will ask a function for, given its input.

    ``save`` lists a function's traces by their recorded input signature, in which
    TensorFlow names every spec after the argument (``inputs``, ``inputs_0``, ...), and a
    named spec does not find a trace made for an unnamed one. Tracing with the names
    TensorFlow gives means each layer is traced once, not once more while saving. The names
    are read from a trivial probe function with the same argument name.
    """
    with tf.init_scope():
        probe_trace = _PROBES[argument].get_concrete_function(relaxed_spec(structure))
    return probe_trace.structured_input_signature[0][0]


def call_traced(function: Any, inputs: Any, *literal_args: Any) -> Any:
    """Call ``function`` from inside another trace, through its eagerly made trace.

    ``tf.function`` keys its traces by the context they are made in. A trace made while a
    parent is being traced would not be found again by ``tf.saved_model.save``, which asks
    from the eager context, and it would trace everything once more (inlining the children's
    ops). So the concrete function is made (or found) in the eager context and called here.
    """
    argument = next(iter(function.function_spec.fullargspec.args))
    with tf.init_scope():
        spec = canonical_spec(inputs, argument)
        concrete = function.get_concrete_function(spec, *literal_args)
    return concrete(inputs, *literal_args)


class LayerCallFunctions:
    """The ``tf.function`` call endpoints of one layer, all traced from the same inputs.

    Attributes:
        layer: the Keras layer.
        takes_training: whether the functions take a ``training`` argument.
        signatures: the input specs the layer was traced with, in order of discovery.
    """

    def __init__(self, layer: keras.layers.Layer) -> None:
        self.layer = layer
        self.takes_training = uses_training(layer)
        self.signatures: list[Any] = []
        self._signature_keys: set[str] = set()
        self._original_call = layer.call
        self.call_and_return_conditional_losses = self._make_core_function()

    # -- the core trace ------------------------------------------------------------------

    def _make_core_function(self) -> tf.types.experimental.GenericFunction:
        layer = self.layer

        def run(inputs: Any, training: bool | None) -> tuple[Any, list]:
            # Inside the layer's own trace its real call runs (not the wrapper installed
            # for its parents), and its activity regularizer is left out: that one belongs
            # to call_and_return_all_conditional_losses.
            kwargs = {"training": training} if layer._call_has_training_arg else {}
            with (
                _temporarily(layer, call=self._original_call, activity_regularizer=None),
                _fresh_call_context(layer, training),
                _isolated_losses(layer) as losses,
            ):
                outputs = layer(inputs, **kwargs)
            return outputs, losses

        if self.takes_training:

            def core(inputs, training):
                return run(inputs, training)
        else:

            def core(inputs):
                return run(inputs, None)

        core.__name__ = f"{layer.name}_layer_call_and_return_conditional_losses"
        return tf.function(core)

    def _training_args(self, training: bool | None) -> tuple:
        return (bool(training),) if self.takes_training else ()

    def trace(self, spec: Any, training: bool | None = None) -> None:
        """Trace the core function for ``spec`` (and ``training``) unless already done."""
        spec = canonical_spec(spec)
        key = repr((spec, bool(training) if self.takes_training else None))
        if key in self._signature_keys:
            return
        self._signature_keys.add(key)
        if spec not in self.signatures:
            self.signatures.append(spec)
        self.call_and_return_conditional_losses.get_concrete_function(
            spec, *self._training_args(training)
        )

    def trace_all_modes(self, spec: Any) -> None:
        """Trace the core function for ``spec``, in both training modes where it matters."""
        for training in (True, False) if self.takes_training else (None,):
            self.trace(spec, training)

    # -- used from the parent's trace -----------------------------------------------------

    def replacement_call(self, *args: Any, **kwargs: Any) -> Any:
        """Stand-in for ``layer.call`` while a parent is traced: calls the traced function.

        Calls that the core function cannot express (extra tensor arguments, a mask, a
        tensor-valued ``training``) fall back to the layer's real call.
        """
        training = kwargs.pop("training", None)
        mask = kwargs.pop("mask", None)
        if training is None:
            context = global_state.get_global_attribute(_CALL_CONTEXT)
            training = context.get_value("training") if context is not None else None
        simple = (
            len(args) == 1
            and not kwargs
            and all(m is None for m in tf.nest.flatten(mask))
            and (training is None or isinstance(training, bool))
        )
        if not simple:
            if self.layer._call_has_training_arg and training is not None:
                kwargs["training"] = training
            if mask is not None:
                kwargs["mask"] = mask
            return self._original_call(*args, **kwargs)
        inputs = args[0]
        with tf.init_scope():
            self.trace_all_modes(relaxed_spec(inputs))
        outputs, losses = call_traced(
            self.call_and_return_conditional_losses, inputs, *self._training_args(training)
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
        regularizer = layer.activity_regularizer
        activity_fn = None
        if regularizer is not None:

            def activity_regularizer(output):
                return regularizer(output)

            activity_regularizer.__name__ = f"{layer.name}_activity_regularizer"
            activity_fn = tf.function(activity_regularizer)

        def with_all_losses(inputs, *training):
            outputs, losses = call_traced(core, inputs, *training)
            losses = list(losses)
            if activity_fn is not None:
                for output in tf.nest.flatten(outputs):
                    loss = call_traced(activity_fn, output)
                    if output.shape.rank:
                        # As Keras 3's __call__ does: the loss per example of the batch.
                        batch = tf.cast(tf.shape(output)[0], loss.dtype)
                        loss = tf.math.divide_no_nan(loss, batch)
                    losses.append(loss)
            return outputs, losses

        def outputs_only(inputs, *training):
            return call_traced(core, inputs, *training)[0]

        if self.takes_training:

            def all_losses(inputs, training):
                return with_all_losses(inputs, training)

            def call_fn(inputs, training):
                return outputs_only(inputs, training)
        else:

            def all_losses(inputs):
                return with_all_losses(inputs)

            def call_fn(inputs):
                return outputs_only(inputs)

        all_losses.__name__ = f"{layer.name}_layer_call_and_return_all_conditional_losses"
        call_fn.__name__ = f"{layer.name}_layer_call_fn"
        functions = {
            "__call__": tf.function(call_fn, autograph=False),
            "call_and_return_conditional_losses": core,
            "call_and_return_all_conditional_losses": tf.function(all_losses, autograph=False),
        }
        if activity_fn is not None:
            functions["activity_regularizer_fn"] = activity_fn
        for spec in self.signatures:
            for training in (True, False) if self.takes_training else (None,):
                for name in ("__call__", "call_and_return_all_conditional_losses"):
                    functions[name].get_concrete_function(spec, *self._training_args(training))
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
