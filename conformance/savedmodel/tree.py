"""Read any Keras SavedModel through plain ``tf.saved_model.load``.

The on-disk clauses check the format, not an implementation's own loader, so everything the
suite looks at on disk goes through here: the ``keras_api`` objects of the root and of every
layer, their object lists and traced functions, and the serving signatures.
"""

from dataclasses import dataclass

from conformance import timing

# What the format puts under ``keras_api`` (tf_keras' serialized_attributes.py).
LAYER_OBJECTS = (
    "variables",
    "trainable_variables",
    "non_trainable_variables",
    "layers",
    "metrics",
    "regularization_losses",
    "layer_regularization_losses",
    "layer_metrics",
)
CALL_FUNCTIONS = (
    "__call__",
    "call_and_return_conditional_losses",
    "call_and_return_all_conditional_losses",
)
ROOT_FUNCTIONS = ("_default_save_signature",)
NOT_KERAS_FORMAT = (
    "this is a plain SavedModel (as tf.saved_model.save writes), not the Keras format"
)
# The root object also carries these directly, outside keras_api.
ROOT_ENDPOINTS = (
    "variables",
    "trainable_variables",
    "regularization_losses",
    "__call__",
    "call_and_return_all_conditional_losses",
)


@dataclass
class SavedLayer:
    """One object of the saved layer tree: where it sits, and its ``keras_api`` (or None)."""

    path: str  # "root", "root.layers[0]", "root.layers[0].layers[2]", ...
    obj: object
    keras_api: object | None

    def objects(self, name):
        """The list attribute ``name`` of ``keras_api`` (empty when absent)."""
        value = getattr(self.keras_api, name, None)
        return list(value) if value is not None else []

    def function(self, name):
        return getattr(self.keras_api, name, None) if self.keras_api is not None else None

    def require(self, name):
        """The traced function ``name`` of ``keras_api``; an AssertionError saying what the
        files lack when it is not there."""
        if self.keras_api is None:
            raise AssertionError(f"{self.path} has no keras_api: {NOT_KERAS_FORMAT}")
        function = self.function(name)
        if function is None:
            raise AssertionError(f"{self.path}: keras_api has no {name}")
        return function

    @property
    def children(self):
        return self.objects("layers")

    def __repr__(self):
        return f"SavedLayer({self.path})"


def load(path):
    """``tf.saved_model.load`` with TensorFlow imported quietly."""
    from conformance.environment import quiet_tensorflow

    tf = quiet_tensorflow()
    with timing.phase("read"):
        return tf.saved_model.load(str(path))


def keras_root(loaded, what="the saved root"):
    """The root of the saved layer tree; an AssertionError when it carries no ``keras_api``."""
    root = walk(loaded)[0]
    if root.keras_api is None:
        raise AssertionError(f"{what} has no keras_api: {NOT_KERAS_FORMAT}")
    return root


def walk(loaded):
    """Every object of the saved layer tree once, depth first, in ``layers`` order.

    A shared layer appears once, at the first place it is reached.
    """
    seen = set()
    out = []

    def visit(obj, path):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        node = SavedLayer(path, obj, getattr(obj, "keras_api", None))
        out.append(node)
        for index, child in enumerate(node.children):
            visit(child, f"{path}.layers[{index}]")

    visit(loaded, "root")
    return out


def saved_at(loaded, path):
    """The object at a saved-tree path such as ``root.layers[0].layers[2]``."""
    obj, where = loaded, "root"
    for part in path.split(".")[1:]:
        api = getattr(obj, "keras_api", None)
        if api is None:
            raise AssertionError(f"{where} has no keras_api, so the saved tree has no {path}")
        index = int(part[len("layers[") : -1])
        children = list(api.layers)
        if index >= len(children):
            raise AssertionError(
                f"{where}: keras_api.layers has {len(children)} entries, so there is no {path}"
            )
        obj, where = children[index], f"{where}.{part}"
    return obj


def concrete_functions(function):
    """The concrete functions of a restored ``tf.function`` (empty for None)."""
    if function is None:
        return []
    return list(getattr(function, "concrete_functions", None) or [])


def serving_signature(loaded, key="serving_default"):
    """``(inputs, outputs)`` of a serving signature as {name: (dtype name, shape list)}."""
    function = loaded.signatures[key]
    _, input_kwargs = function.structured_input_signature
    inputs = {
        name: (spec.dtype.name, _shape(spec.shape)) for name, spec in sorted(input_kwargs.items())
    }
    outputs = {
        name: (spec.dtype.name, _shape(spec.shape))
        for name, spec in sorted(function.structured_outputs.items())
    }
    return inputs, outputs


def _shape(shape):
    return None if shape.rank is None else [dim for dim in shape.as_list()]
