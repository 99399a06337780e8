"""input_data: one shared batch size 1-4, dtype-safe finite values, ids inside the vocabulary;
call_inputs gives what model(...) expects."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import call_inputs, input_data, model_specs


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.data())
def test_input_data_ranges_and_vocab(data):
    spec = data.draw(model_specs(), label="spec")
    arrays = data.draw(input_data(spec), label="data")
    assert list(arrays) == [i.name for i in spec.inputs]
    batches = {a.shape[0] for a in arrays.values()}
    assert len(batches) == 1
    (batch,) = batches
    assert 1 <= batch <= 4
    for i in spec.inputs:
        a = arrays[i.name]
        if i.batch_size is not None:
            assert batch == i.batch_size
        assert a.shape[0] == batch and len(a.shape) == len(i.shape) + 1
        for axis, (got, probe) in enumerate(zip(a.shape[1:], i.shape)):
            # an open axis: from its probe length up (tests/strategies/test_open_dims.py)
            assert got == probe or (axis in i.open_axes and probe <= got <= probe + 3)
        if i.dtype == "string":  # tokens w0 .. w{vocab-1}, or sentences of them
            assert a.dtype.kind == "U"
            words = [w for s in a.ravel() for w in s.split(" ")]
            assert words and all(w[0] == "w" and 0 <= int(w[1:]) < i.vocab for w in words)
            assert all(len(s.split(" ")) <= max(i.words, 1) for s in a.ravel())
            continue
        assert a.dtype == np.dtype(i.dtype)
        if i.dtype == "int32":
            assert i.vocab is not None
            assert a.min() >= 0 and a.max() < i.vocab
            for n in spec.nodes:
                if i.name in n.inputs and n.kind == "Embedding":  # Embeddings cover the ids
                    assert a.max() < n.param_dict["input_dim"]
                if i.name in n.inputs and n.kind == "CategoryEncoding":
                    assert a.max() < n.param_dict["num_tokens"]
        else:
            assert np.all(np.isfinite(a))
            assert np.all(np.abs(a.astype(np.float64)) <= 2.0)

    x = call_inputs(spec, arrays)
    if spec.dict_inputs:
        assert isinstance(x, dict) and list(x) == [i.name for i in spec.inputs]
    elif len(spec.inputs) == 1:
        assert isinstance(x, np.ndarray)
    else:
        assert isinstance(x, list) and len(x) == len(spec.inputs)


def test_float16_inputs_are_representable():
    @settings(max_examples=40, derandomize=True, deadline=None)
    @given(st.data())
    def check(data):
        spec = data.draw(model_specs(dtypes=["float16"]))
        for name, a in data.draw(input_data(spec)).items():
            if a.dtype == np.float16:
                assert np.all(np.isfinite(a)), name

    check()
