"""What training leaves in the artifact for the service to check itself against.

- Known answers: a handful of validation texts with the probabilities the trained model gives
  them, computed exactly as the service computes them. The service runs them at load and refuses
  a version whose answers differ (app/infer/version.py).
- The unknown-word share: the mean share of a validation text's words the vocabulary lacks, the
  baseline the service's "meeting unfamiliar data" alert compares live traffic with.
"""

import argparse
import json
from pathlib import Path

import torch

from app.core.artifacts import CONFIG_FILE, load_artifacts
from app.core.network import RNNClassifier, from_weights
from app.core.tokenizer import UNK_ID, Tokenizer
from training.data import BUNDLED_DATA, load_examples, split_examples
from training.fit import predict_logits

KNOWN_ANSWERS = 8


def known_answers(
    model: RNNClassifier, tokenizer: Tokenizer, texts: list[str], max_length: int
) -> list[dict[str, object]]:
    """Texts spread over the lengths (short to truncated), each with its probabilities."""
    by_length = sorted(set(texts), key=lambda t: (len(t), t))
    step = max(1, len(by_length) // KNOWN_ANSWERS)
    chosen = by_length[::step][:KNOWN_ANSWERS]
    ids = [tokenizer.encode(text, max_length).ids for text in chosen]
    probabilities = torch.softmax(predict_logits(model, ids), dim=-1).tolist()
    return [
        {"text": text, "probabilities": row}
        for text, row in zip(chosen, probabilities, strict=True)
    ]


def unknown_word_share(tokenizer: Tokenizer, texts: list[str], max_length: int) -> float:
    shares = []
    for text in texts:
        ids = tokenizer.encode(text, max_length).ids
        shares.append(ids.count(UNK_ID) / len(ids))
    return round(sum(shares) / max(1, len(shares)), 4)


def main(argv: list[str] | None = None) -> None:
    """Add known answers and the unknown-word share to an artifact trained before they existed."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument(
        "--data", type=Path, default=BUNDLED_DATA, help="the data it was trained on"
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    args = parser.parse_args(argv)
    artifacts = load_artifacts(args.model_dir)
    examples = load_examples(args.data, args.text_column, args.label_column)
    validation = [e.text for e in split_examples(examples)["validation"]]
    network = from_weights(artifacts.architecture, artifacts.weights)
    tokenizer, length = artifacts.tokenizer, artifacts.max_length
    config_file = args.model_dir / CONFIG_FILE
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["known_answers"] = known_answers(network, tokenizer, validation, length)
    config["monitoring"] = {"unknown_word_share": unknown_word_share(tokenizer, validation, length)}
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"{config_file}: {len(config['known_answers'])} known answers, {config['monitoring']}")


if __name__ == "__main__":
    main()
