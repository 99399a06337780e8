"""Reference implementation of the Keras SavedModel format for Keras 3 (TensorFlow backend).

``save(model, filepath, overwrite=True, include_optimizer=True, signatures=None)`` writes a
model in the format tf_keras wrote with ``save_format="tf"``: a SavedModel whose objects
carry ``keras_api`` endpoints, plus ``keras_metadata.pb``. ``load(filepath, compile=True,
safe_mode=True, custom_objects=None)`` rebuilds the Keras model from its config when every
class is known, and otherwise revives it around the saved functions, with a warning naming
the class (also under ``safe_mode``, which only forbids deserializing Python code such as
Lambda bytecode: saved graph functions are data the TensorFlow runtime executes).

What a saved model looks like through plain ``obj = tf.saved_model.load(path)``::

    obj.variables, obj.trainable_variables          the root's lists (same objects as below)
    obj.regularization_losses                       zero-argument functions, one per loss
    obj(x[, training]), obj.call_and_return_all_conditional_losses(x[, training])
    obj.signatures["serving_default"]               inputs named after the model's inputs,
                                                    outputs after its output layers
                                                    (output_1.. for subclassed models)
    obj.optimizer.variables                         only with include_optimizer=True
    obj.keras_api                                   every saved layer has one:
        .variables .trainable_variables .non_trainable_variables
        .layers                                     direct sublayers' saved objects, in
                                                    Keras' order (input layers included)
        .metrics .layer_metrics (dict by name)
        .regularization_losses                      the layer's and its sublayers'
        .layer_regularization_losses                the layer's own
        .__call__(x[, training])                    outputs
        .call_and_return_conditional_losses(x[, training])
                                                    (outputs, [input-dependent losses]),
                                                    without the layer's activity loss
        .call_and_return_all_conditional_losses(x[, training])
                                                    (outputs, [... and the activity loss
                                                    per output, divided by the batch size
                                                    as Keras 3 does])
        .activity_regularizer_fn(output)            the regularizer itself, where set
        ._default_save_signature                    the root model only
        .states                                     RNN layers only

A function takes ``training`` (a Python bool) when the layer or one of its sublayers takes
it in Keras 3 (Keras 3's ``Dense`` does). A subclassed model's serving inputs take the
shapes and dtypes of its ``input_spec`` where it declares both for every input (a
``keras.InputSpec`` or a list or dict of them); otherwise the shapes it was built with and
the model's ``input_dtype``, since Keras 3 records the shapes a subclassed model was built
with, not the dtypes it was called with (pass ``signatures=`` for other inputs then).

``x`` above stands for every tensor argument the layer's ``call`` requires: an RNN cell's
functions take ``(inputs, states[, training])``, an attention layer's ``(inputs, value[,
training])``. A subclassed model called as ``model(a, b)`` is served with inputs ``a`` and
``b`` when its ``build`` takes a shape per argument (Keras 3 records only the first
argument's shape otherwise, and the model is saved without functions, with a warning).

The metadata node of a layer is at the path
``root.keras_api.layers.<i>.keras_api.layers.<j>...``; its ``node_id`` is the object's id
in ``saved_model.pb``. Function names follow tf_keras: ``{layer}_layer_call_fn``,
``{layer}_layer_call_and_return_conditional_losses``,
``{layer}_layer_call_and_return_all_conditional_losses``, ``{layer}_activity_regularizer``
and ``loss_fn_{i}``. A layer without an activity regularizer has one function under both
``call_and_return_conditional_losses`` and ``call_and_return_all_conditional_losses``: they
compute the same, and tracing it once keeps saving fast.
"""

from reference_impl.load import load
from reference_impl.save import save

__all__ = ["load", "save"]
