"""Calling what a SavedModel holds: call functions with or without ``training``, losses."""

import numpy as np

from conformance.savedmodel.tree import concrete_functions, serving_signature


def training_of(concrete):
    """The ``training`` value a concrete call function was traced with (None if it takes none).

    The ``training`` keyword when the trace has one, else the first Python bool after the
    inputs (a positional ``training``).
    """
    args, kwargs = concrete.structured_input_signature
    if "training" in kwargs:
        return kwargs["training"]
    return next((a for a in args[1:] if isinstance(a, bool)), None)


def _takes_training(concrete):
    args, kwargs = concrete.structured_input_signature
    return "training" in kwargs or any(isinstance(a, bool) for a in args[1:])


def training_values(function):
    """The ``training`` values a call function was traced for (True / False / None)."""
    return {training_of(c) for c in concrete_functions(function) if _takes_training(c)}


def call(function, inputs, *, training):
    """Call a saved call function; ``training`` is passed when it was traced with one."""
    if training_values(function):
        return function(inputs, training=training)
    return function(inputs)


def flat_numpy(structure):
    import tensorflow as tf

    return [np.asarray(t) for t in tf.nest.flatten(structure)]


def losses_total(losses):
    """Sum of a list of scalar loss tensors (0.0 for none), in float64."""
    return float(sum(np.asarray(loss, dtype=np.float64) for loss in losses))


OPEN_LENGTH = 8


def synthetic_call_args(concrete, batch=2, seed=0):
    """``(args, kwargs)`` matching one traced signature, tensors made up, batch ``batch``.

    Floats are drawn uniformly from [0, 1) with a seed, integers are zeros: a float trace may
    feed ids (an inner CategoryEncoding of a Sequential over int inputs sees them as floats),
    and both cast to the id 0, which every vocabulary contains. Python values of the signature
    (``training``) are kept.
    """
    import tensorflow as tf

    args, kwargs = concrete.structured_input_signature
    rng = np.random.default_rng(seed)

    def make(spec):
        if not isinstance(spec, tf.TensorSpec):
            return spec
        # an open (None) non-batch axis gets OPEN_LENGTH: drawn inputs are at most 8 long,
        # and no layer that takes an open axis needs a longer one
        shape = [
            (batch if i == 0 else OPEN_LENGTH) if d is None else d
            for i, d in enumerate(spec.shape.as_list())
        ]
        if spec.dtype.is_floating:
            values = rng.uniform(0.0, 1.0, shape)
            return tf.constant(values.astype(spec.dtype.as_numpy_dtype))
        return tf.zeros(shape, dtype=spec.dtype)

    return tf.nest.map_structure(make, args), tf.nest.map_structure(make, kwargs)


def traced_calls(call_fn):
    """``(training, args, kwargs)`` for each traced signature of a saved call function.

    ``args``/``kwargs`` are made-up tensors matching the trace (:func:`synthetic_call_args`),
    ``training`` the value it was traced with (None if it takes none).
    """
    for concrete in concrete_functions(call_fn):
        args, kwargs = synthetic_call_args(concrete)
        yield training_of(concrete), args, kwargs


def inference_call_args(call_fn):
    """``(args, kwargs)`` for the first inference-mode trace of a call function, or None."""
    for training, args, kwargs in traced_calls(call_fn):
        if not training:
            return args, kwargs
    return None


def serving_feed(loaded, spec, data):
    """The serving signature's keyword inputs for ``data``.

    Inputs are matched by name; a subclassed model's serving inputs are named by the saver
    (tf_keras: ``input_1``...), so those are matched in order.
    """
    inputs, _ = serving_signature(loaded)
    names = list(spec.input_names())
    if sorted(inputs) == sorted(names):
        return {name: data[name] for name in names}
    ordered = sorted(inputs, key=lambda key: (len(key), key))
    return {key: data[name] for key, name in zip(ordered, names)}
