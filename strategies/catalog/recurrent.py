"""Recurrent layers: SimpleRNN, LSTM, GRU, ConvLSTM1D and the Bidirectional/TimeDistributed
wrappers. Recurrent dropout stays 0 so that outputs are deterministic in training."""

from __future__ import annotations

from hypothesis import strategies as st

from .base import Kind, activation, conv_len, ints, pick, register

_RNN_REGS = (
    ("kernel_regularizer", True),
    ("recurrent_regularizer", True),
    ("bias_regularizer", False),
)


def _rnn_params(draw, shapes, dtype, kind):
    p = {
        "units": ints(draw, 1, 4),
        "return_sequences": draw(st.booleans()),
        "go_backwards": draw(st.booleans()),
        "use_bias": not draw(st.booleans()),
    }
    if kind == "GRU":
        p["reset_after"] = not draw(st.booleans())
    if kind == "SimpleRNN":
        p["activation"] = pick(draw, ("tanh", "relu", "sigmoid"))
    return p


def _rnn_out(shapes, p):
    t = shapes[0][0]
    return (t, p["units"]) if p["return_sequences"] else (p["units"],)


for _kind in ("SimpleRNN", "LSTM", "GRU"):
    register(
        Kind(
            name=_kind,
            family="recurrent",
            ranks=(2,),
            params=(lambda k: lambda draw, s, d: _rnn_params(draw, s, d, k))(_kind),
            out_shape=_rnn_out,
            make=(lambda k: lambda K, p, kw: getattr(K.layers, k)(**p, **kw))(_kind),
            reg_slots=_RNN_REGS,
            activity=True,
            supports_mask=True,
            produces_mask=lambda p, m: m and p["return_sequences"],
            out_ranks=lambda r: (1, 2),
        )
    )


def _bidi_params(draw, shapes, dtype):
    return {
        "layer": pick(draw, ("LSTM", "GRU", "SimpleRNN")),
        "units": ints(draw, 1, 3),
        "return_sequences": draw(st.booleans()),
        "merge_mode": pick(draw, ("concat", "sum", "mul", "ave")),
    }


def _bidi_out(shapes, p):
    units = p["units"] * (2 if p["merge_mode"] == "concat" else 1)
    t = shapes[0][0]
    return (t, units) if p["return_sequences"] else (units,)


def _make_bidi(K, p, kw):
    inner = getattr(K.layers, p["layer"])(
        p["units"],
        return_sequences=p["return_sequences"],
        name=f"{kw['name']}_{p['layer'].lower()}",
        dtype=kw["dtype"],
    )
    return K.layers.Bidirectional(inner, merge_mode=p["merge_mode"], **kw)


register(
    Kind(
        name="Bidirectional",
        family="recurrent",
        ranks=(2,),
        params=_bidi_params,
        out_shape=_bidi_out,
        make=_make_bidi,
        supports_mask=True,
        produces_mask=lambda p, m: m and p["return_sequences"],
        out_ranks=lambda r: (1, 2),
    )
)


def _td_params(draw, shapes, dtype):
    return {"units": ints(draw, 1, 6), "activation": activation(draw)}


def _make_td(K, p, kw):
    inner = K.layers.Dense(
        p["units"], activation=p["activation"], name=f"{kw['name']}_dense", dtype=kw["dtype"]
    )
    return K.layers.TimeDistributed(inner, **kw)


register(
    Kind(
        name="TimeDistributed",
        family="recurrent",
        ranks=(2, 3, 4),
        params=_td_params,
        out_shape=lambda s, p: s[0][:-1] + (p["units"],),
        make=_make_td,
    )
)


def _convlstm_params(draw, shapes, dtype):
    (shape,) = shapes
    padding = pick(draw, ("valid", "same"))
    w = shape[1]
    return {
        "filters": ints(draw, 1, 3),
        "kernel_size": (ints(draw, 1, min(3, w) if padding == "valid" else 3),),
        "padding": padding,
        "return_sequences": draw(st.booleans()),
    }


def _convlstm_out(shapes, p):
    t, w, _ = shapes[0]
    w2 = conv_len(w, p["kernel_size"][0], 1, p["padding"])
    return (t, w2, p["filters"]) if p["return_sequences"] else (w2, p["filters"])


register(
    Kind(
        name="ConvLSTM1D",
        family="recurrent",
        ranks=(3,),
        params=_convlstm_params,
        out_shape=_convlstm_out,
        make=lambda K, p, kw: K.layers.ConvLSTM1D(**p, **kw),
        reg_slots=(
            ("kernel_regularizer", False),
            ("recurrent_regularizer", False),
            ("bias_regularizer", False),
        ),
        out_ranks=lambda r: (2, 3),
    )
)
