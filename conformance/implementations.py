"""The built-in implementations the suite knows by name."""

import warnings

from conformance.api import Implementation


class ReferenceImplementation(Implementation):
    """``reference_impl``: this project's serializer and loader for Keras 3 models."""

    name = "reference"
    framework = "keras"

    @property
    def load_errors(self):
        """The error family of its loader (LOAD-HOSTILE): every refusal is one of these."""
        from reference_impl.errors import ReferenceImplError

        return (ReferenceImplError,)

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


# Why ``keras_export`` claims only some clauses. Keras 3's ``model.export`` writes an
# inference artifact (a ``serve`` endpoint aliased ``serving_default``, the variables it
# uses), not the Keras SavedModel format: no ``keras_api``, no per-layer call functions, no
# losses, no training mode, no optimizer, no metadata. A clause that checks one of those is
# not claimed; the matrix shows the reason next to "not claimed".
KERAS_EXPORT_NOT_CLAIMED = {
    "FORMAT-KERAS-API": "export writes no `keras_api` object tree: the format's attribute lists "
    "and call functions are not part of an inference artifact",
    "VARS-EXACT": "checked through the `keras_api` variable lists, which export does not write; "
    "export saves only the variables its `serve` endpoint uses (the differential checks compare "
    "the outputs they give)",
    "LAYERS-TREE": "export keeps no layer tree (`keras_api.layers`)",
    "CALL-INFERENCE": "checks `keras_api.__call__`, which export does not write; its "
    "`serving_default` outputs are compared with the original and with every other "
    "implementation by the differential checks",
    "CALL-TRAINING": "export traces `serve` with training=False only: no training mode is kept",
    "CALL-CONSISTENT": "export writes no per-layer call functions to compare",
    "LOSSES-REGULARIZATION": "export keeps no regularization losses",
    "LOSSES-ACTIVITY": "export keeps no activity losses (no `call_and_return_*` functions)",
    "SAVE-UNBUILT": "export refuses an input-less model before writing, as the clause asks, but "
    "writes no `keras_api` tree in which an unbuilt sub-layer could be saved without functions",
    "SAVE-OPTIMIZER": "an inference export never writes optimizer state, so "
    "include_optimizer=True cannot round-trip it",
    "SAVE-ATOMIC": "export writes in place through `tf.saved_model.save` and promises no "
    "atomicity; the clause's check also reads `keras_api.variables`",
    "LOAD-REVIVE": "`TFSMLayer` is an inference wrapper, not a revived model: it keeps no losses "
    "or training mode, and its weights are copies the `serve` function does not use, so a "
    "gradient step cannot fine-tune it",
    "LOAD-RESAVE": "the loaded `TFSMLayer` re-exports without `keras_api`, which the clause's "
    "check reads",
    "LOAD-RESUME": "an inference export keeps no optimizer and no training config: the loaded "
    "`TFSMLayer` cannot be trained",
}


class KerasExportImplementation(Implementation):
    """Keras 3 ``model.export(path, format="tf_saved_model")``; loaded with ``TFSMLayer``.

    An inference export: it claims the serving signature (SIG-SERVING, SIG-STABLE), the save
    arguments it can honour (SAVE-OVERWRITE, SAVE-SIGNATURES), that saving leaves the model
    alone (SAVE-NO-MUTATION) and works from threads (SAVE-CONCURRENT), and that its loader
    fails clearly on damaged files (LOAD-CORRUPT). Every other clause is listed, with the
    reason, in ``not_claimed`` (``KERAS_EXPORT_NOT_CLAIMED``).

    Arguments:

    - ``overwrite=False`` on an existing path raises ``FileExistsError`` before anything is
      written (``export`` itself would write into the directory).
    - ``include_optimizer`` has no effect: an inference export never writes optimizer state
      (SAVE-OPTIMIZER is not claimed); a warning says so when the model has a built optimizer.
    - ``signatures``: a mapping of name to ``tf.function`` (with an input signature, or called
      once) becomes the archive's endpoints, through ``keras.export.ExportArchive``, instead of
      the default ``serve``. Keras adds a ``serving_default`` alias of the first endpoint when
      the mapping has none: that is Keras' behaviour, reported, not hidden.

    ``load`` returns a ``keras.layers.TFSMLayer`` on the ``serve`` endpoint (or on
    ``serving_default`` when the artifact has no ``serve``): a Keras 3 layer computing the
    exported forward pass, ``layer(inputs)``.
    """

    name = "keras_export"
    framework = "keras"
    not_claimed = KERAS_EXPORT_NOT_CLAIMED

    @property
    def claims(self):
        from conformance.contract import CLAUSE_IDS

        return frozenset(c for c in CLAUSE_IDS if c not in self.not_claimed)

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        import os
        import shutil

        path = os.fspath(path)
        if os.path.exists(path):
            if not overwrite:
                raise FileExistsError(f"{path} exists and overwrite=False: nothing was written")
            # ``export`` writes into an existing directory, leaving stale files beside the new
            # ones (an old keras_metadata.pb, for one): replace it as a whole.
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        optimizer = getattr(model, "optimizer", None)
        if include_optimizer and optimizer is not None and list(optimizer.variables):
            warnings.warn(
                f"keras_export: {model.name}'s optimizer is not saved (an inference export "
                "never writes optimizer state; include_optimizer has no effect)",
                stacklevel=2,
            )
        if signatures is None:
            model.export(path, format="tf_saved_model", verbose=False)
            return
        if not isinstance(signatures, dict):
            signatures = {"serving_default": signatures}
        from keras.export import ExportArchive

        archive = ExportArchive()
        archive.track(model)
        for key, function in signatures.items():
            archive.add_endpoint(key, function)
        archive.write_out(path, verbose=False)

    def load(self, path):
        import os

        import keras

        from conformance.savedmodel import tree

        path = os.fspath(path)
        loaded = tree.load(path)  # raises, naming the path, on a missing or damaged artifact
        endpoint = "serve" if hasattr(loaded, "serve") else "serving_default"
        return keras.layers.TFSMLayer(path, call_endpoint=endpoint)
