"""FORMAT-KERAS-API: the ``keras_api`` objects of the root and of every built sub-layer."""

import pytest

from conformance import inspect, originals
from conformance.cases import case_cache
from conformance.stream import shared_examples


def model_layers_by_saved_path(model):
    """Map saved-tree paths ("root.layers[0]...") to the model's layers, first occurrence."""
    out, seen = {}, set()

    def visit(layer, path):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        out[path] = layer
        for index, child in enumerate(originals.sublayers(layer)):
            visit(child, f"{path}.layers[{index}]")

    visit(model, "root")
    return out


def is_input_layer(layer):
    return type(layer).__name__ == "InputLayer"


def check_keras_api(case):
    layers = model_layers_by_saved_path(case.model)
    saved = {node.path: node for node in inspect.walk(case.loaded)}
    for name in inspect.ROOT_ENDPOINTS:
        assert getattr(case.loaded, name, None) is not None, f"root lacks the endpoint {name!r}"
    assert saved["root"].function("_default_save_signature") is not None, (
        "root keras_api lacks _default_save_signature"
    )
    for path, layer in layers.items():
        if is_input_layer(layer):
            continue  # InputLayer carries no keras_api in the format (as tf_keras writes it)
        node = saved.get(path)
        assert node is not None, f"layer {layer.name!r} ({path}) is not in the saved layer tree"
        assert node.keras_api is not None, f"layer {layer.name!r} ({path}) has no keras_api"
        for name in inspect.LAYER_OBJECTS:
            assert getattr(node.keras_api, name, None) is not None, (
                f"{path} ({layer.name!r}): keras_api lacks the object list {name!r}"
            )
        if node.function("__call__") is None and case.warned_about(layer.name):
            continue  # skipped with a warning that names it (SAVE-UNBUILT): allowed
        for name in inspect.CALL_FUNCTIONS:
            function = node.function(name)
            assert function is not None, f"{path} ({layer.name!r}): keras_api lacks {name!r}"
            assert inspect.concrete_functions(function), (
                f"{path} ({layer.name!r}): {name} has no traced function"
            )
        has_activity = getattr(layer, "activity_regularizer", None) is not None
        if has_activity:
            assert node.function("activity_regularizer_fn") is not None, (
                f"{path} ({layer.name!r}) has an activity regularizer but no "
                "activity_regularizer_fn"
            )
    assert originals.framework_of(case.model) == case.framework


@pytest.mark.clause("FORMAT-KERAS-API")
@shared_examples()
def test_keras_api_on_every_layer(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_keras_api(case_cache().get(implementation, spec))
