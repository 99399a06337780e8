"""Root conftest: TensorFlow stays quiet in every test process, xdist workers included."""

from conformance.environment import quiet_tensorflow

quiet_tensorflow()
