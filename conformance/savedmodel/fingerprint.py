"""The canonical signature fingerprint of a saved model.

What a consumer of the format depends on, and nothing TensorFlow generates per save: the
serving signatures (input and output names, dtypes, shapes), the ``keras_api`` structure
(attribute names, layer order, variable shapes and dtypes, the input signatures of the call
functions) and TensorFlow's own ``signature_def_hash`` from ``fingerprint.pb``. Function names
such as ``__inference_call_1234`` are left out: they differ run to run.
"""

import hashlib
import json
import os

from conformance.savedmodel import tree


def canonical(path):
    """The fingerprint document of the SavedModel at ``path`` (JSON-able, sorted)."""
    loaded = tree.load(path)
    return {
        "signatures": {
            key: dict(zip(("inputs", "outputs"), tree.serving_signature(loaded, key)))
            for key in sorted(loaded.signatures.keys())
        },
        "keras_api": _layer_structure(loaded),
        "signature_def_hash": signature_def_hash(path),
    }


def digest(document):
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(path):
    """``(digest, document)`` for the SavedModel at ``path``."""
    document = canonical(path)
    return digest(document), document


def signature_def_hash(path):
    """TensorFlow's ``signature_def_hash`` as a string, or None without ``fingerprint.pb``."""
    if not os.path.exists(os.path.join(path, "fingerprint.pb")):
        return None
    from conformance.environment import quiet_tensorflow

    tf = quiet_tensorflow()
    return str(tf.saved_model.experimental.read_fingerprint(str(path)).signature_def_hash)


def _variables(node, name):
    return [[v.dtype.name, v.shape.as_list()] for v in node.objects(name)]


def _layer_structure(loaded):
    layers = tree.walk(loaded)
    index_of = {id(layer.obj): i for i, layer in enumerate(layers)}
    structure = []
    for layer in layers:
        entry = {"path": layer.path, "has_keras_api": layer.keras_api is not None}
        if layer.keras_api is not None:
            entry.update(
                attributes=sorted(
                    name
                    for name in (
                        *tree.LAYER_OBJECTS,
                        *tree.CALL_FUNCTIONS,
                        "activity_regularizer_fn",
                        *tree.ROOT_FUNCTIONS,
                    )
                    if getattr(layer.keras_api, name, None) is not None
                ),
                variables=_variables(layer, "variables"),
                trainable_variables=_variables(layer, "trainable_variables"),
                non_trainable_variables=_variables(layer, "non_trainable_variables"),
                layers=[index_of[id(child)] for child in layer.children],
                regularization_losses=len(layer.objects("regularization_losses")),
                functions={
                    name: sorted(
                        _input_signature(concrete)
                        for concrete in tree.concrete_functions(layer.function(name))
                    )
                    for name in tree.CALL_FUNCTIONS
                },
            )
        structure.append(entry)
    return structure


def _input_signature(concrete):
    args, kwargs = concrete.structured_input_signature
    return json.dumps(
        {"args": [_spec(a) for a in args], "kwargs": {k: _spec(v) for k, v in kwargs.items()}},
        sort_keys=True,
    )


def _spec(value):
    from conformance.environment import quiet_tensorflow

    tf = quiet_tensorflow()
    if isinstance(value, tf.TensorSpec):
        shape = None if value.shape.rank is None else value.shape.as_list()
        return {"dtype": value.dtype.name, "shape": shape}
    if isinstance(value, dict):
        return {k: _spec(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_spec(v) for v in value]
    return value
