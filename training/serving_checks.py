"""What training leaves in the artifact for the service to check itself against.

- Known answers: every word of the vocabulary on its own, an unknown word, a text longer than the
  model reads and validation texts of every length, with the probabilities the trained model
  gives them, computed exactly as the service computes them. The service runs them all at load
  and refuses a version whose answers differ (app/lifecycle/known_answers.py).
- The unknown-word share: the mean share of a validation text's words the vocabulary lacks, the
  baseline the service's "meeting unfamiliar data" alert compares live traffic with.
"""

import argparse
import itertools
import json
from pathlib import Path

import torch

from app.core.artifacts import (
    CONFIG_FILE,
    KNOWN_ANSWERS_FILE,
    KnownAnswers,
    load_artifacts,
    sha256_of,
)
from app.core.network import RNNClassifier, from_weights
from app.core.tokenizer import UNK_ID, Tokenizer
from training.data import BUNDLED_DATA, load_examples, split_examples
from training.evaluation import predict_logits

VALIDATION_ANSWERS = 8


def known_answers(
    model: RNNClassifier, tokenizer: Tokenizer, texts: list[str], max_length: int
) -> KnownAnswers:
    """The probe texts, each with its probabilities."""
    probes = probe_texts(tokenizer, texts, max_length)
    ids = [tokenizer.encode(text, max_length).ids for text in probes]
    probabilities = torch.softmax(predict_logits(model, ids), dim=-1).numpy()
    return KnownAnswers(probes, probabilities, covers_vocabulary=True)


def probe_texts(tokenizer: Tokenizer, texts: list[str], max_length: int) -> list[str]:
    """Every vocabulary word alone (a word's meaning is its embedding row: alone, nothing else in
    the text can mask a change to it), a word the vocabulary lacks, a text cut at `max_length`,
    and validation texts spread over the lengths."""
    words = tokenizer.tokens[UNK_ID + 1 :]
    unknown = next(f"zq{n}x" for n in itertools.count() if f"zq{n}x" not in tokenizer.index)
    too_long = " ".join((words * (max_length + 1))[: max_length + 5]) if words else unknown
    by_length = sorted(set(texts), key=lambda t: (len(t), t))
    step = max(1, len(by_length) // VALIDATION_ANSWERS)
    return [*words, unknown, too_long, *by_length[::step][:VALIDATION_ANSWERS]]


def unknown_word_share(tokenizer: Tokenizer, texts: list[str], max_length: int) -> float:
    shares = []
    for text in texts:
        ids = tokenizer.encode(text, max_length).ids
        shares.append(ids.count(UNK_ID) / len(ids))
    return round(sum(shares) / max(1, len(shares)), 4)


def main(argv: list[str] | None = None) -> None:
    """Add (or renew) the known answers and the unknown-word share of a trained artifact."""
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
    known = known_answers(network, tokenizer, validation, length)
    (args.model_dir / KNOWN_ANSWERS_FILE).write_text(known.to_json(), encoding="utf-8")
    config.pop("known_answers", None)  # the older handful, in config.json itself
    config["files"][KNOWN_ANSWERS_FILE] = sha256_of(args.model_dir / KNOWN_ANSWERS_FILE)
    config["monitoring"] = {"unknown_word_share": unknown_word_share(tokenizer, validation, length)}
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"{config_file}: {len(known.texts)} known answers, {config['monitoring']}")


if __name__ == "__main__":
    main()
