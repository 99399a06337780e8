"""Write legacy-corpus cases with the Keras of the interpreter this runs in.

Runs INSIDE a writer's own virtual environment (TensorFlow 2.12-2.15 with its ``tf.keras``,
or TensorFlow 2.16+ with ``tf_keras``), started by ``conformance/tools/legacy_corpus.py``; it
imports no ``conformance`` module (the old environments do not have the suite's
dependencies), only ``strategies`` (from ``PYTHONPATH``) to build the corpus specs.

    python legacy_writer.py --specs specs.json --out DIR [--only NAME,...]

Per case it writes ``DIR/<case>/saved_model/`` (``model.save(path, save_format="tf")``),
``record.json`` and ``record.npz`` (the format is in ``conformance/corpus/legacy.py``), and
prints one JSON line: ``{"case": ..., "status": "written"|"skipped", "reason": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import traceback

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FORMAT = 1


def keras_module():
    """(module, package name): tf_keras where it is installed, else TensorFlow's tf.keras."""
    try:
        import tf_keras

        return tf_keras, "tf_keras"
    except ImportError:
        import tensorflow as tf

        return tf.keras, "tf.keras"


def _keras_version(K) -> str:
    version = getattr(K, "__version__", None)
    if version is None:  # tf.keras of TensorFlow 2.12-2.15: the keras 2.x package
        import keras

        version = keras.__version__
    return str(version)


def versions(K, package: str) -> dict:
    import tensorflow as tf

    return {
        "package": package,
        "tensorflow": tf.__version__,
        "keras": _keras_version(K),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


# --- what a loader needs: custom classes ------------------------------------------------


def _is_builtin(cls) -> bool:
    return cls.__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow")


def _registered(K, cls) -> bool:
    name = K.utils.get_registered_name(cls)
    return name != cls.__name__ and K.utils.get_registered_object(name) is cls


def custom_classes(K, model) -> list[dict]:
    """Every class in ``model`` (itself, its layers at any depth, their regularizers,
    initializers and constraints) that is not Keras' own, with whether it is registered."""
    found: dict[str, dict] = {}
    seen: set[int] = set()

    def note(obj):
        cls = type(obj)
        if not _is_builtin(cls) and cls.__name__ not in found:
            found[cls.__name__] = {"name": cls.__name__, "registered": _registered(K, cls)}

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        note(layer)
        for attr, value in vars(layer).items():
            if attr.endswith(("_regularizer", "_initializer", "_constraint")) and value:
                if not isinstance(value, str | dict):
                    note(value)
        for child in getattr(layer, "layers", ()) or ():
            visit(child)
        for attr in ("layer", "forward_layer", "backward_layer", "cell"):
            child = getattr(layer, attr, None)
            if child is not None and hasattr(child, "weights"):
                visit(child)

    visit(model)
    return sorted(found.values(), key=lambda c: c["name"])


# --- the record ---------------------------------------------------------------------------


def _structure(value) -> tuple[str, list, list | None]:
    """("single"|"list"|"dict", flat values, keys or None)."""
    if isinstance(value, dict):
        keys = sorted(value)
        return "dict", [value[k] for k in keys], keys
    if isinstance(value, list | tuple):
        return "list", list(value), None
    return "single", [value], None


def _numpy(t) -> np.ndarray:
    arr = np.asarray(t.numpy() if hasattr(t, "numpy") else t)
    if arr.dtype == object:  # strings: store as unicode, readable without pickle
        arr = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else str(b))(arr)
        arr = arr.astype(str)
    return arr


def _call_inputs(inputs, input_names, structure):
    if structure == "dict":
        return dict(zip(input_names, inputs, strict=True))
    if structure == "list":
        return list(inputs)
    return inputs[0]


def write_case(
    K,
    package: str,
    case_dir: str,
    *,
    case: str,
    kind: str,
    model,
    inputs,
    description: str,
    deterministic_in_training: bool,
    spec: dict | None = None,
    compiled: bool = False,
    classes: list[dict] | None = None,
) -> dict:
    """Save ``model`` into ``case_dir/saved_model`` and record what this writer sees.

    ``inputs`` is what ``model(...)`` takes: one array, a list or a dict of arrays. The
    variables are read after the save and before any call in training mode (which may move
    BatchNormalization statistics), so they are the saved values; the training-mode outputs
    are recorded last and the variables put back.
    """
    if os.path.exists(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    model.save(os.path.join(case_dir, "saved_model"), save_format="tf")

    in_structure, in_values, in_keys = _structure(inputs)
    if in_structure == "dict":
        input_names = in_keys
    else:
        input_names = [t.name.split(":")[0] for t in model.inputs] if model.inputs else []
        if len(input_names) != len(in_values):
            input_names = [f"input_{i}" for i in range(len(in_values))]
    call = _call_inputs(in_values, input_names, in_structure)

    variables = list(model.variables)
    values = [np.asarray(v.numpy()) for v in variables]
    out = model(call, training=False)
    out_structure, out_values, out_keys = _structure(out)
    losses = [_numpy(x) for x in model.losses]
    arrays = {f"input/{i}": _numpy(x) for i, x in enumerate(in_values)}
    arrays.update({f"output_inference/{i}": _numpy(x) for i, x in enumerate(out_values)})
    arrays.update({f"loss/{i}": x for i, x in enumerate(losses)})
    arrays.update({f"variable/{i}": x for i, x in enumerate(values)})
    if deterministic_in_training:
        _, train_values, _ = _structure(model(call, training=True))
        arrays.update({f"output_training/{i}": _numpy(x) for i, x in enumerate(train_values)})
        for v, value in zip(variables, values, strict=True):
            v.assign(value)

    record = {
        "format": FORMAT,
        "writer": versions(K, package),
        "case": case,
        "kind": kind,
        "spec": spec,
        "description": description,
        "deterministic_in_training": bool(deterministic_in_training),
        "inputs": input_names,
        "input_structure": in_structure,
        "outputs": len(out_values),
        "output_structure": out_structure,
        "losses": len(losses),
        "variables": [v.name for v in variables],
        "custom_classes": classes if classes is not None else custom_classes(K, model),
        "compiled": bool(compiled),
    }
    if out_keys is not None:
        record["output_keys"] = out_keys
    optimizer = getattr(model, "optimizer", None) if compiled else None
    if optimizer is not None:
        opt_vars = list(optimizer.variables() if callable(optimizer.variables)
                        else optimizer.variables)
        record["optimizer"] = {"class": type(optimizer).__name__,
                               "iterations": int(optimizer.iterations.numpy()),
                               "variables": [v.name for v in opt_vars]}
        arrays.update({f"optimizer_variable/{i}": np.asarray(v.numpy())
                       for i, v in enumerate(opt_vars)})
    with open(os.path.join(case_dir, "record.json"), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    np.savez_compressed(os.path.join(case_dir, "record.npz"), **arrays)
    return record


# --- the corpus specs ---------------------------------------------------------------------


def spec_cases(specs: dict) -> dict:
    """name -> function(K) giving the keyword arguments of write_case."""

    def make(name, raw):
        def build(K):
            from strategies.build import build_model
            from strategies.catalog import deterministic_in_training
            from strategies.generate import call_inputs
            from strategies.sample import seeded_inputs
            from strategies.spec import ModelSpec

            spec = ModelSpec.from_dict(raw)
            model = build_model(spec, framework="tf_keras")
            return dict(
                kind="spec",
                spec=raw,
                model=model,
                inputs=call_inputs(spec, seeded_inputs(spec)),
                description=f"corpus spec {name}: {spec.topology} {spec.dtype}, kinds "
                + ", ".join(sorted(set(spec.kinds()))),
                deterministic_in_training=deterministic_in_training(spec),
                compiled=spec.training is not None,
            )

        return build

    return {name: make(name, raw) for name, raw in sorted(specs.items())}


# --- real-world models, written by hand ---------------------------------------------------


def _seed_weights(model, seed):
    from strategies.build import set_weights

    set_weights(model, seed)


def _rng(seed):
    return np.random.default_rng(seed)


WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "home"]


def real_string_lookup(K):
    import tensorflow as tf

    vocab_dir = tempfile.mkdtemp(prefix="legacy-vocab-")
    path = os.path.join(vocab_dir, "vocab.txt")
    with open(path, "w") as f:
        f.write("\n".join(WORDS[:8]) + "\n")
    inp = K.Input(shape=(3,), dtype=tf.string, name="tokens")
    ids = K.layers.StringLookup(vocabulary=path, name="lookup")(inp)
    x = K.layers.Embedding(input_dim=10, output_dim=4, name="embed")(ids)
    x = K.layers.GlobalAveragePooling1D(name="pool")(x)
    out = K.layers.Dense(2, name="head")(x)
    model = K.Model(inp, out, name="string_lookup_asset")
    _seed_weights(model, 101)
    words = np.array(WORDS + ["unknown"], dtype=object)
    data = words[_rng(101).integers(0, len(words), size=(4, 3))].astype(str)
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="StringLookup with a vocabulary file (a SavedModel asset), "
                "string input, Embedding, pooling, Dense")


def real_text_vectorization(K):
    import tensorflow as tf

    inp = K.Input(shape=(1,), dtype=tf.string, name="text")
    vec = K.layers.TextVectorization(vocabulary=WORDS, output_mode="int",
                                     output_sequence_length=6, name="vectorize")
    x = K.layers.Embedding(input_dim=len(WORDS) + 2, output_dim=4, mask_zero=True,
                           name="embed")(vec(inp))
    x = K.layers.GlobalAveragePooling1D(name="pool")(x)
    out = K.layers.Dense(3, name="head")(x)
    model = K.Model(inp, out, name="text_vectorization")
    _seed_weights(model, 102)
    rng = _rng(102)
    sentences = [" ".join(rng.choice(WORDS + ["zebra"], size=int(rng.integers(2, 8))))
                 for _ in range(4)]
    data = np.array(sentences, dtype=str).reshape(4, 1)
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="TextVectorization with a vocabulary list, string input, "
                "Embedding(mask_zero=True), masked pooling, Dense")


def real_embedding_lstm(K):
    model = K.Sequential([
        K.Input(shape=(7,), dtype="int32", name="ids"),
        K.layers.Embedding(input_dim=12, output_dim=5, mask_zero=True, name="embed"),
        K.layers.LSTM(6, name="lstm"),
        K.layers.Dense(2, name="head"),
    ], name="embedding_lstm")
    _seed_weights(model, 103)
    data = _rng(103).integers(1, 12, size=(3, 7)).astype("int32")
    data[0, 4:] = 0  # padding: masked timesteps
    data[1, 2:] = 0
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="Sequential Embedding(mask_zero=True) -> LSTM -> Dense: "
                "the mask flows into the RNN")


def _custom_layer_class(K):
    import tensorflow as tf

    class LegacyNoisyScale(K.layers.Layer):  # deliberately not registered
        def __init__(self, units=3, rate=0.05, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.rate = rate

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(int(input_shape[-1]),),
                                         initializer="ones")
            self.proj = self.add_weight(name="proj", shape=(int(input_shape[-1]), self.units),
                                        initializer="glorot_uniform")
            super().build(input_shape)

        def call(self, inputs, training=None):
            self.add_loss(self.rate * tf.reduce_sum(tf.square(self.scale)))
            x = inputs * self.scale
            if training:
                x = x * 0.5 + 1.0  # a deterministic training branch
            return tf.matmul(x, self.proj)

        def get_config(self):
            return {**super().get_config(), "units": self.units, "rate": self.rate}

    return LegacyNoisyScale


def real_custom_layer(K):
    cls = _custom_layer_class(K)
    inp = K.Input(shape=(4,), name="features")
    x = cls(units=3, name="noisy_scale")(inp)
    out = K.layers.Dense(2, name="head")(x)
    model = K.Model(inp, out, name="custom_layer")
    _seed_weights(model, 104)
    data = (_rng(104).standard_normal((3, 4)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="an unregistered custom layer (LegacyNoisyScale) with add_loss "
                "and a training branch, in a functional model")


def real_shared_layer(K):
    a = K.Input(shape=(5,), name="left")
    b = K.Input(shape=(5,), name="right")
    shared = K.layers.Dense(4, activation="tanh", name="shared")
    x = K.layers.Concatenate(name="join")([shared(a), shared(b)])
    out = K.layers.Dense(1, name="head")(x)
    model = K.Model([a, b], out, name="shared_layer")
    _seed_weights(model, 105)
    rng = _rng(105)
    data = [(rng.standard_normal((3, 5)) * 0.5).astype("float32") for _ in range(2)]
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="one Dense layer applied to two inputs (shared weights)")


def real_nested_model(K):
    inner = K.Sequential([
        K.Input(shape=(6,), name="inner_in"),
        K.layers.Dense(5, activation="relu", name="inner_dense"),
        K.layers.BatchNormalization(name="inner_bn"),
    ], name="inner")
    inp = K.Input(shape=(6,), name="outer_in")
    x = inner(inp)
    out = K.layers.Dense(2, name="outer_head")(x)
    model = K.Model(inp, out, name="nested_model")
    _seed_weights(model, 106)
    data = (_rng(106).standard_normal((4, 6)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="a Sequential model (Dense, BatchNormalization) nested in a "
                "functional model")


def real_multi_io(K):
    image = K.Input(shape=(6, 6, 2), name="image")
    meta = K.Input(shape=(3,), name="meta")
    x = K.layers.Conv2D(3, 3, activation="relu", name="conv")(image)
    x = K.layers.Flatten(name="flatten")(x)
    x = K.layers.Concatenate(name="join")([x, K.layers.Dense(4, name="meta_dense")(meta)])
    cls = K.layers.Dense(3, activation="softmax", name="label")(x)
    score = K.layers.Dense(1, name="score")(x)
    model = K.Model({"image": image, "meta": meta}, {"label": cls, "score": score},
                    name="multi_io")
    _seed_weights(model, 107)
    rng = _rng(107)
    data = {"image": (rng.standard_normal((2, 6, 6, 2)) * 0.5).astype("float32"),
            "meta": (rng.standard_normal((2, 3)) * 0.5).astype("float32")}
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="functional model with dict inputs (image, meta) and dict "
                "outputs (label, score)")


def real_compiled_adam(K):
    model = K.Sequential([
        K.Input(shape=(4,), name="x"),
        K.layers.Dense(8, activation="relu", name="hidden"),
        K.layers.Dense(2, name="out"),
    ], name="compiled_adam")
    _seed_weights(model, 108)
    model.compile(optimizer=K.optimizers.Adam(learning_rate=0.01), loss="mse",
                  metrics=["mae"])
    rng = _rng(108)
    for _ in range(2):
        model.train_on_batch(rng.standard_normal((8, 4)).astype("float32"),
                             rng.standard_normal((8, 2)).astype("float32"))
    data = (rng.standard_normal((3, 4)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=True, compiled=True,
                description="compiled with Adam (mse, mae) after 2 train_on_batch steps: "
                "the optimizer state is in the checkpoint")


def real_mixed_float16(K):
    mp = K.mixed_precision
    previous = mp.global_policy()
    mp.set_global_policy("mixed_float16")
    try:
        model = K.Sequential([
            K.Input(shape=(5,), name="x"),
            K.layers.Dense(6, activation="relu", name="hidden"),
            K.layers.Dense(2, name="logits"),
            K.layers.Activation("linear", dtype="float32", name="out"),
        ], name="mixed_float16")
    finally:
        mp.set_global_policy(previous)
    _seed_weights(model, 109)
    data = (_rng(109).standard_normal((3, 5)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="Dense layers under the mixed_float16 policy (float32 variables, "
                "float16 compute), a float32 output layer")


def real_mobilenet(K):
    model = K.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None,
                                     classes=4, classifier_activation=None)
    _seed_weights(model, 110)
    data = (_rng(110).standard_normal((2, 32, 32, 3)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=False,
                description="keras.applications MobileNet(alpha=0.25, weights=None), 32x32, "
                "4 classes, logits")


def real_bn_dropout(K):
    inp = K.Input(shape=(6,), name="x")
    x = K.layers.Dense(8, name="dense_1")(inp)
    x = K.layers.BatchNormalization(name="bn")(x)
    x = K.layers.Activation("relu", name="relu")(x)
    x = K.layers.Dropout(0.3, name="dropout")(x)
    out = K.layers.Dense(2, name="dense_2")(x)
    model = K.Model(inp, out, name="bn_dropout")
    _seed_weights(model, 111)
    data = (_rng(111).standard_normal((4, 6)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=False,
                description="functional Dense -> BatchNormalization -> ReLU -> Dropout -> "
                "Dense (Dropout: training mode is random)")


def real_conv_depthwise(K):
    model = K.Sequential([
        K.Input(shape=(10, 10, 3), name="image"),
        K.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        K.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise"),
        K.layers.MaxPooling2D(name="pool"),
        K.layers.GlobalAveragePooling2D(name="gap"),
        K.layers.Dense(3, name="classes"),
    ], name="conv_depthwise")
    _seed_weights(model, 112)
    data = (_rng(112).standard_normal((2, 10, 10, 3)) * 0.5).astype("float32")
    return dict(model=model, inputs=data, deterministic_in_training=True,
                description="Conv2D -> DepthwiseConv2D -> pooling -> Dense classifier")


REAL_CASES = {
    "string-lookup-asset": real_string_lookup,
    "text-vectorization": real_text_vectorization,
    "embedding-lstm": real_embedding_lstm,
    "custom-layer": real_custom_layer,
    "shared-layer": real_shared_layer,
    "nested-model": real_nested_model,
    "multi-io": real_multi_io,
    "compiled-adam": real_compiled_adam,
    "mixed-float16": real_mixed_float16,
    "mobilenet": real_mobilenet,
    "bn-dropout": real_bn_dropout,
    "conv-depthwise": real_conv_depthwise,
}


def all_cases(specs: dict) -> dict:
    cases = {name: (lambda K, b=b: {"kind": "real", **b(K)}) for name, b in REAL_CASES.items()}
    return {**spec_cases(specs), **cases}


def _reason(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {os.path.basename(last[0].filename)}:{last[0].lineno})" if last else ""
    text = " ".join(str(exc).split())
    if len(text) > 600:  # TensorFlow's "in user code" traces end with the error itself
        text = f"{text[:200]} ... {text[-400:]}"
    return f"{type(exc).__name__}: {text}{where}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="legacy_writer.py")
    parser.add_argument("--specs", required=True, help="conformance/corpus/specs.json")
    parser.add_argument("--out", required=True, help="the writer's directory")
    parser.add_argument("--only", default="", help="comma-separated case names")
    args = parser.parse_args(argv)
    with open(args.specs) as f:
        specs = json.load(f)
    K, package = keras_module()
    cases = all_cases(specs)
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - set(cases))
    if unknown:
        print(f"unknown cases {unknown}; known: {sorted(cases)}", file=sys.stderr)
        return 2
    print(json.dumps({"writer": versions(K, package)}), flush=True)
    os.makedirs(args.out, exist_ok=True)
    for name, build in cases.items():
        if only and name not in only:
            continue
        case_dir = os.path.join(args.out, name)
        try:
            K.backend.clear_session()
            kwargs = build(K)
            write_case(K, package, case_dir, case=name, **kwargs)
            line = {"case": name, "status": "written"}
        except Exception as exc:  # one case's failure is a finding, not the version's end
            shutil.rmtree(case_dir, ignore_errors=True)
            line = {"case": name, "status": "skipped", "reason": _reason(exc)}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
