"""Reference implementation of the Keras SavedModel format for Keras 3 (TensorFlow backend).

``save(model, filepath, ...)`` writes a model in the format tf_keras wrote with
``save_format="tf"``: a SavedModel whose objects carry ``keras_api`` endpoints, plus
``keras_metadata.pb``. ``load(filepath, ...)`` rebuilds the Keras model from its config when
every class is known, and otherwise revives it around the saved functions.
"""

from reference_impl.load import load
from reference_impl.save import save

__all__ = ["load", "save"]
