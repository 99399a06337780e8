"""Preprocessing layers: Normalization, Resizing, CenterCrop, Discretization and the heads
that take ids or strings (CategoryEncoding, Hashing, IntegerLookup, StringLookup,
TextVectorization). Rescaling lives in core.

The heads read the model's integer and string inputs. A string input (``dtype="string"``,
``vocab=N``) holds tokens ``w0 .. w{N-1}``; one with ``words`` set holds sentences of up to
that many tokens (only TextVectorization takes it: the generator labels it "text"). A
vocabulary is a strict subset of the input's tokens or ids, so that ``input_data`` hits and
misses it. It is given as a list, written to a file (the SavedModel then holds it as an
asset) or adapted on data drawn from ``adapt_seed``, in which every token has its own count
so that the frequency order (and the vocabulary) is the same in both frameworks.

The heads give one float vector per example (``multi_hot``, ``count``, ``one_hot`` of a
single id): ``output_mode="int"`` would put int64 tensors in the graph, which no other kind
takes yet.
"""

from __future__ import annotations

import os
import tempfile
import zlib

import numpy as np
from hypothesis import strategies as st

from .base import INT_DTYPES, Kind, ints, pick, register, register_fixed

STRING_DTYPES = ("string",)
TEXT_DTYPES = ("text",)  # a string input holding sentences (InputSpec.words set)
_SOURCES = ("list", "file", "adapt")
_WEIGHT = 2  # a small share: adapt is slow (Resizing and CenterCrop, cheap, weigh as others)


def tokens(n: int) -> list[str]:
    """The tokens of a string input with ``vocab=n``."""
    return [f"w{i}" for i in range(n)]


# --- vocabularies --------------------------------------------------------------------------

_VOCAB_DIR: str | None = None


def vocabulary_file(entries) -> str:
    """The path of a vocabulary file holding ``entries`` one a line, written if missing.

    One directory per process; the name is the content's checksum, so every build of a spec
    reads the same file, and a file a test deleted is written again by the next build.
    """
    global _VOCAB_DIR
    if _VOCAB_DIR is None or not os.path.isdir(_VOCAB_DIR):
        _VOCAB_DIR = tempfile.mkdtemp(prefix="ksc_vocab_")
    text = "".join(f"{e}\n" for e in entries)
    path = os.path.join(_VOCAB_DIR, f"vocab_{zlib.crc32(text.encode()):08x}.txt")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return path


def _file_nodes(spec) -> list:
    out = []
    for n in spec.nodes:
        if n.submodel is not None:
            out.extend(_file_nodes(n.submodel))
        elif n.kind in _UNIVERSE and n.param_dict.get("source") == "file":
            out.append(n)
    return out


def vocabulary_files(spec) -> list[str]:
    """The vocabulary files a build of ``spec`` reads (written again if missing)."""
    return [_lookup_vocabulary(n.param_dict, _UNIVERSE[n.kind](n.param_dict))[0]
            for n in _file_nodes(spec)]


# Keras 3.15's IntegerLookup and StringLookup give int64 multi_hot/count/one_hot tensors
# when run, though they declare float32 (documented since keras-team/keras#19660; tf_keras
# gives float32): only kinds whose ops take int64 beside a float kernel follow them, and an
# output gets a Dense.
INT64_HEADS = frozenset({"IntegerLookup", "StringLookup"})
AFTER_INT64_HEADS = frozenset({"Dense", "EinsumDense", "LayerNormalization"})


def holds_assets(spec) -> bool:
    """Whether a SavedModel of ``spec`` holds assets (a vocabulary given as a file)."""
    return bool(_file_nodes(spec))


def _adapt_counts(k: int, seed: int) -> list[int]:
    """Distinct counts 1..k, a seeded permutation: token i appears counts[i] times."""
    return [int(c) + 1 for c in np.random.default_rng(seed).permutation(k)]


def _adapt_entries(universe: list, k: int, seed: int) -> tuple[list, list]:
    """(adapt data, the vocabulary Keras learns from it): the first ``k`` entries of
    ``universe``, each with its own count, shuffled; the vocabulary is by count, largest
    first."""
    counts = _adapt_counts(k, seed)
    data = [universe[i] for i in range(k) for _ in range(counts[i])]
    order = np.random.default_rng(seed + 1).permutation(len(data))
    vocab = [universe[i] for i in sorted(range(k), key=lambda i: -counts[i])]
    return [data[j] for j in order], vocab


def _vocab_params(draw, universe_size: int) -> dict:
    """Where the vocabulary comes from and how large it is: a strict subset of the input's
    ``universe_size`` entries, so that data hits and misses it."""
    source = pick(draw, _SOURCES)
    k = ints(draw, 1, max(1, universe_size - 1))
    if source == "adapt":
        return {"source": "adapt", "adapt_size": k, "adapt_seed": ints(draw, 0, 2**16)}
    ids = draw(st.permutations(range(universe_size)))[:k]
    return {"source": source, "vocabulary": tuple(sorted(ids))}


def _vocab_size(p: dict) -> int:
    return p["adapt_size"] if p["source"] == "adapt" else len(p["vocabulary"])


def _output_mode(draw, shape) -> str:
    one_id = shape == (1,)  # one_hot of several ids would add an axis
    return pick(draw, ("multi_hot", "count", "one_hot") if one_id else ("multi_hot", "count"))


def _lookup_vocabulary(p: dict, universe: list):
    """The ``vocabulary`` argument (list or file path), or the adapt data when adapted."""
    if p["source"] == "adapt":
        return None, _adapt_entries(universe, p["adapt_size"], p["adapt_seed"])[0]
    entries = [universe[i] for i in p["vocabulary"]]
    if p["source"] == "file":
        return vocabulary_file(entries), None
    return entries, None


# --- Normalization ---------------------------------------------------------------------------


def _norm_params(draw, shapes, dtype):
    (shape,) = shapes
    p: dict = {"invert": draw(st.booleans()), "build_shape": shape}
    if draw(st.booleans()):
        p["axis"] = None
    channels = 1 if p.get("axis", -1) is None else shape[-1]
    if draw(st.booleans()):  # given as constants; else variables the build seeds
        p["mean"] = tuple(pick(draw, (0.0, 0.5, -0.25)) for _ in range(channels))
        p["variance"] = tuple(pick(draw, (1.0, 0.5, 2.0)) for _ in range(channels))
    return p


def _make_norm(K, p, kw):
    p = dict(p)
    shape = p.pop("build_shape")
    if "mean" in p:
        p["mean"], p["variance"] = list(p["mean"]), list(p["variance"])
        if p.get("axis", -1) is None:
            p["mean"], p["variance"] = p["mean"][0], p["variance"][0]
    # Without mean and variance the layer holds them as variables (the adapted state);
    # build_model seeds them like every other float variable, so both frameworks agree.
    layer = K.layers.Normalization(**p, **kw)
    # Built now, eagerly: Keras 3.15 builds it inside a subclassed model's symbolic first
    # call otherwise, and its mean and variance tensors then belong to that graph ("out of
    # scope" on every later call).
    layer.build((None, *shape))
    return layer


register(
    Kind(
        name="Normalization",
        family="preprocessing",
        ranks=(1, 2, 3),
        dtypes=("float32",),
        params=_norm_params,
        out_shape=lambda s, p: s[0],
        make=_make_norm,
        weight=_WEIGHT,
        shareable=False,
    )
)


# --- image ------------------------------------------------------------------------------------


def _resizing_params(draw, shapes, dtype):
    ((h, w, _),) = shapes
    p = {
        "height": ints(draw, 1, 8),
        "width": ints(draw, 1, 8),
        "interpolation": pick(draw, ("bilinear", "nearest", "area")),
        "crop_to_aspect_ratio": draw(st.booleans()),
    }
    # the crop to the target's aspect ratio must keep a pixel each way (a 1x1 image cropped
    # to 1:8 is empty: "input image must be of non-zero size")
    if w * p["height"] < p["width"] or h * p["width"] < p["height"]:
        p["crop_to_aspect_ratio"] = False
    return p


register(
    Kind(
        name="Resizing",
        family="preprocessing",
        ranks=(3,),
        dtypes=("float32",),
        params=_resizing_params,
        out_shape=lambda s, p: (p["height"], p["width"], s[0][-1]),
        make=lambda K, p, kw: K.layers.Resizing(**p, **kw),
    )
)

register(
    Kind(
        name="CenterCrop",
        family="preprocessing",
        ranks=(3,),
        dtypes=("float32",),
        params=lambda draw, s, d: {
            "height": ints(draw, 1, s[0][0]),
            "width": ints(draw, 1, s[0][1]),
        },
        out_shape=lambda s, p: (p["height"], p["width"], s[0][-1]),
        make=lambda K, p, kw: K.layers.CenterCrop(**p, **kw),
    )
)


# --- Discretization ---------------------------------------------------------------------------


def _disc_params(draw, shapes, dtype):
    (shape,) = shapes
    p: dict = {"output_mode": _output_mode(draw, shape)}
    if draw(st.booleans()):
        n = ints(draw, 1, 4)
        grid = (-1.5, -1.0, -0.5, -0.1, 0.0, 0.2, 0.5, 1.0, 1.5)
        p["bin_boundaries"] = tuple(sorted(draw(st.permutations(grid))[:n]))
    else:
        p["num_bins"] = ints(draw, 2, 5)
        p["adapt_seed"] = ints(draw, 0, 2**16)
    return p


def _disc_bins(p) -> int:
    return len(p["bin_boundaries"]) + 1 if "bin_boundaries" in p else p["num_bins"]


def _make_disc(K, p, kw):
    p = dict(p)
    seed = p.pop("adapt_seed", None)
    if "bin_boundaries" in p:
        return K.layers.Discretization(bin_boundaries=list(p.pop("bin_boundaries")), **p, **kw)
    layer = K.layers.Discretization(**p, **kw)
    # Few distinct values, far apart: both frameworks' quantile summaries find the same
    # boundaries (they differ on dense data).
    values = np.repeat(np.arange(8, dtype="float32") - 3.5, 5)
    layer.adapt(np.random.default_rng(seed).permutation(values).reshape(-1, 1))
    return layer


register(
    Kind(
        name="Discretization",
        family="preprocessing",
        ranks=(1,),
        dtypes=("float32",),
        params=_disc_params,
        out_shape=lambda s, p: (_disc_bins(p),),
        make=_make_disc,
        weight=_WEIGHT,
        shareable=False,
    )
)


# --- heads on ids and strings ---------------------------------------------------------------
# ``vocab_params`` (base.Kind) gets the source input's vocabulary size from the generator.


def _head_kw(kw):
    """TensorFlow's bincount has no float16 kernel: a float16 model's heads count in float32
    (the layers after them cast, as they cast any float input)."""
    return {**kw, "dtype": "float32"} if kw.get("dtype") == "float16" else kw


def _head_params(draw, shapes, dtype):
    return {"output_mode": _output_mode(draw, shapes[0])}


def _category_vocab(draw, vocab, p):
    return {"num_tokens": vocab + ints(draw, 0, 2)}


register(
    Kind(
        name="CategoryEncoding",
        family="preprocessing",
        ranks=(1,),
        dtypes=INT_DTYPES,
        params=_head_params,
        vocab_params=_category_vocab,
        out_shape=lambda s, p: (p["num_tokens"],),
        make=lambda K, p, kw: K.layers.CategoryEncoding(**p, **_head_kw(kw)),
        weight=_WEIGHT,
    )
)


def _hashing_params(draw, shapes, dtype):
    p = {"num_bins": ints(draw, 2, 6), "output_mode": _output_mode(draw, shapes[0])}
    if draw(st.booleans()):
        p["salt"] = ints(draw, 1, 1000)
    return p


register(
    Kind(
        name="Hashing",
        family="preprocessing",
        ranks=(1,),
        dtypes=INT_DTYPES + STRING_DTYPES,
        params=_hashing_params,
        out_shape=lambda s, p: (p["num_bins"],),
        make=lambda K, p, kw: K.layers.Hashing(**p, **_head_kw(kw)),
        weight=_WEIGHT,
    )
)


_UNIVERSE = {
    "IntegerLookup": lambda p: list(range(p["universe"])),
    "StringLookup": lambda p: tokens(p["universe"]),
    "TextVectorization": lambda p: tokens(p["universe"]),
}


def _make_lookup(cls_name: str):
    def make(K, p, kw):
        p = dict(p)
        vocab, adapt = _lookup_vocabulary(p, _UNIVERSE[cls_name](p))
        for key in ("source", "vocabulary", "adapt_size", "adapt_seed", "universe"):
            p.pop(key, None)
        layer = getattr(K.layers, cls_name)(vocabulary=vocab, **p, **_head_kw(kw))
        if adapt is not None:
            data = np.array(adapt)
            layer.adapt(data.reshape(-1, 1) if cls_name != "TextVectorization" else data)
        return layer

    return make


def _lookup_vocab(draw, vocab, p):
    return {"universe": vocab, **_vocab_params(draw, vocab)}


register(
    Kind(
        name="IntegerLookup",
        family="preprocessing",
        ranks=(1,),
        dtypes=INT_DTYPES,
        params=_head_params,
        vocab_params=_lookup_vocab,
        out_shape=lambda s, p: (_vocab_size(p) + 1,),  # + the OOV index
        make=_make_lookup("IntegerLookup"),
        weight=_WEIGHT,
        shareable=False,
    )
)

register(
    Kind(
        name="StringLookup",
        family="preprocessing",
        ranks=(1,),
        dtypes=STRING_DTYPES,
        params=_head_params,
        vocab_params=_lookup_vocab,
        out_shape=lambda s, p: (_vocab_size(p) + 1,),
        make=_make_lookup("StringLookup"),
        weight=_WEIGHT,
        shareable=False,
    )
)

# Not drawn (a fixed kind): Keras 3.15's symbolic output shape of a multi_hot/count
# TextVectorization on (batch, 1) strings is (batch, 1, V), its eager output (batch, V) and
# tf_keras' both (batch, V); a drawn model would not build the same in both frameworks.
register_fixed(
    Kind(
        name="TextVectorization",
        family="preprocessing",
        ranks=(1,),
        dtypes=TEXT_DTYPES,
        params=lambda draw, s, d: {"output_mode": pick(draw, ("multi_hot", "count"))},
        vocab_params=_lookup_vocab,
        out_shape=lambda s, p: (_vocab_size(p) + 1,),
        make=_make_lookup("TextVectorization"),
        accepts=lambda s: s == (1,),
        weight=_WEIGHT,
        shareable=False,
    )
)
