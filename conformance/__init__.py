"""The Keras SavedModel conformance suite.

``Implementation`` is the adapter an implementation plugs in with; the suite itself runs as
``pytest --pyargs conformance --conformance-impl=NAME``. Importing this package does not import
TensorFlow.
"""

from conformance.api import Implementation

__all__ = ["Implementation"]
