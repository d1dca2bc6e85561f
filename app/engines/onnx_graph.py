"""The network as one ONNX graph, built at load time from the verified weights with `onnx.helper`:
one source of truth for the weights, never a second exported copy to keep in step.

Embedding gather -> the native RNN/GRU/LSTM op with `sequence_lens` (one per layer), so padding is
never read -> the same pooling as torch, masked to each text's real steps -> dense -> softmax.
"""

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.core.architecture import ModelConfig
from app.core.artifacts import Weights

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

    def side_by_side(self, per_direction: str) -> str:
        """[D, B, H] -> [B, D * H], forward direction first, as torch concatenates them."""
        batch_first = self.add("Transpose", [per_direction], f"{per_direction}_bdh", perm=[1, 0, 2])
        shape = self.constant("batch_by_rest", np.array([0, -1], np.int64))  # 0: keep B
        return self.add("Reshape", [batch_first, shape], f"{per_direction}_flat")

    def next_layer_input(self, outputs: str) -> str:
        """[T, D, B, H] -> [T, B, D * H]: both directions' states are the next layer's input."""
        steps_first = self.add("Transpose", [outputs], f"{outputs}_tbdh", perm=[0, 2, 1, 3])
        shape = self.constant("keep_steps_and_batch", np.array([0, 0, -1], np.int64))
        return self.add("Reshape", [steps_first, shape], f"{outputs}_input")

    def over_real_steps(self, reduce: str, outputs: str, real: str, fill: float) -> str:
        """Reduce RNN outputs [T, D, B, H] over each text's real steps only -> [D, B, H]."""
        filler = self.constant(f"{reduce}_fill", np.array(fill, np.float32))
        masked = self.add("Where", [real, outputs, filler], f"{reduce}_masked")
        axis = self.constant("time_axis", np.array([0], np.int64))
        return self.add(reduce, [masked, axis], f"{reduce}_steps", keepdims=0)

    def mean_over_real_steps(self, outputs: str, real: str) -> str:
        summed = self.over_real_steps("ReduceSum", outputs, real, 0.0)
        lengths = self.add("Cast", ["lengths"], "lengths_f32", to=TensorProto.FLOAT)
        lengths = self.add(
            "Unsqueeze",
            [lengths, self.constant("axes_02", np.array([0, 2], np.int64))],
            "lengths_1b1",
        )
        return self.add("Div", [summed, lengths], "mean_steps")


def _recurrent_layers(g: _GraphBuilder, config: ModelConfig, weights: Weights) -> tuple[str, str]:
    """Embedding and every recurrent layer; the last layer's outputs [T, D, B, H] (zeros past each
    text's end) and final states [D, B, H] (each at its text's end)."""
    embedding = g.constant("embedding", np.asarray(weights["embedding.weight"], np.float32))
    # Time-major for the recurrent op: ids [B, T] -> [T, B] -> vectors [T, B, E].
    ids_tb = g.add("Transpose", ["ids"], "ids_tb", perm=[1, 0])
    layer_input = g.add("Gather", [embedding, ids_tb], "embedded")
    recurrent: dict[str, Any] = {
        "hidden_size": config.hidden_dim,
        "direction": "bidirectional" if config.bidirectional else "forward",
    }
    if config.rnn_type == "gru":
        # torch's GRU applies the reset gate after the recurrent matmul (ONNX default: before).
        recurrent["linear_before_reset"] = 1
    outputs = final = ""
    for layer in range(config.num_layers):
        if layer:
            layer_input = g.next_layer_input(outputs)
        layer_weights = [
            g.constant(f"{name}_l{layer}", value)
            for name, value in _recurrent_weights(config, weights, layer).items()
        ]
        outputs, final = f"outputs_l{layer}", f"final_l{layer}"
        g.nodes.append(
            helper.make_node(
                ONNX_OPS[config.rnn_type],
                [layer_input, *layer_weights, "lengths"],
                [outputs, final],
                **recurrent,
            )
        )
    return outputs, final


def _pooled(g: _GraphBuilder, pooling: str, outputs: str, final: str) -> str:
    """The features the dense layer reads: [B, D * H] (or twice that for max_mean)."""
    if pooling == "last":
        return g.side_by_side(final)
    features = g.side_by_side(g.over_real_steps("ReduceMax", outputs, "real", -np.inf))
    if pooling == "max_mean":
        mean = g.side_by_side(g.mean_over_real_steps(outputs, "real"))
        features = g.add("Concat", [features, mean], "max_mean", axis=1)
    return features


# The extra outputs of a tracing graph: each stage of the forward pass, for /explain.
TRACE_OUTPUTS = ("embedded", "steps", "logits")


def build_graph(config: ModelConfig, weights: Weights, trace: bool = False) -> onnx.ModelProto:
    """The classifier as ONNX: ids [B, T] int64, lengths [B] int32 -> probabilities [B, C].

    Pooling over time steps also takes `real` [T, 1, B, 1], bool: step t is one of text b's
    tokens, not padding (`real_steps`; numpy builds it in one step where the graph took seven
    nodes, a measurable share of a one-text run). With `trace`, the graph also outputs the
    embedded tokens [T, B, E], the last recurrent layer's steps [T, D, B, H] and the logits.
    """
    g = _GraphBuilder()
    outputs, final = _recurrent_layers(g, config, weights)
    features = _pooled(g, config.pooling, outputs, final)
    dense_w = np.ascontiguousarray(np.asarray(weights["dense.weight"], np.float32).T)
    scores = g.add("MatMul", [features, g.constant("dense_w", dense_w)], "scores")
    dense_b = g.constant("dense_b", np.asarray(weights["dense.bias"], np.float32))
    logits = g.add("Add", [scores, dense_b], "logits")
    g.add("Softmax", [logits], "probabilities", axis=-1)
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "steps"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]),
    ]
    if config.pooling != "last":
        inputs.append(
            helper.make_tensor_value_info("real", TensorProto.BOOL, ["steps", 1, "batch", 1])
        )
    outputs_info = [
        helper.make_tensor_value_info(
            "probabilities", TensorProto.FLOAT, ["batch", config.num_classes]
        )
    ]
    if trace:
        g.add("Identity", [outputs], "steps")
        outputs_info += [
            helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["steps", "batch", "e"]),
            helper.make_tensor_value_info(
                "steps", TensorProto.FLOAT, ["steps", config.directions, "batch", "h"]
            ),
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, ["batch", config.num_classes]
            ),
        ]
    graph = helper.make_graph(
        g.nodes,
        f"{config.rnn_type}_classifier",
        inputs=inputs,
        outputs=outputs_info,
        initializer=[numpy_helper.from_array(v, name) for name, v in g.constants.items()],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = IR_VERSION
    onnx.checker.check_model(onnx_model)
    return onnx_model
