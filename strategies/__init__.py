"""Hypothesis strategies that draw random Keras models as plain data, and build them.

Public API::

    model_specs(*, max_layers=8, kinds=None, topologies=None, dtypes=None)
    input_specs(...), regularizer_specs(orthogonal=True)
    input_data(spec)            -> strategy of dict[str, np.ndarray]
    call_inputs(spec, data)     -> what model(...) expects
    build_model(spec, framework="keras" | "tf_keras")
    ModelSpec, InputSpec, LayerSpec, RegularizerSpec
    deterministic_in_training(spec), custom_objects_for(framework)
    sample_specs(count, seed=0, **knobs), sample_examples(count, seed)   (seeded, no @given)
"""

from .catalog import deterministic_in_training
from .generate import call_inputs, input_data, input_specs, model_specs, regularizer_specs
from .sample import sample_examples, sample_specs
from .spec import InputSpec, LayerSpec, ModelSpec, RegularizerSpec, from_json


def __getattr__(name):  # building needs TensorFlow: import it only when asked for
    if name in (
        "build_model",
        "set_weights",
        "weight_arrays",
        "ShapeRuleError",
        "custom_objects_for",
    ):
        from . import build

        return getattr(build, name)
    raise AttributeError(name)


__all__ = [
    "InputSpec",
    "LayerSpec",
    "ModelSpec",
    "RegularizerSpec",
    "ShapeRuleError",
    "build_model",
    "call_inputs",
    "custom_objects_for",
    "deterministic_in_training",
    "from_json",
    "input_data",
    "input_specs",
    "model_specs",
    "regularizer_specs",
    "sample_examples",
    "sample_specs",
    "set_weights",
    "weight_arrays",
]
