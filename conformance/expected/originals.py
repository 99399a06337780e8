"""What the original, in-memory model computes: the values saved files are checked against.

The suite builds models with Keras 3 or with tf_keras (``Implementation.framework``); the two
keep losses differently, so the differences are confined here.
"""

import contextlib
import sys

import numpy as np


def is_standin(obj):
    """Whether ``obj`` stands in for a model or layer living in another process
    (``conformance.remote``): it answers these questions itself, from the worker's reply."""
    return bool(getattr(obj, "conformance_standin", False))


def framework_of(model):
    """``"tf_keras"`` for a tf_keras layer or model (the strategies' own classes included)."""
    # Not imported here: a model can only be a tf_keras one once tf_keras is imported.
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None and isinstance(model, tf_keras.layers.Layer):
        return "tf_keras"
    return "keras"


def sublayers(layer):
    """A layer's direct sub-layers, as the format lists them in ``keras_api.layers``.

    A model's ``layers``; for any other layer, the layers it tracks directly (an RNN's
    cell, the projections of an attention layer, a wrapper's inner layer).
    """
    if is_standin(layer):
        return layer.sublayers()
    if framework_of(layer) == "keras":
        import keras as K
    else:
        import tf_keras as K
    if isinstance(layer, K.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def outputs(model, inputs, *, training):
    """The model's outputs as a flat list of numpy arrays."""
    import tensorflow as tf

    result = model(inputs, training=training)
    return [np.asarray(t) for t in tf.nest.flatten(result)]


def weight_regularization_total(model):
    """The sum of the weight-regularization losses (they do not depend on inputs)."""
    if is_standin(model):
        return model.regularization_total
    if framework_of(model) == "keras":
        losses = model._get_regularization_losses()
    else:
        losses = [
            loss()
            for layer in model._flatten_layers(include_self=True)
            for loss in layer._callable_losses
        ]
    return float(sum(np.asarray(loss, dtype=np.float64) for loss in losses))


def weight_regularization_count(model):
    if is_standin(model):
        return model.regularization_count
    if framework_of(model) == "keras":
        return len(model._get_regularization_losses())
    return sum(len(layer._callable_losses) for layer in model._flatten_layers(include_self=True))


def call_losses_total(model, inputs, *, training):
    """The sum of the losses a call adds (activity regularizers and ``add_loss``)."""
    model(inputs, training=training)
    total = float(sum(np.asarray(loss, dtype=np.float64) for loss in model.losses))
    return total - weight_regularization_total(model)


def variables(model):
    """``(all, trainable, non_trainable)`` as lists of the model's variables."""
    return (
        list(model.variables),
        list(model.trainable_variables),
        list(model.non_trainable_variables),
    )


def optimizer_variables(model):
    """The model's optimizer variables ([] without an optimizer), in either framework."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    found = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
    return list(found)


def variable_value(variable):
    return np.asarray(variable.numpy())


def uses_training(layer):
    """Whether the layer's call, or a descendant's, takes ``training`` (the format then gives
    the layer's call functions a ``training`` argument)."""
    if is_standin(layer):
        return layer.uses_training
    if framework_of(layer) == "keras":
        own = lambda sub: bool(sub._call_has_training_arg)  # noqa: E731
    else:
        own = lambda sub: bool(sub._expects_training_arg)  # noqa: E731
    return own(layer) or any(own(sub) for sub in layer._flatten_layers(include_self=False))


def layers_by_name(model):
    """Every layer under ``model`` (itself excluded) by name, each once."""
    if is_standin(model):
        return model.layers_by_name()
    return {layer.name: layer for layer in model._flatten_layers(include_self=False)}


def seed_states(model):
    """``(layer name, what, value)`` for every seed a layer keeps: Keras 3 ``SeedGenerator``
    states, tf_keras random generators' seeds and states, and ``seed`` attributes."""
    out = []
    for layer in model._flatten_layers(include_self=True):
        seed = layer.__dict__.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            out.append((layer.name, "seed", seed))
        for index, generator in enumerate(getattr(layer, "_seed_generators", None) or []):
            state = variable_value(generator.state)
            out.append((layer.name, f"SeedGenerator {index} state", state))
        generator = layer.__dict__.get("_random_generator")
        if generator is not None:
            out.append((layer.name, "random generator seed", getattr(generator, "_seed", None)))
            state = getattr(getattr(generator, "_generator", None), "state", None)
            if state is not None:
                out.append((layer.name, "random generator state", variable_value(state)))
    return out


def expects_training(model):
    """Whether the model's call takes a ``training`` argument."""
    if is_standin(model):
        return model.expects_training
    if framework_of(model) == "keras":
        return bool(model._call_has_training_arg)
    return bool(model._expects_training_arg)


@contextlib.contextmanager
def preserved(*variable_lists):
    """Restore every variable's value on exit (training-mode calls update statistics)."""
    # A stand-in's variables need no restoring: its worker restores them after every call.
    variables_ = [v for variables in variable_lists for v in variables if not is_standin(v)]
    values = [np.array(v.numpy()) for v in variables_]
    try:
        yield
    finally:
        for variable, value in zip(variables_, values):
            variable.assign(value)


def layers_by_saved_path(model):
    """Map saved-tree paths ("root.layers[0]...") to the model's layers, each layer at the
    first place it is reached (as ``savedmodel.tree.walk`` lists the saved objects)."""
    return dict(_layer_paths(model, shared_once=True))


def all_layer_paths(model):
    """Every ``(path, layer)`` of the model's layer tree, depth first, a shared layer at each
    of its places."""
    return _layer_paths(model, shared_once=False)


def _layer_paths(model, *, shared_once):
    out, seen = [], set()

    def visit(layer, path):
        if shared_once and id(layer) in seen:
            return
        seen.add(id(layer))
        out.append((path, layer))
        for index, child in enumerate(sublayers(layer)):
            visit(child, f"{path}.layers[{index}]")

    visit(model, "root")
    return out


def is_input_layer(layer):
    name = layer.class_name if is_standin(layer) else type(layer).__name__
    return name == "InputLayer"
