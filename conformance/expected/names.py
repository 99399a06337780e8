"""The names the contract gives a serving signature (SIG-SERVING; the consumers use them too)."""


def expected_output_names(spec):
    """Serving output keys: output layer names, or output_1..n for subclassed models."""
    if spec.topology == "subclassed":
        return [f"output_{i}" for i in range(1, len(spec.outputs) + 1)]
    return list(spec.output_names())


def expected_input_names(spec, serving_inputs):
    """Serving input names: the model's; a subclassed model has none of its own, so the
    serving signature's (the saver's) are taken."""
    if spec.topology == "subclassed":
        return list(serving_inputs)
    return list(spec.input_names())
