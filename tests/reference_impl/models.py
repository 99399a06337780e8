"""Hand-written Keras 3 models for the reference implementation's tests.

Each builder returns a built model; :data:`SAMPLES` gives an input batch for each. Layer
names are fixed so that saved names do not depend on how many layers a process created.
Classes registered under the ``reference_tests`` package load from their config; the
``Unregistered*`` classes are unknown to a loader and exercise revival.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "reference_tests"


def sample(shape, seed: int = 0, dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- custom classes --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class AddLossLayer(layers.Layer):
    """Adds an input-dependent loss: ``rate * mean(x**2)``."""

    def __init__(self, rate: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(ops.square(inputs)))
        return inputs

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TwoDense(keras.Model):
    """A registered subclassed model: dense -> dropout -> dense, config-serializable."""

    def __init__(self, units: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(8, activation="relu", name="hidden")
        self.dropout = layers.Dropout(0.5, name="drop")
        self.head = layers.Dense(units, name="head")

    def call(self, inputs):
        return self.head(self.dropout(self.hidden(inputs)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class UnregisteredScaler(layers.Layer):
    """A custom layer no loader knows: scales by a trainable vector, adds a loss."""

    def build(self, input_shape):
        self.scale = self.add_weight(
            shape=(input_shape[-1],), initializer="ones", regularizer="l2", name="scale"
        )

    def call(self, inputs, training=None):
        outputs = inputs * self.scale
        self.add_loss(0.01 * ops.sum(ops.abs(outputs)))
        if training:
            outputs = outputs * 2.0
        return outputs


class UnregisteredModel(keras.Model):
    """A subclassed model no loader knows, with a BatchNormalization and a custom layer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(6, kernel_regularizer="l2", name="dense")
        self.norm = layers.BatchNormalization(name="norm")
        self.scaler = UnregisteredScaler(name="scaler")
        self.out = layers.Dense(2, name="out")

    def call(self, inputs):
        return self.out(self.scaler(self.norm(self.dense(inputs))))


class SharedDenseModel(keras.Model):
    """Calls one Dense layer on a rank-2 and on a rank-3 input."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shared = layers.Dense(3, name="shared")

    def call(self, inputs):
        flat = self.shared(inputs)
        stacked = self.shared(ops.stack([inputs, inputs], axis=1))
        return flat + ops.sum(stacked, axis=1)


class WithUnbuiltLayer(keras.Model):
    """A model holding a layer that its call never uses, so it stays unbuilt."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.used = layers.Dense(2, name="used")
        self.spare = layers.Dense(2, name="spare")

    def call(self, inputs):
        return self.used(inputs)


# -- builders --------------------------------------------------------------------------------


def sequential() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,), name="features"),
            layers.Dense(8, activation="relu", name="dense_a"),
            layers.Dense(3, name="dense_b"),
        ],
        name="sequential_model",
    )


def functional_branch_merge() -> keras.Model:
    """Two branches from one input, merged, and two outputs."""
    inputs = keras.Input((6,), name="x")
    left = layers.Dense(4, activation="tanh", name="left")(inputs)
    right = layers.Dense(4, activation="relu", name="right")(inputs)
    merged = layers.Concatenate(name="merge")([left, right])
    first = layers.Dense(2, name="first_output")(merged)
    second = layers.Dense(1, name="second_output")(right)
    return keras.Model(inputs, [first, second], name="branchy")


def subclassed() -> keras.Model:
    model = TwoDense(units=3, name="two_dense")
    model(sample((2, 4)))
    return model


def nested() -> keras.Model:
    """A Functional model used as a layer inside another Functional model."""
    inner_in = keras.Input((5,), name="inner_in")
    inner_out = layers.Dense(4, activation="relu", name="inner_dense")(inner_in)
    inner = keras.Model(inner_in, inner_out, name="inner")
    outer_in = keras.Input((5,), name="outer_in")
    hidden = inner(outer_in)
    hidden = layers.Dropout(0.3, name="outer_drop")(hidden)
    outer_out = layers.Dense(2, name="outer_dense")(hidden)
    return keras.Model(outer_in, outer_out, name="outer")


def shared_layer() -> keras.Model:
    model = SharedDenseModel(name="shared_model")
    model(sample((2, 4)))
    return model


def batchnorm_dropout() -> keras.Model:
    inputs = keras.Input((5,), name="x")
    hidden = layers.Dense(6, name="dense")(inputs)
    hidden = layers.BatchNormalization(name="norm")(hidden)
    hidden = layers.Dropout(0.5, name="drop")(hidden)
    outputs = layers.Dense(2, name="out")(hidden)
    return keras.Model(inputs, outputs, name="bn_dropout")


def regularized() -> keras.Model:
    """Every regularizer placement: kernel, bias, activity, gamma/beta, embeddings, recurrent."""
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    hidden = layers.Embedding(20, 4, embeddings_regularizer="l2", name="embed")(tokens)
    hidden = layers.SimpleRNN(5, kernel_regularizer="l1", recurrent_regularizer="l2", name="rnn")(
        hidden
    )
    hidden = layers.Dense(
        6,
        kernel_regularizer=keras.regularizers.L2(0.02),
        bias_regularizer="l1",
        activity_regularizer=keras.regularizers.L1(0.05),
        bias_initializer="ones",
        name="dense",
    )(hidden)
    hidden = layers.BatchNormalization(
        gamma_regularizer="l2", beta_regularizer="l1", beta_initializer="ones", name="norm"
    )(hidden)
    hidden = AddLossLayer(0.2, name="add_loss")(hidden)
    outputs = layers.Dense(1, name="out")(hidden)
    return keras.Model(tokens, outputs, name="regularized")


def unregistered() -> keras.Model:
    model = UnregisteredModel(name="unregistered")
    model(sample((3, 4)))
    return model


def with_unbuilt_layer() -> keras.Model:
    model = WithUnbuiltLayer(name="with_unbuilt")
    model(sample((2, 3)))
    return model


def dense_batchnorm_chain(depth: int) -> keras.Model:
    """``depth`` layers alternating Dense and BatchNormalization (for timings)."""
    model_layers = [keras.Input((16,), name="x")]
    for i in range(depth):
        if i % 2 == 0:
            model_layers.append(layers.Dense(16, activation="relu", name=f"dense_{i}"))
        else:
            model_layers.append(layers.BatchNormalization(name=f"norm_{i}"))
    return keras.Sequential(model_layers, name=f"chain_{depth}")


BUILDERS = {
    "sequential": sequential,
    "functional": functional_branch_merge,
    "subclassed": subclassed,
    "nested": nested,
    "shared": shared_layer,
    "batchnorm_dropout": batchnorm_dropout,
    "regularized": regularized,
    "unregistered": unregistered,
}

SAMPLES = {
    "sequential": lambda: sample((3, 4)),
    "functional": lambda: sample((3, 6)),
    "subclassed": lambda: sample((3, 4)),
    "nested": lambda: sample((3, 5)),
    "shared": lambda: sample((3, 4)),
    "batchnorm_dropout": lambda: sample((4, 5)),
    "regularized": lambda: np.random.default_rng(0).integers(0, 20, (3, 7)).astype("int32"),
    "unregistered": lambda: sample((3, 4)),
}


def two_inputs() -> keras.Model:
    """Two named inputs, merged."""
    first = keras.Input((3,), name="first")
    second = keras.Input((2,), name="second")
    merged = layers.Concatenate(name="join")([first, second])
    return keras.Model([first, second], layers.Dense(2, name="head")(merged), name="two_in")


def mixed_precision() -> keras.Model:
    """float16 compute, float32 variables."""
    inputs = keras.Input((4,), name="x")
    hidden = layers.Dense(8, activation="relu", dtype="mixed_float16", name="half")(inputs)
    outputs = layers.Dense(2, dtype="float32", name="full")(hidden)
    return keras.Model(inputs, outputs, name="mixed")


BUILDERS["two_inputs"] = two_inputs
BUILDERS["mixed_precision"] = mixed_precision
SAMPLES["two_inputs"] = lambda: [sample((3, 3)), sample((3, 2), seed=1)]
SAMPLES["mixed_precision"] = lambda: sample((3, 4))


def dict_inputs_outputs() -> keras.Model:
    """Inputs and outputs given as dicts (their keys are the serving names)."""
    first = keras.Input((3,), name="a")
    second = keras.Input((2,), name="b")
    joined = layers.Concatenate(name="cat")([first, second])
    outputs = {"y": layers.Dense(2, name="y")(joined), "z": layers.Dense(1, name="z")(joined)}
    return keras.Model({"a": first, "b": second}, outputs, name="dict_io")


BUILDERS["dict_io"] = dict_inputs_outputs
SAMPLES["dict_io"] = lambda: {"a": sample((3, 3)), "b": sample((3, 2), seed=1)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PairModel(keras.Model):
    """A registered subclassed model called on a list of two tensors."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1, name="dense")
        self.add = layers.Add(name="add")

    def call(self, inputs):
        first, second = inputs
        return self.add([ops.reshape(self.dense(first), (-1, 1, 1)), second])


def subclassed_list_inputs() -> keras.Model:
    model = PairModel(name="pair")
    model([sample((2, 3)), sample((2, 1, 1), seed=1)])
    return model


BUILDERS["subclassed_list"] = subclassed_list_inputs
SAMPLES["subclassed_list"] = lambda: [sample((3, 3)), sample((3, 1, 1), seed=1)]


def nested_with_losses(kind: str = "functional") -> keras.Model:
    """A Functional sub-model whose layers add losses (activity regularizer and add_loss),
    inside a Functional model, a Sequential model, and beside a layer shared with the outer
    model. Keras 3's Functional.add_loss raises NotImplementedError: the saver must not
    call it."""
    shared = layers.Dense(4, name="nl_shared")
    inner_in = keras.Input((4,), name="nl_inner_in")
    hidden = layers.Dense(4, activity_regularizer="l2", name="nl_inner_dense")(inner_in)
    hidden = AddLossLayer(0.5, name="nl_inner_loss")(hidden)
    inner = keras.Model(inner_in, shared(hidden), name="nl_inner")
    if kind == "sequential":
        model = keras.Sequential(
            [keras.Input((4,)), inner, layers.Dense(2, name="nl_head")], name="nl_seq"
        )
    else:
        outer_in = keras.Input((4,), name="nl_outer_in")
        outputs = layers.Dense(2, name="nl_head")(shared(inner(outer_in)))
        model = keras.Model(outer_in, outputs, name="nl_outer")
    model(sample((2, 4)))
    return model


@keras.saving.register_keras_serializable(package=PACKAGE)
class TypedInputsModel(keras.Model):
    """A subclassed model declaring typed inputs with ``input_spec``: an int32 and a float16
    tensor, given as a list or (``as_dict``) as a dict with keys ``ids`` and ``values``."""

    def __init__(self, as_dict: bool = False, **kwargs):
        kwargs.setdefault("dtype", "float16")
        super().__init__(**kwargs)
        self.as_dict = as_dict
        ids = keras.InputSpec(shape=(None, 2), dtype="int32")
        values = keras.InputSpec(shape=(None, 3), dtype="float16")
        self.input_spec = {"ids": ids, "values": values} if as_dict else [ids, values]
        self.dense = layers.Dense(4, name="typed_dense")

    def call(self, inputs):
        ids, values = (inputs["ids"], inputs["values"]) if self.as_dict else inputs
        features = ops.concatenate([ops.cast(ids, self.compute_dtype), values], axis=-1)
        return self.dense(features)

    def get_config(self):
        return {**super().get_config(), "as_dict": self.as_dict}


def typed_inputs_sample(as_dict: bool = False, batch: int = 3):
    ids = np.random.default_rng(5).integers(-3, 4, (batch, 2)).astype("int32")
    values = sample((batch, 3), seed=6, dtype="float16")
    return {"ids": ids, "values": values} if as_dict else [ids, values]


def typed_inputs(as_dict: bool = False) -> keras.Model:
    model = TypedInputsModel(as_dict=as_dict, name="typed")
    model(typed_inputs_sample(as_dict, batch=2))
    return model


def unregistered_functional() -> keras.Model:
    """A Functional model around an unknown layer (so it is revived), with a nested
    Functional sub-model that has an activity regularizer and a layer frozen, BatchNorm and
    Dropout, two named outputs."""
    inner_in = keras.Input((4,), name="uf_inner_in")
    inner_hidden = layers.Dense(5, activity_regularizer="l1", name="uf_inner_dense")(inner_in)
    inner = keras.Model(inner_in, inner_hidden, name="uf_inner")
    inputs = keras.Input((4,), name="uf_in")
    hidden = UnregisteredScaler(name="uf_scaler")(inputs)
    hidden = layers.BatchNormalization(name="uf_norm")(inner(hidden))
    frozen = layers.Dense(3, kernel_regularizer="l2", name="uf_frozen")
    frozen.trainable = False
    first = frozen(layers.Dropout(0.3, name="uf_drop")(hidden))
    second = layers.Dense(2, name="uf_second")(hidden)
    model = keras.Model(inputs, [first, second], name="uf_model")
    model(sample((2, 4)))
    return model
