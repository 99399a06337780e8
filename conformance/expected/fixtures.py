"""Hand-written models for the clauses that need a particular model rather than a drawn one.

Each builder takes the Keras module of the implementation's framework (``keras`` or
``tf_keras``) so the same model is built in either.
"""

import numpy as np


def keras_module(framework):
    if framework == "tf_keras":
        import tf_keras

        return tf_keras
    import keras

    return keras


def small_functional(K, name="small", units=3):
    inputs = K.Input((4,), name=f"{name}_in")
    hidden = K.layers.Dense(units, activation="relu", name=f"{name}_hidden")(inputs)
    outputs = K.layers.Dense(2, name=f"{name}_out")(hidden)
    model = K.Model(inputs, outputs, name=name)
    set_weights(model, seed=units)
    return model


def dense_batchnorm_dense(K, name="dense_bn_dense"):
    """Dense, BatchNormalization, Dense: layers with and without a training mode."""
    model = K.Sequential(
        [
            K.Input((4,), name=f"{name}_in"),
            K.layers.Dense(3, name=f"{name}_first"),
            K.layers.BatchNormalization(name=f"{name}_bn"),
            K.layers.Dense(2, name=f"{name}_out"),
        ],
        name=name,
    )
    set_weights(model, seed=7)
    return model


def sequential_to_change(K, with_unknown_class=False):
    """A Sequential ending in an Activation, to be loaded, popped and added to.

    ``with_unknown_class``: a layer of a class defined here, registered nowhere, so a loader
    cannot rebuild the model from its config and revives it from the saved functions.
    """
    stack = [K.Input((4,), name="change_in"), K.layers.Dense(3, name="change_hidden")]
    if with_unknown_class:

        class Doubles(K.layers.Layer):
            def call(self, inputs):
                return inputs * 2.0

        stack.append(Doubles(name="change_doubles"))
    stack += [K.layers.Dense(2, name="change_out"), K.layers.Activation("tanh", name="change_act")]
    model = K.Sequential(stack, name="to_change")
    set_weights(model, seed=11)
    return model


def change_sequential(K, model):
    """What a user does to a loaded Sequential: drop its final activation, add a new head."""
    model.pop()
    head = K.layers.Dense(5, name="change_new_head")
    model.add(head)
    set_weights(head, seed=13)
    return model


def unbuilt_sequential(K):
    """A Sequential model without inputs: nothing in it is built."""
    return K.Sequential([K.layers.Dense(3, name="never_built_dense")], name="inputless")


def model_with_unbuilt_layer(K):
    """A built subclassed model holding a layer its call never uses."""

    class HoldsUnusedLayer(K.Model):
        def __init__(self):
            super().__init__(name="holds_unused")
            self.used = K.layers.Dense(2, name="used_dense")
            self.unused = K.layers.Dense(2, name="never_called_dense")

        def call(self, inputs):
            return self.used(inputs)

    model = HoldsUnusedLayer()
    model(np.zeros((1, 3), dtype="float32"))
    # No config to send to an implementation in another process: its worker builds this
    # model by name (conformance/worker.py FIXTURES; keep the two equal).
    model.conformance_fixture = "model_with_unbuilt_layer"
    return model


def trained_compiled(K, name="trained"):
    """A compiled model after one training step, so its optimizer has variables."""
    model = small_functional(K, name=name)
    model.compile(optimizer=K.optimizers.Adam(learning_rate=0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 4)).astype("float32")
    y = rng.standard_normal((4, 2)).astype("float32")
    model.train_on_batch(x, y)
    return model


def set_weights(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        shape = tuple(variable.shape)
        dtype = getattr(variable.dtype, "as_numpy_dtype", variable.dtype)
        variable.assign((rng.standard_normal(shape) * 0.3).astype(dtype))
