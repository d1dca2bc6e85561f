"""The network as one ONNX graph, built at load time from the verified weights with `onnx.helper`:
one source of truth for the weights, never a second exported copy to keep in step.

Embedding gather -> the native RNN/GRU/LSTM op with `sequence_lens` (one per layer), so padding is
never read -> the same pooling as torch, masked to each text's real steps -> dense (+ the
n-gram branch's scores: two gathers and weighted sums) -> softmax.
"""

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.core.architecture import ModelConfig
from app.core.artifacts import Weights
from app.core.tokenizer import UNK_ID

# ReduceMax takes its axes as an input from opset 18 on; IR 8 is the version opset 18 came with.
OPSET = 18
IR_VERSION = 8

# torch and ONNX stack a recurrent layer's gate weights in different orders: for each ONNX gate
# in turn, the index of torch's block that holds it.
GATE_ORDER = {
    "rnn": [0],
    "gru": [1, 0, 2],  # torch r, z, n -> ONNX z, r, h
    "lstm": [0, 3, 1, 2],  # torch i, f, g, o -> ONNX i, o, f, c
}
ONNX_OPS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _recurrent_weights(config: ModelConfig, weights: Weights, layer: int) -> dict[str, np.ndarray]:
    """One layer's W, R and B in ONNX's layout ([directions, gates * H, ...]) from torch's."""
    order = GATE_ORDER[config.rnn_type]
    suffixes = [f"_l{layer}"] + ([f"_l{layer}_reverse"] if config.bidirectional else [])

    def stacked(name: str) -> np.ndarray:
        per_direction = []
        for suffix in suffixes:
            blocks = np.split(weights[f"rnn.{name}{suffix}"], len(order))
            per_direction.append(np.concatenate([blocks[i] for i in order]))
        return np.stack(per_direction).astype(np.float32)

    return {
        "W": stacked("weight_ih"),
        "R": stacked("weight_hh"),
        "B": np.concatenate([stacked("bias_ih"), stacked("bias_hh")], axis=1),
    }


class _GraphBuilder:
    """Nodes and constant tensors of one graph, added in order."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: dict[str, np.ndarray] = {}

    def add(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def constant(self, name: str, value: np.ndarray) -> str:
        self.constants[name] = value
        return name

    def batch_first(self, per_direction: str) -> str:
        """[D, B, F] -> [B, D * F], forward direction first, as torch concatenates them."""
        transposed = self.add("Transpose", [per_direction], f"{per_direction}_bdf", perm=[1, 0, 2])
        shape = self.constant("batch_by_rest", np.array([0, -1], np.int64))  # 0: keep B
        return self.add("Reshape", [transposed, shape], f"{per_direction}_flat")

    def next_layer_input(self, outputs: str) -> str:
        """[T, D, B, H] -> [T, B, D * H]: both directions' states are the next layer's input."""
        steps_first = self.add("Transpose", [outputs], f"{outputs}_tbdh", perm=[0, 2, 1, 3])
        shape = self.constant("keep_steps_and_batch", np.array([0, 0, -1], np.int64))
        return self.add("Reshape", [steps_first, shape], f"{outputs}_input")

    def over_time(self, reduce: str, values: str, output: str = "") -> str:
        """[T, ...] -> [...]: reduced over the time steps."""
        axis = self.constant("time_axis", np.array([0], np.int64))
        return self.add(reduce, [values, axis], output or f"{reduce}_steps", keepdims=0)


def _recurrent_layers(g: _GraphBuilder, config: ModelConfig, weights: Weights) -> str:
    """Embedding and every recurrent layer; the last layer's outputs `steps` [T, D, B, H] (zeros
    past each text's end) and final states `final` [D, B, H] (each at its text's end)."""
    embedding = g.constant("embedding", np.asarray(weights["embedding.weight"], np.float32))
    # ids come time-major ([T, B], transposed in numpy), as the recurrent op reads them.
    layer_input = g.add("Gather", [embedding, "ids"], "embedded")
    recurrent: dict[str, Any] = {
        "hidden_size": config.hidden_dim,
        "direction": "bidirectional" if config.bidirectional else "forward",
    }
    if config.rnn_type == "gru":
        # torch's GRU applies the reset gate after the recurrent matmul (ONNX default: before).
        recurrent["linear_before_reset"] = 1
    last = config.num_layers - 1
    outputs = ""
    for layer in range(config.num_layers):
        if layer:
            layer_input = g.next_layer_input(outputs)
        layer_weights = [
            g.constant(f"{name}_l{layer}", value)
            for name, value in _recurrent_weights(config, weights, layer).items()
        ]
        outputs = "steps" if layer == last else f"outputs_l{layer}"
        final = "final" if layer == last else f"final_l{layer}"
        g.nodes.append(
            helper.make_node(
                ONNX_OPS[config.rnn_type],
                [layer_input, *layer_weights, "lengths"],
                [outputs, final],
                **recurrent,
            )
        )
    return outputs


def _pooled(g: _GraphBuilder, pooling: str) -> str:
    """The features the dense layer reads, [B, F], in the order `_dense_weight` expects."""
    if pooling == "last":
        return g.batch_first("final")
    masked = g.add(
        "Where", ["real", "steps", g.constant("minus_inf", np.array(-np.inf, np.float32))], "masked"
    )
    highest = g.over_time("ReduceMax", masked)
    if pooling == "max":
        return g.batch_first(highest)
    # Steps past a text's end are zeros: the sum needs no mask.
    mean = g.add("Mul", [g.over_time("ReduceSum", "steps"), "inverse_lengths"], "mean_steps")
    # [D, B, 2H]: max and mean side by side per direction, the dense weight's columns reordered
    # to match, which spares a transpose and a reshape per pooled vector.
    return g.batch_first(g.add("Concat", [highest, mean], "max_mean", axis=2))


def _dense_weight(config: ModelConfig, weight: np.ndarray) -> np.ndarray:
    """torch's dense weight [C, F] as the graph's [F, C]; for max_mean its columns reordered from
    torch's [max fwd, max bwd, mean fwd, mean bwd] to the graph's [max fwd, mean fwd, max bwd, ...]."""
    if config.pooling == "max_mean":
        h, d = config.hidden_dim, config.directions
        blocks = weight.reshape(weight.shape[0], 2, d, h)  # [C, pooling, direction, H]
        weight = blocks.transpose(0, 2, 1, 3).reshape(weight.shape[0], -1)
    return np.ascontiguousarray(np.asarray(weight, np.float32).T)


def ngram_table(weights: Weights) -> np.ndarray:
    """The branch's scores as one table, with the dense bias added to every row: the words' rows,
    the pair buckets' rows, then a row of zeros that padding reads (see `ngram_rows`). The mean of
    a text's rows is then the branch's logits plus the bias, which spares the graph a node. The
    <unk> word's row is the bias alone, and pairs with <unk> read it too: they score nothing but
    count in the mean (app/core/ngrams.py)."""
    words, pairs, bias = weights["ngrams.words"], weights["ngrams.pairs"], weights["dense.bias"]
    words = words.copy()
    words[UNK_ID] = 0.0
    zeros = np.zeros((1, words.shape[1]), np.float32)
    return np.concatenate([words + bias, pairs + bias, zeros]).astype(np.float32)


def _ngram_scores(g: _GraphBuilder, weights: Weights) -> str:
    """The branch's logits plus the dense bias, [B, C]: the mean of the text's rows of
    `ngram_table` (numpy computes the rows, `ngram_rows`, and 1 / their number,
    `inverse_ngrams`): a gather, a sum and a product, since every node has a fixed cost that a
    text alone notices."""
    table = g.constant("ngram_table", ngram_table(weights))
    gathered = g.add("Gather", [table, "ngram_rows"], "ngram_scores")  # [N, B, C]
    summed = g.over_time("ReduceSum", gathered, "ngram_summed")
    return g.add("Mul", [summed, "inverse_ngrams"], "ngram_logits")


def _inputs(config: ModelConfig) -> list[onnx.ValueInfoProto]:
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["steps", "batch"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]),
    ]
    if config.pooling != "last":
        inputs.append(
            helper.make_tensor_value_info("real", TensorProto.BOOL, ["steps", 1, "batch", 1])
        )
    if config.pooling == "max_mean":
        inputs.append(
            helper.make_tensor_value_info("inverse_lengths", TensorProto.FLOAT, [1, "batch", 1])
        )
    if config.ngram_buckets:
        inputs += [
            helper.make_tensor_value_info("ngram_rows", TensorProto.INT64, ["ngrams", "batch"]),
            helper.make_tensor_value_info("inverse_ngrams", TensorProto.FLOAT, ["batch", 1]),
        ]
    return inputs


# The extra outputs of a tracing graph: each stage of the forward pass, for /explain.
TRACE_OUTPUTS = ("embedded", "steps", "logits")
NGRAM_TRACE_OUTPUT = "ngram_logits"


def build_graph(config: ModelConfig, weights: Weights, trace: bool = False) -> onnx.ModelProto:
    """The classifier as ONNX: ids [T, B] int64, lengths [B] int32 -> probabilities [B, C].

    Pooling over time steps also takes `real` [T, 1, B, 1], bool: step t is one of text b's
    tokens, not padding; and mean pooling `inverse_lengths` [1, B, 1], 1 / length (numpy builds
    both in a step or two where the graph took seven nodes, a measurable share of a short run).
    The n-gram branch takes `ngram_rows` [N, B], each text's rows of `ngram_table` (padding at
    its zero row), and `inverse_ngrams` [B, 1], 1 / each text's number of words and pairs.
    With `trace`, the graph also outputs the embedded tokens [T, B, E], the last recurrent layer's
    steps [T, D, B, H] and the logits, and with a branch its logits.
    """
    g = _GraphBuilder()
    _recurrent_layers(g, config, weights)
    features = _pooled(g, config.pooling)
    dense_w = g.constant("dense_w", _dense_weight(config, weights["dense.weight"]))
    scores = g.add("MatMul", [features, dense_w], "scores")
    if config.ngram_buckets:  # the bias is in the branch's table
        logits = g.add("Add", [scores, _ngram_scores(g, weights)], "logits")
    else:
        dense_b = g.constant("dense_b", np.asarray(weights["dense.bias"], np.float32))
        logits = g.add("Add", [scores, dense_b], "logits")
    g.add("Softmax", [logits], "probabilities", axis=-1)
    outputs = [
        helper.make_tensor_value_info(
            "probabilities", TensorProto.FLOAT, ["batch", config.num_classes]
        )
    ]
    if trace:
        outputs += [
            helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["steps", "batch", "e"]),
            helper.make_tensor_value_info(
                "steps", TensorProto.FLOAT, ["steps", config.directions, "batch", "h"]
            ),
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, ["batch", config.num_classes]
            ),
        ]
        if config.ngram_buckets:
            outputs.append(
                helper.make_tensor_value_info(
                    NGRAM_TRACE_OUTPUT, TensorProto.FLOAT, ["batch", config.num_classes]
                )
            )
    graph = helper.make_graph(
        g.nodes,
        f"{config.rnn_type}_classifier",
        inputs=_inputs(config),
        outputs=outputs,
        initializer=[numpy_helper.from_array(v, name) for name, v in g.constants.items()],
    )
    # No onnx.checker here: ONNX Runtime validates the graph when it loads it, and the checker's
    # schema registry costs a serving process ~10 MiB it never gives back (the tests run it).
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = IR_VERSION
    return onnx_model
