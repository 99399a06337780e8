"""Real architectures: ``keras.applications`` (``tf_keras.applications`` for tf_keras).

One fixed kind, ``Application``: a whole application model (``weights=None``, its own top
with ``classes`` logits) used as one layer of a functional spec. Only the zoo's fixed specs
(``conformance/corpus/zoo.json``) name it: it is registered with ``register_fixed``, so
``model_specs`` never draws it and the coverage table does not count it. Saving one takes
seconds to tens of seconds.
"""

from __future__ import annotations

from typing import Any

from .base import Kind, framework_name, register_fixed

# Arguments a zoo spec may pass on as they are (both frameworks take them).
PASSED_ON = ("alpha", "minimalistic", "depth_multiplier", "dropout", "dropout_rate",
             "include_preprocessing")


def _not_drawn(draw, shapes, dtype):
    raise TypeError("Application is a fixed kind (the zoo's specs): model_specs never draws it")


def _make(K, p: dict[str, Any], kw: dict[str, Any]):
    unknown = sorted(set(p) - {"name", "input_shape", "classes", *PASSED_ON})
    if unknown:
        raise ValueError(f"Application: unknown arguments {unknown}")
    args = {k: p[k] for k in PASSED_ON if k in p}
    build = getattr(K.applications, p["name"])
    # Logits (no softmax): outputs compared after a save keep their full precision.
    common = dict(weights=None, input_shape=tuple(p["input_shape"]), classes=p["classes"],
                  classifier_activation=None, **args)
    if framework_name(K) == "keras":
        model = build(name=kw["name"], **common)
    else:
        model = build(**common)
        model._name = kw["name"]  # tf_keras' applications take no name; serving keys need it
    if kw.get("trainable") is False:
        model.trainable = False
    return model


register_fixed(
    Kind(
        name="Application",
        family="applications",
        ranks=(3,),
        params=_not_drawn,
        out_shape=lambda shapes, p: (p["classes"],),
        make=_make,
        dtypes=("float32",),
        deterministic_in_training=False,  # Dropout in the top (and in EfficientNet's blocks)
        in_sequential=False,
        shareable=False,
    )
)


def application_spec(name: str, input_shape: tuple[int, ...], classes: int = 4, seed: int = 0,
                     **args: Any):
    """A zoo spec: ``input -> keras.applications.<name>(...)``, functional, float32."""
    from ..spec import InputSpec, LayerSpec, ModelSpec, freeze_params

    params = {"name": name, "input_shape": tuple(input_shape), "classes": classes, **args}
    node = LayerSpec(
        id="n0",
        kind="Application",
        inputs=("in_0",),
        params=freeze_params(params),
        out_shape=(classes,),
        layer_name=f"n0_{name.lower()}",
    )
    return ModelSpec(
        inputs=(InputSpec("in_0", tuple(input_shape)),),
        nodes=(node,),
        outputs=("n0",),
        topology="functional",
        seed=seed,
    )
