"""An ONNX graph of a BERT sentence encoder, built from its weights with ``onnx.helper``.

Inputs: ``input_ids`` and ``attention_mask`` (int64, batch x tokens). Output:
``sentence_embedding`` (float32, batch x hidden), what sentence-transformers gives for
Transformer + mean Pooling + Normalize:

- embeddings: word + position + token type 0, then LayerNorm. The word table (30,522 x
  384) is kept in float16 and cast after the lookup: half the memory of the largest
  tensor, and embeddings within 3e-7 cosine of float32's (the reference test holds it);
- each layer: self-attention (scores over the key positions the mask keeps; masked ones
  get the lowest float, as transformers' BERT does), output projection, residual and
  LayerNorm, then the feed-forward block with exact (erf) GELU, residual and LayerNorm;
- pooling: the mean of the token vectors where the mask is 1 (the count at least 1e-9),
  divided by its L2 norm (at least 1e-12).

Padding costs only attention: the dense products (the query, key and value projection,
the output projection and the feed-forward block, nearly all of the arithmetic) and the
LayerNorms run on the kept tokens alone, a tokens x hidden matrix gathered with the
mask's positions (``NonZero``); attention gathers them back into batch x tokens rows.
A padded position there holds a copy of a kept token's row: the mask gives its scores no
weight and its own output row is dropped, so it only needs to be finite. With topics of
3 to 19 word pieces in one batch, that is a fifth less arithmetic than padding them all.

Weights are stored transposed for ``MatMul`` (PyTorch's ``Linear`` keeps them as out x in),
and the query, key and value projections of a layer are one ``MatMul`` into a matrix
three times as wide, split afterwards: one larger product is faster than three small ones.
Only standard operators of opset 18 are used, so any onnxruntime since 1.14 runs it; the
session's own graph optimisations fuse the LayerNorm, GELU and bias additions.
"""

from __future__ import annotations

import numpy as np


class _Graph:
    """Collects nodes and initializers; ``op`` adds a node and returns its output's name."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self._constants: set[str] = set()
        self._count = 0

    def const(self, name: str, array) -> str:
        from onnx import numpy_helper

        if name in self._constants:
            return name
        self._constants.add(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attributes) -> str:
        from onnx import helper

        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def ops(self, op_type: str, inputs: list[str], outputs: int, **attributes) -> list[str]:
        from onnx import helper

        self._count += 1
        names = [f"{op_type.lower()}_{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=names[0], **attributes))
        return names


def build(weights: dict[str, np.ndarray], config: dict):
    """The ``onnx.ModelProto`` of the encoder (``config``: the model's ``config.json``)."""
    from onnx import TensorProto, helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph()
    g.const("shape_heads", np.array([0, 0, heads, hidden // heads], dtype=np.int64))
    g.const("shape_rows", np.array([-1, hidden], dtype=np.int64))
    g.const("scale", np.array(1.0 / np.sqrt(hidden // heads), dtype=np.float32))
    g.const("one", np.array(1.0, dtype=np.float32))
    g.const("half", np.array(0.5, dtype=np.float32))
    g.const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    g.const("lowest", np.array(np.finfo(np.float32).min, dtype=np.float32))
    g.const("axis1", np.array([1], dtype=np.int64))
    g.const("axes12", np.array([1, 2], dtype=np.int64))
    g.const("tiny_count", np.array(1e-9, dtype=np.float32))
    g.const("tiny_norm", np.array(1e-12, dtype=np.float32))
    g.const("flat", np.array([-1], dtype=np.int64))
    g.const("axis0", np.array([0], dtype=np.int64))
    g.const("one_i", np.array(1, dtype=np.int64))
    g.const("zero_i", np.array(0, dtype=np.int64))

    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)  # batch x tokens
    kept = _kept_positions(g)
    hidden_states = _embeddings(g, weights, eps, kept)  # kept tokens x hidden
    # Added to every head's scores: 0 where a key position is kept, the lowest float where masked.
    mask_bias = g.op("Mul", [g.op("Sub", ["one", g.op("Unsqueeze", [mask, "axes12"])]), "lowest"])
    for layer in range(int(config["num_hidden_layers"])):
        hidden_states = _layer(g, weights, f"encoder.layer.{layer}.", hidden_states, mask_bias, eps, kept)
    embedding = _mean_pool_and_normalise(g, _padded(g, kept, hidden_states, hidden), mask)

    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info(embedding, TensorProto.FLOAT, ["batch", hidden])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="paper-digest")
    model.ir_version = 8  # what onnxruntime 1.14 and later read
    return _rename_output(model, embedding, "sentence_embedding")


class _Kept:
    """Names of the tensors that move between the kept tokens and the padded batch."""

    def __init__(self, flat: str, slots: str, width: str, batch_shape: str):
        self.batch_shape = batch_shape  # [batch, tokens]
        self.shapes: dict[int, str] = {}  # [batch, tokens, width] per width
        self.flat = flat  # kept tokens: their positions in the flattened batch x tokens
        self.slots = slots  # batch x tokens: each position's kept token (the one before, where padded)
        self.width = width  # [tokens]: the padded length


def _kept_positions(g: _Graph) -> _Kept:
    flat_mask = g.op("Reshape", ["attention_mask", "flat"])
    flat = g.op("Squeeze", [g.op("NonZero", [flat_mask]), "axis0"])
    # Where the mask is 1 its running count - 1 is the token's row among the kept ones; a
    # padded position gets the row of the last kept token before it (or row 0).
    slots = g.op("Max", [g.op("Sub", [g.op("CumSum", [flat_mask, "axis0"]), "one_i"]), "zero_i"])
    return _Kept(flat, slots, g.op("Shape", ["input_ids"], start=1, end=2), g.op("Shape", ["input_ids"]))


def _padded(g: _Graph, kept: _Kept, rows: str, width: int) -> str:
    """Kept tokens x ``width`` back to batch x tokens x ``width`` (see the module's doc)."""
    if width not in kept.shapes:
        size = g.const(f"width_{width}", np.array([width], dtype=np.int64))
        kept.shapes[width] = g.op("Concat", [kept.batch_shape, size], axis=0)
    return g.op("Reshape", [g.op("Gather", [rows, kept.slots]), kept.shapes[width]])


def _embeddings(g: _Graph, w: dict, eps: float, kept: _Kept) -> str:
    from onnx import TensorProto

    table = g.const("word_embeddings", w["embeddings.word_embeddings.weight"].astype(np.float16))
    ids = g.op("Gather", [g.op("Reshape", ["input_ids", "flat"]), kept.flat])
    words = g.op("Cast", [g.op("Gather", [table, ids])], to=TensorProto.FLOAT)
    # Token type is always 0 for a single sentence: its row is folded into the positions.
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    position_rows = g.op("Gather", [g.const("position_embeddings", positions), g.op("Mod", [kept.flat, kept.width])])
    summed = g.op("Add", [words, position_rows])
    return _layer_norm(g, w, "embeddings.LayerNorm.", summed, eps)


def _layer_norm(g: _Graph, w: dict, prefix: str, x: str, eps: float) -> str:
    return g.op(
        "LayerNormalization",
        [x, g.const(prefix + "weight", w[prefix + "weight"]), g.const(prefix + "bias", w[prefix + "bias"])],
        axis=-1,
        epsilon=eps,
    )


def _linear(g: _Graph, x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
    product = g.op("MatMul", [x, g.const(name + ".weight_t", np.asarray(weight, dtype=np.float32).T)])
    return g.op("Add", [product, g.const(name + ".bias", bias)])


def _dense(g: _Graph, w: dict, x: str, name: str) -> str:
    return _linear(g, x, name, w[name + ".weight"], w[name + ".bias"])


def _gelu(g: _Graph, x: str) -> str:
    """x * (1 + erf(x / sqrt 2)) / 2, the exact GELU BERT uses."""
    return g.op("Mul", [g.op("Mul", [x, "half"]), g.op("Add", [g.op("Erf", [g.op("Div", [x, "sqrt2"])]), "one"])])


def _layer(g: _Graph, w: dict, prefix: str, x: str, mask_bias: str, eps: float, kept: _Kept) -> str:
    """One encoder layer on the kept tokens (``x``: kept tokens x hidden); attention on the
    padded batch."""
    attention = prefix + "attention."
    parts = ("query", "key", "value")
    qkv_weight = np.concatenate([w[f"{attention}self.{p}.weight"] for p in parts], axis=0)
    qkv_bias = np.concatenate([w[f"{attention}self.{p}.bias"] for p in parts], axis=0)
    qkv = _padded(g, kept, _linear(g, x, attention + "self.qkv", qkv_weight, qkv_bias), qkv_weight.shape[0])
    query, key, value = g.ops("Split", [qkv], 3, axis=-1, num_outputs=3)

    def heads(t: str, perm: list[int]) -> str:  # batch x tokens x hidden -> batch x heads x ...
        return g.op("Transpose", [g.op("Reshape", [t, "shape_heads"])], perm=perm)

    scores = g.op("MatMul", [heads(query, [0, 2, 1, 3]), heads(key, [0, 2, 3, 1])])
    scores = g.op("Add", [g.op("Mul", [scores, "scale"]), mask_bias])
    probabilities = g.op("Softmax", [scores], axis=-1)
    context = g.op("MatMul", [probabilities, heads(value, [0, 2, 1, 3])])
    context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), "shape_rows"])
    projected = _dense(g, w, g.op("Gather", [context, kept.flat]), attention + "output.dense")
    x = _layer_norm(g, w, attention + "output.LayerNorm.", g.op("Add", [projected, x]), eps)
    out = _dense(g, w, _gelu(g, _dense(g, w, x, prefix + "intermediate.dense")), prefix + "output.dense")
    return _layer_norm(g, w, prefix + "output.LayerNorm.", g.op("Add", [out, x]), eps)


def _mean_pool_and_normalise(g: _Graph, x: str, mask: str) -> str:
    weights = g.op("Unsqueeze", [mask, g.const("axis2", np.array([2], dtype=np.int64))])  # batch x tokens x 1
    summed = g.op("ReduceSum", [g.op("Mul", [x, weights]), "axis1"], keepdims=0)
    counts = g.op("Max", [g.op("ReduceSum", [weights, "axis1"], keepdims=0), "tiny_count"])
    mean = g.op("Div", [summed, counts])
    last = g.const("axis_last", np.array([-1], dtype=np.int64))
    norm = g.op("Max", [g.op("ReduceL2", [mean, last], keepdims=1), "tiny_norm"])
    return g.op("Div", [mean, norm])


def _rename_output(model, old: str, new: str):
    for node in model.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
    model.graph.output[0].name = new
    return model
