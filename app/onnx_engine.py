"""ONNX Runtime CPU engine: the loaded torch model's own weights, run as one native ONNX graph.

Why: on CPU, torch's RNN over packed sequences pays a per-time-step overhead that costs more than
a small model's arithmetic. ONNX Runtime runs the whole sequence inside one RNN/GRU/LSTM kernel,
and its `sequence_lens` input keeps padding unread, so a text gets the same answer alone as inside
a batch of longer texts (as torch's packing does).

The graph is built at load time from the model's state dict (the verified safetensors) with
`onnx.helper`: one source of truth for the weights, never a second exported copy to keep in step.
torch stays the reference: training, GPUs and the layer trace run on `RNNClassifier`.
"""

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.model import RNNClassifier, pad

# ReduceMax takes its axes as an input from opset 18 on; IR 8 is the version opset 18 came with.
OPSET = 18
IR_VERSION = 8

# A batch runs as groups of texts of similar length, because ONNX Runtime's recurrent op steps every
# row up to the longest one (masked, but computed). A group ends where a text is more than a
# quarter shorter than the group's longest; groups under MIN_GROUP_ROWS rows are kept growing
# since each run has a fixed cost. Measured on the bundled model: 1.15-1.4x less time per text at
# batch 8-64 of mixed-length reviews than one padded run.
SHORTER_STARTS_GROUP = 0.75
MIN_GROUP_ROWS = 4

# torch and ONNX stack a recurrent layer's gate weights in different orders: for each ONNX gate
# in turn, the index of torch's block that holds it.
GATE_ORDER = {
    "rnn": [0],
    "gru": [1, 0, 2],  # torch r, z, n -> ONNX z, r, h
    "lstm": [0, 3, 1, 2],  # torch i, f, g, o -> ONNX i, o, f, c
}
ONNX_OPS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _array(tensor: Any) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().float().numpy())


def _recurrent_weights(model: RNNClassifier, layer: int) -> dict[str, np.ndarray]:
    """One layer's W, R and B in ONNX's layout ([directions, gates * H, ...]) from torch's."""
    rnn_type = model.config.rnn_type
    state = {name: _array(value) for name, value in model.rnn.state_dict().items()}
    suffixes = [f"_l{layer}"] + ([f"_l{layer}_reverse"] if model.config.bidirectional else [])

    def stacked(name: str) -> np.ndarray:
        per_direction = []
        for suffix in suffixes:
            blocks = np.split(state[name + suffix], len(GATE_ORDER[rnn_type]))
            per_direction.append(np.concatenate([blocks[i] for i in GATE_ORDER[rnn_type]]))
        return np.stack(per_direction)

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


def build_graph(model: RNNClassifier) -> onnx.ModelProto:
    """The classifier as ONNX: ids [B, T] int64, lengths [B] int32 -> probabilities [B, C].

    Pooling over time steps also takes `real` [T, 1, B, 1], bool: step t is one of text b's
    tokens, not padding (`real_steps`; numpy builds it in one step where the graph took seven
    nodes, a measurable share of a one-text run).
    """
    config = model.config
    g = _GraphBuilder()
    embedding = g.constant("embedding", _array(model.embedding.weight))
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
    for layer in range(config.num_layers):
        weights = [
            g.constant(f"{name}_l{layer}", value)
            for name, value in _recurrent_weights(model, layer).items()
        ]
        # outputs [T, D, B, H] (zeros past each text's end); final [D, B, H], each at its end.
        outputs, final = f"outputs_l{layer}", f"final_l{layer}"
        g.nodes.append(
            helper.make_node(
                ONNX_OPS[config.rnn_type],
                [layer_input, *weights, "lengths"],
                [outputs, final],
                **recurrent,
            )
        )
        if layer + 1 < config.num_layers:
            layer_input = g.next_layer_input(outputs)
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "steps"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]),
    ]
    if config.pooling == "last":
        features = g.side_by_side(final)
    else:
        inputs.append(
            helper.make_tensor_value_info("real", TensorProto.BOOL, ["steps", 1, "batch", 1])
        )
        features = g.side_by_side(g.over_real_steps("ReduceMax", outputs, "real", -np.inf))
        if config.pooling == "max_mean":
            mean = g.side_by_side(g.mean_over_real_steps(outputs, "real"))
            features = g.add("Concat", [features, mean], "max_mean", axis=1)
    dense_w = g.constant("dense_w", np.ascontiguousarray(_array(model.dense.weight).T))
    dense_b = g.constant("dense_b", _array(model.dense.bias))
    scores = g.add("MatMul", [features, dense_w], "scores")
    logits = g.add("Add", [scores, dense_b], "logits")
    g.add("Softmax", [logits], "probabilities", axis=-1)
    graph = helper.make_graph(
        g.nodes,
        f"{config.rnn_type}_classifier",
        inputs=inputs,
        outputs=[
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, ["batch", config.num_classes]
            )
        ],
        initializer=[numpy_helper.from_array(v, name) for name, v in g.constants.items()],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = IR_VERSION
    onnx.checker.check_model(onnx_model)
    return onnx_model


def real_steps(lengths: np.ndarray, steps: int) -> np.ndarray:
    """The `real` input: [T, 1, B, 1], True where t < length of text b."""
    return (np.arange(steps)[:, None] < lengths[None, :])[:, None, :, None]


def length_groups(lengths: np.ndarray) -> list[np.ndarray]:
    """Row indices grouped by similar length, longest first (see SHORTER_STARTS_GROUP)."""
    order = np.argsort(-lengths, kind="stable")
    groups, start = [], 0
    for k in range(MIN_GROUP_ROWS, len(order)):
        longest = lengths[order[start]]
        if k - start >= MIN_GROUP_ROWS and lengths[order[k]] < SHORTER_STARTS_GROUP * longest:
            groups.append(order[start:k])
            start = k
    groups.append(order[start:])
    return groups


class OnnxEngine:
    """Class probabilities from ONNX Runtime on CPU, for the same weights as the torch model."""

    name = "onnx"
    device = "cpu"

    def __init__(self, model: RNNClassifier, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # One graph run at a time per worker, each op parallel inside: no inter-op pool to feed.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(
            build_graph(model).SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._pools_over_steps = model.config.pooling != "last"
        self._classes = model.config.num_classes

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), classes], float32, in input order."""
        lengths = np.fromiter(map(len, sequences), np.int64, count=len(sequences))
        groups = length_groups(lengths)
        if len(groups) == 1:
            return self._run(sequences)
        probabilities = np.empty((len(sequences), self._classes), np.float32)
        for rows in groups:
            probabilities[rows] = self._run([sequences[i] for i in rows])
        return probabilities

    def _run(self, sequences: list[list[int]]) -> np.ndarray:
        ids, lengths = pad(sequences)
        feeds = {"ids": ids, "lengths": lengths.astype(np.int32)}
        if self._pools_over_steps:
            feeds["real"] = real_steps(lengths, ids.shape[1])
        (probabilities,) = self.session.run(["probabilities"], feeds)
        return np.asarray(probabilities, np.float32)
