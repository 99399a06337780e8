"""Tracing a layer's call functions, each layer once, reusing its children's traces.

:func:`trace_layers` traces the root for its signature
(:func:`reference_impl.signatures.root_signature`), which reaches every layer it calls with
the shapes it calls them with; then any built layer not reached that way, for the signature
it was built for (a revived layer, for those it was saved with). Layers that are not built
(or a root whose inputs are unknown) get no functions and one warning each.

Every saved layer gets a :class:`LayerCallFunctions`. Its *core* function is
``call_and_return_conditional_losses``: it runs the layer's own ``__call__`` on the inputs and
returns ``(outputs, losses)``, where ``losses`` are the input-dependent losses that the layer
and its descendants added with ``add_loss`` (the layer's own activity regularizer excluded).
The other call functions are thin wrappers around the core one, so all call functions of a
layer are traced from the same inputs. The functions take the layer's tensor arguments (see
:mod:`reference_impl.signatures`), then ``training`` as a Python boolean: a layer whose call,
or a descendant's call, takes ``training`` is traced with ``True`` and with ``False``; its
functions then take ``(inputs, ..., training)``, the others ``(inputs, ...)``.

Why the tracing is arranged as it is (the functions below rely on this and do not repeat it):
saving takes time linear in the model's size only if each layer's own ops are traced once
per signature, and two things are needed for that.

* Children are called as traced functions. While :func:`children_call_traced_functions` is
  active, the ``call`` of every non-root layer is replaced (on the instance, restored
  afterwards) by a wrapper that calls that layer's core ``tf.function`` and re-adds the
  returned losses. When a parent is traced its children are therefore one function-call op
  each, however deep the model is. The wrapper also records the signatures a layer is
  reached with, which is how a shared layer called on two shapes gets a trace for each.
* ``tf.saved_model.save`` finds the traces made here. ``tf.function`` keys its traces by the
  context they are made in and by their input specs, and ``save`` looks them up from its own
  context, by the specs it records. So every trace is made

  - from the eager context (:func:`call_traced` lifts out of the parent's graph with
    ``tf.init_scope``);
  - inside TensorFlow's save context (:func:`in_save_context`, with the options ``save`` is
    then given);
  - for the spec names ``save`` will ask for (:func:`canonical_spec`: TensorFlow names every
    spec after its argument, ``inputs``, ``inputs_0``, ..., and a named spec does not find a
    trace made for an unnamed one).

  Otherwise ``save`` would trace every function again, outside
  :func:`children_call_traced_functions`, with all the children's ops inlined. For the same
  reason the children stay swapped while ``save`` writes: whatever TensorFlow does trace
  again still goes through the traced functions.

Loss bookkeeping: Keras keeps the losses of the last call in ``layer._losses``. A trace must
neither see losses from outside nor leave graph tensors behind, so :func:`_isolated_losses`
saves the losses of the traced layer and its descendants, clears them for the trace, reads
what the trace added, and puts the saved ones back. The model's own losses are therefore the
same after a save as before it.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import tensorflow as tf

from reference_impl import signatures
from reference_impl._compat import CallContext, get_call_context, save_context, set_call_context
from reference_impl.metadata import literal_call_arguments
from reference_impl.revive import RevivedLayer

__all__ = [
    "LayerCallFunctions",
    "call_collections",
    "call_traced",
    "canonical_signature",
    "canonical_spec",
    "children_call_traced_functions",
    "descendants",
    "in_save_context",
    "trace_layers",
    "uses_training",
    "with_parameters",
]


# -- what save calls -----------------------------------------------------------------------


def call_collections(
    model: keras.layers.Layer, layers: list[keras.layers.Layer]
) -> dict[int, LayerCallFunctions]:
    """A :class:`LayerCallFunctions` per built layer, by ``id(layer)``; warn for the others."""
    collections: dict[int, LayerCallFunctions] = {}
    for layer in layers:
        if not _has_call_functions(layer):
            continue
        if not layer.built:
            _warn_skipped(layer, "it is not built")
            continue
        collections[id(layer)] = LayerCallFunctions(layer)
    return collections


def trace_layers(
    model: keras.layers.Layer,
    layers: list[keras.layers.Layer],
    collections: dict[int, LayerCallFunctions],
) -> dict[int, dict[str, Any]]:
    """Trace the call functions; return them by ``id(layer)``.

    Layers that cannot be traced are removed from ``collections`` (with a warning).
    """
    root_signature = signatures.root_signature(model) if id(model) in collections else None
    if root_signature is not None:
        collections[id(model)].trace_all_modes(root_signature)
    for layer in layers:
        collection = collections.get(id(layer))
        if collection is None:
            continue
        if isinstance(layer, RevivedLayer):
            # A revived layer is not called by its parent: it gets what it was saved with,
            # keyword-argument values included.
            for signature, literals in layer.saved_call_variants:
                collection.trace_all_modes(signature, literals)
            continue
        if collection.signatures:
            collection.trace_defaults()
            continue
        signature = signatures.built_signature(layer)
        if signature is None:
            what = "its inputs are not defined" if layer is model else "no input shape known"
            _warn_skipped(layer, what)
            del collections[id(layer)]
            continue
        try:
            collection.trace_all_modes(signature)
        except Exception as error:  # a layer we cannot call alone
            _warn_skipped(layer, f"calling it on {signature} failed ({type(error).__name__})")
            del collections[id(layer)]
    for collection in collections.values():
        collection.warn_literals()
    functions = {key: collection.endpoints() for key, collection in collections.items()}
    # Like tf_keras, only a model (not a bare layer) gets a default serving signature.
    if id(model) in functions and root_signature is not None and isinstance(model, keras.Model):
        functions[id(model)]["_default_save_signature"] = _serving_function(
            model, root_signature, collections
        )
    return functions


def _has_call_functions(layer: keras.layers.Layer) -> bool:
    """Input layers have nothing to call, nor revived layers saved without functions."""
    if isinstance(layer, RevivedLayer):
        return bool(layer.saved_input_signatures)
    return not isinstance(layer, keras.layers.InputLayer)


def _warn_skipped(layer: keras.layers.Layer, reason: str) -> None:
    warnings.warn(
        f"Skipping full serialization of Keras layer '{layer.name}' "
        f"({type(layer).__name__}): {reason}. It is saved without call functions.",
        stacklevel=3,
    )


def _serving_function(
    model: keras.layers.Layer,
    signature: Any,
    collections: dict[int, LayerCallFunctions],
) -> Any:
    """The ``serving_default`` function: inference-mode call, outputs keyed by name.

    ``signature`` holds named specs: those names are the serving inputs' names. As tf_keras'
    ``default_save_signature`` it is traced with every layer's own call, not the traced
    functions the layers' parents call while saving: one flat function without calls into
    the saved layer functions, which the TFLite converter needs.
    """
    argument_names = collections[id(model)].argument_names
    training = False if collections[id(model)].takes_training else None
    kwargs = {"training": False} if model._call_has_training_arg else {}

    def serve(*arguments):
        with (
            _own_calls(collections.values(), model),
            _fresh_call_context(model, training),
            _isolated_losses(model),
        ):
            outputs = model(*arguments, **kwargs)
        names = signatures.output_names(model, outputs)
        if names is None:
            return dict(outputs)
        return dict(zip(names, tf.nest.flatten(outputs), strict=True))

    function = tf.function(
        with_parameters(serve, argument_names, "_default_save_signature"),
        input_signature=list(signature),
        autograph=False,
    )
    function.get_concrete_function()
    return function


@contextlib.contextmanager
def _own_calls(
    collections: Iterable[LayerCallFunctions], root: keras.layers.Layer
) -> Iterator[None]:
    """Undo :func:`children_call_traced_functions` inside the block, with fresh RNN state.

    A cell keeps the dropout masks of the sequence it runs in; a trace must not leave its
    graph tensors there for the next one.
    """
    with contextlib.ExitStack() as stack:
        for functions in collections:
            if functions.layer is not root:
                stack.enter_context(_temporarily(functions.layer, call=functions._original_call))
        for layer in [root, *descendants(root)]:
            if _keeps_sequence_state(layer):
                stack.enter_context(_temporarily(layer, **dict.fromkeys(_SEQUENCE_STATE)))
        yield


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
    """TensorFlow's save context, to trace in; then save with the same ``options``."""
    return save_context(options)


# -- one layer's functions -----------------------------------------------------------------


class LayerCallFunctions:
    """The ``tf.function`` call endpoints of one layer, all traced from the same inputs.

    Attributes:
        layer: the Keras layer.
        argument_names: the names of the functions' tensor arguments (``inputs`` first).
        literal_defaults: the call's Python-valued keyword arguments and their defaults
            (:func:`reference_impl.metadata.literal_call_arguments`); the functions take
            them after the tensor arguments, as constants traced per value.
        takes_training: whether the functions take a ``training`` argument after them.
        signatures: the signatures (a spec structure per tensor argument) the layer was
            traced with, in order of discovery.
        variants: ``(signature, literal values)`` pairs traced, in order of discovery.
    """

    def __init__(self, layer: keras.layers.Layer) -> None:
        self.layer = layer
        self.argument_names = signatures.call_argument_names(layer)
        self.literal_defaults = literal_call_arguments(layer)
        self.takes_training = uses_training(layer)
        self.signatures: list[tuple] = []
        self.variants: list[tuple[tuple, tuple]] = []
        self._signature_keys: set[str] = set()
        self._original_call = layer.call
        self.call_and_return_conditional_losses = self._make_core_function()

    @property
    def literal_names(self) -> tuple[str, ...]:
        return tuple(self.literal_defaults)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        training = ("training",) if self.takes_training else ()
        return self.argument_names + self.literal_names + training

    def literal_args(self, values: dict | None) -> tuple:
        """The literal arguments in parameter order, defaults where ``values`` lacks one."""
        values = values or {}
        return tuple(values.get(name, default) for name, default in self.literal_defaults.items())

    def trace_defaults(self) -> None:
        """Also trace the default literal values, so a call without them can be revived."""
        if not self.literal_defaults or not self.signatures:
            return
        defaults = self.literal_args(None)
        if not any(literals == defaults for _, literals in self.variants):
            self.trace_all_modes(self.signatures[0], defaults)

    def warn_literals(self) -> None:
        if not self.literal_defaults:
            return
        values = sorted({repr(literals) for _, literals in self.variants})
        warnings.warn(
            f"Layer '{self.layer.name}' ({type(self.layer).__name__}): call argument(s) "
            f"{', '.join(self.literal_names)} are saved as constants for the values traced "
            f"({'; '.join(values)}); a loader without the class cannot call other values.",
            stacklevel=3,
        )

    # -- the core trace ------------------------------------------------------------------

    def _make_core_function(self) -> tf.types.experimental.GenericFunction:
        layer = self.layer
        count = len(self.argument_names)
        literal_names = self.literal_names
        literal_end = count + len(literal_names)

        def core(*args: Any) -> tuple[Any, list]:
            # Inside the layer's own trace its real call runs (not the wrapper installed
            # for its parents), and its activity regularizer is left out: that one belongs
            # to call_and_return_all_conditional_losses.
            arguments = args[:count]
            training = args[literal_end] if len(args) > literal_end else None
            kwargs = {"training": training} if layer._call_has_training_arg else {}
            kwargs.update(zip(literal_names, args[count:literal_end]))
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

    def trace(
        self, signature: tuple, training: bool | None = None, literals: tuple | None = None
    ) -> None:
        """Trace the core function for ``signature`` (``training``, literal values) once."""
        signature = canonical_signature(signature, self.argument_names)
        literals = self.literal_args(None) if literals is None else tuple(literals)
        key = repr((signature, literals, bool(training) if self.takes_training else None))
        if key in self._signature_keys:
            return
        self._signature_keys.add(key)
        if signature not in self.signatures:
            self.signatures.append(signature)
        if (signature, literals) not in self.variants:
            self.variants.append((signature, literals))
        self.call_and_return_conditional_losses.get_concrete_function(
            *signature, *literals, *self._training_args(training)
        )

    def trace_all_modes(self, signature: tuple, literals: tuple | None = None) -> None:
        """Trace the core function for ``signature``, in both training modes where it matters."""
        for training in (True, False) if self.takes_training else (None,):
            self.trace(signature, training, literals)

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
        given = {name: kwargs.pop(name) for name in self.literal_names if name in kwargs}
        literals = self.literal_args(given)
        if training is None:
            context = get_call_context()
            training = context.get_value("training") if context is not None else None
        arguments = None
        if (
            all(m is None for m in tf.nest.flatten(mask))
            and (training is None or isinstance(training, bool))
            and all(type(v) in (bool, int, float, str) for v in literals)
        ):
            arguments = self._tensor_arguments(args, dict(kwargs))
        if arguments is None:
            kwargs.update(given)
            if self.layer._call_has_training_arg and training is not None:
                kwargs["training"] = training
            if mask is not None:
                kwargs["mask"] = mask
            return self._original_call(*args, **kwargs)
        with tf.init_scope():
            self.trace_all_modes(signatures.relaxed_spec(arguments), literals)
        if _keeps_sequence_state(self.layer):
            # Its traced function would draw new dropout masks at every step of the
            # sequence; the real call shares one across steps, as the RNN expects.
            return self._original_call(*args, training=training, **kwargs, **given)
        outputs, losses = call_traced(
            self.call_and_return_conditional_losses,
            arguments,
            self.argument_names,
            *literals,
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
            arguments, literal_and_training = args[:count], args[count:]
            outputs, losses = call_traced(core, arguments, names, *literal_and_training)
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
        for signature, literals in self.variants:
            for training in (True, False) if self.takes_training else (None,):
                for name in wrappers:
                    functions[name].get_concrete_function(
                        *signature, *literals, *self._training_args(training)
                    )
        mask_fn = self._mask_function()
        if mask_fn is not None:
            functions["compute_mask_fn"] = mask_fn
        return functions

    def _mask_function(self) -> Any:
        """``compute_mask_fn(inputs)``: the mask the layer gives its outputs (no incoming mask),
        for a reviver; None for layers that make no mask of their own."""
        layer = self.layer
        if len(self.argument_names) != 1:
            return None
        if _overrides_compute_mask(layer):

            def compute_mask(inputs):
                return layer.compute_mask(inputs, None)

        elif isinstance(layer, keras.Model) and not isinstance(layer, RevivedLayer):
            # A model's output masks come from the layers inside it (an Embedding with
            # mask_zero): a revived model needs them for masked losses and metrics.
            def compute_mask(inputs):
                with _isolated_losses(layer):  # the trace's losses must not stay on the model
                    outputs = layer(inputs, training=False)
                return tf.nest.map_structure(lambda t: getattr(t, "_keras_mask", None), outputs)

        else:
            return None

        function = tf.function(
            with_parameters(compute_mask, ("inputs",), f"{layer.name}_compute_mask"),
            autograph=False,
        )
        made = False
        for signature in self.signatures:
            try:
                concrete = function.get_concrete_function(*signature)
            except Exception:  # a compute_mask that needs the incoming mask
                return None
            if not [m for m in tf.nest.flatten(concrete.structured_outputs) if m is not None]:
                return None
            made = True
        return function if made else None


# -- calling and tracing from inside a trace -----------------------------------------------


def call_traced(function: Any, arguments: tuple, names: tuple[str, ...], *literal_args: Any) -> Any:
    """Call ``function(*arguments, *literal_args)`` from inside another trace, eagerly traced.

    The concrete function is made (or found) in the eager context and called here; ``names``
    are the function's tensor argument names.
    """
    with tf.init_scope():
        specs = canonical_signature(arguments, names)
        concrete = function.get_concrete_function(*specs, *literal_args)
    return concrete(*arguments, *literal_args)


def canonical_signature(arguments: tuple, names: tuple[str, ...]) -> tuple:
    """:func:`canonical_spec` of each tensor argument, under its name."""
    return tuple(canonical_spec(a, n) for a, n in zip(arguments, names, strict=True))


def canonical_spec(structure: Any, argument: str = "inputs") -> Any:
    """The spec ``tf.saved_model.save`` will ask a function for, given its input.

    The names TensorFlow gives are read from a trivial probe function with the same argument
    name; the shapes and dtypes are the structure's own. (The probe's signature may be an
    earlier, more general trace: a tf.function reuses a cached trace whose spec is a
    supertype of the one asked for, so its shapes depend on what the process probed before.)
    """
    relaxed = signatures.relaxed_spec(structure)
    with tf.init_scope():
        probe_trace = _probe(argument).get_concrete_function(relaxed)
    named = probe_trace.structured_input_signature[0][0]
    return tf.nest.map_structure(
        lambda spec, name: tf.TensorSpec(spec.shape, spec.dtype, name=name.name), relaxed, named
    )


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


# -- helpers -------------------------------------------------------------------------------


def _overrides_compute_mask(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, (RevivedLayer, keras.Model)):
        return isinstance(layer, RevivedLayer) and layer.saved_mask_function is not None
    return type(layer).compute_mask is not keras.layers.Layer.compute_mask


def uses_training(layer: keras.layers.Layer) -> bool:
    """Whether the layer's functions take ``training``.

    True when the layer's own call takes ``training`` or any descendant's call does. Keras
    3's Functional and Sequential models always take it (as tf_keras' graph networks
    always expect it), even when none of their layers uses it.
    """
    if layer._call_has_training_arg:
        return True
    return any(sub._call_has_training_arg for sub in descendants(layer))


def descendants(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layer's sublayers, recursively, each once, in Keras' own order."""
    return layer._flatten_layers(include_self=False)


def with_parameters(function: Any, names: tuple[str, ...], name: str) -> Any:
    """``function(*args)`` presented to ``tf.function`` with parameters ``names``.

    The saved function's arguments then carry those names (``inputs``, ``states``,
    ``training``), whatever the layer.
    """
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    function.__signature__ = inspect.Signature([inspect.Parameter(n, positional) for n in names])
    function.__name__ = name
    return function


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
    outer = get_call_context()
    context = CallContext(entry_layer=layer)
    if training is not None:
        context.set_value("training", training)
    set_call_context(context)
    try:
        yield
    finally:
        set_call_context(outer)


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
