"""The built-in implementations the suite knows by name."""

from conformance.api import Implementation


class ReferenceImplementation(Implementation):
    """``reference_impl``: this project's serializer and loader for Keras 3 models."""

    name = "reference"
    framework = "keras"

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        import reference_impl

        reference_impl.save(
            model,
            path,
            overwrite=overwrite,
            include_optimizer=include_optimizer,
            signatures=signatures,
        )

    def load(self, path):
        import reference_impl

        return reference_impl.load(path)


class TfKerasLegacyImplementation(Implementation):
    """tf_keras' own saver and loader (``save_format="tf"``): where the format comes from."""

    name = "tf_keras"
    framework = "tf_keras"

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        model.save(
            path,
            overwrite=overwrite,
            include_optimizer=include_optimizer,
            save_format="tf",
            signatures=signatures,
        )

    def load(self, path):
        import tf_keras

        return tf_keras.models.load_model(path)
