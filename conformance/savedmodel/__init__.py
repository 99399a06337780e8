"""Reading Keras SavedModel files with plain TensorFlow, as any consumer of the format would.

``tree``: ``tf.saved_model.load`` and the saved layer tree with its ``keras_api`` objects;
``calls``: calling what the files hold; ``files``: the bytes and checkpoint keys on disk;
``bundle``: the checkpoint index's entries, read and written back as a table;
``fingerprint``: the canonical signature fingerprint. Nothing here knows the original model
or the implementation that wrote the files.
"""
