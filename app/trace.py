"""Trace predictions layer by layer, with token attributions.

python -m app.trace "A gripping, beautifully acted film." ["Another text." ...]  [--model-dir DIR]

The same explanation POST /explain returns (app/infer/occlusion.py), printed for a terminal.
"""

import argparse
from pathlib import Path

from app.core.artifacts import load_artifacts
from app.engines.onnx_runtime import OnnxEngine
from app.infer.explanation import Explanation
from app.infer.occlusion import explain


def _numbers(values: list[float], limit: int = 6) -> str:
    shown = ", ".join(f"{v:.3f}" for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _scores(by_label: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in by_label.items())


def render(text: str, explanation: Explanation) -> str:
    layers = explanation.layers
    label = explanation.label
    words = layers.input.tokens
    attributions = explanation.attributions[label]
    unknown = [w for w, u in zip(words, layers.input.unknown, strict=True) if u]
    lines = [
        f"input      {text!r}",
        f"tokens     {words}{' (truncated)' if layers.input.truncated else ''}",
        f"ids        {layers.input.ids}" + (f"  unknown: {unknown}" if unknown else ""),
        f"embedding  shape {tuple(layers.embedding.shape)}  token norms "
        + _numbers(layers.embedding.norms),
        f"rnn        shape {tuple(layers.rnn.shape)}  step norms {_numbers(layers.rnn.step_norms)}"
        f"  -> {layers.rnn.pooling} pooling, {layers.rnn.pooled_features} features",
        "dense      logits " + _scores(layers.dense.logits),
        *(
            [f"ngrams     logits {_scores(layers.ngrams.logits)} (included above)"]
            if layers.ngrams
            else []
        ),
        "softmax    " + ", ".join(f"{k} {v:.3f}" for k, v in explanation.probabilities.items()),
        f"prediction {label} ({explanation.score:.3f})",
        f"why        each token's attribution toward {label!r} (its probability drop without it):",
    ]
    ranked = sorted(zip(words, attributions, strict=True), key=lambda pair: -abs(pair[1]))
    lines += [f"           {word:<16} {value:+.3f}" for word, value in ranked]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("texts", nargs="+")
    parser.add_argument("--model-dir", type=Path, default=Path("model_artifacts"))
    args = parser.parse_args(argv)
    artifacts = load_artifacts(args.model_dir)
    engine = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1)
    encoded = [artifacts.tokenizer.encode(text, artifacts.max_length) for text in args.texts]
    explained = explain(engine, artifacts.architecture, artifacts.labels, args.texts, encoded)
    for text, explanation in zip(args.texts, explained, strict=True):
        print(render(text, explanation), end="\n\n")


if __name__ == "__main__":
    main()
