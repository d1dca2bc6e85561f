"""Trace one prediction layer by layer, like the seed's "Prediction Trace".

python -m app.trace "A gripping, beautifully acted film."   [--model-dir model_artifacts]
"""

import argparse
from pathlib import Path

import torch

from app.artifacts import load_artifacts
from app.model import collate


def describe(name: str, tensor: torch.Tensor) -> str:
    values = ", ".join(
        f"{v:.3f}" if isinstance(v, float) else str(v) for v in tensor.flatten()[:6].tolist()
    )
    return f"{name:<10} shape {tuple(tensor.shape)!s:<14} [{values}{', ...' if tensor.numel() > 6 else ''}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("text")
    parser.add_argument("--model-dir", type=Path, default=Path("model_artifacts"))
    args = parser.parse_args(argv)
    artifacts = load_artifacts(args.model_dir)
    encoded = artifacts.tokenizer.encode(args.text, artifacts.max_length)
    words = [artifacts.tokenizer.tokens[i] for i in encoded.ids]
    print(f"input      {args.text!r}")
    print(f"tokens     {words}{' (truncated)' if encoded.truncated else ''}")
    with torch.inference_mode():
        trace = artifacts.model.trace(*collate([encoded.ids]))
    for name, tensor in trace.items():
        print(describe(name, tensor[0]))
    probabilities = dict(zip(artifacts.labels, trace["softmax"][0].tolist(), strict=True))
    label = max(probabilities, key=probabilities.__getitem__)
    print(
        f"prediction {label} ({probabilities[label]:.3f}); all: "
        + ", ".join(f"{k} {v:.3f}" for k, v in probabilities.items())
    )


if __name__ == "__main__":
    main()
