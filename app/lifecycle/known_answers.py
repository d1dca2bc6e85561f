"""The load check: a version answers the texts training stored as training answered them.

Training stores every word of the vocabulary on its own, an unknown word, a text cut at the
maximum length and validation texts of every length, each with its probabilities
(known_answers.json). At load they all run through the engine that will serve, so an edit to the
vocabulary (two words swapped, checksums recomputed), the tokenizer, the weights or the engine
that changes what any word means is refused before a request sees it.
"""

import logging

import numpy as np

from app.core.artifacts import CONFIG_FILE, KNOWN_ANSWERS_FILE, ArtifactError, Artifacts
from app.engines.base import Engine

log = logging.getLogger(__name__)

# How far a served probability may be from the one training computed for the same text: engines
# agree to 1e-5 on the same weights; a different model is off by far more.
TOLERANCE = 1e-4
# Texts per forward pass: sorted by length first, so a batch pads little.
BATCH = 256


def check_known_answers(artifacts: Artifacts, engine: Engine) -> None:
    """ArtifactError unless the engine gives every stored text the probabilities training did."""
    known = artifacts.known_answers
    if known is None:
        log.warning(
            "%s %s carries no known answers: loaded without checking what it computes "
            "(retrain, or run python -m training.serving_checks on it, to add them)",
            artifacts.name,
            artifacts.version,
        )
        return
    file = KNOWN_ANSWERS_FILE if known.covers_vocabulary else CONFIG_FILE
    if not known.covers_vocabulary:
        log.warning(
            "%s %s checked on %d known answers, not its whole vocabulary (retrain, or run "
            "python -m training.serving_checks on it, to cover every word)",
            artifacts.name,
            artifacts.version,
            len(known.texts),
        )
    if known.probabilities.shape[1:] != (len(artifacts.labels),):
        raise ArtifactError(file, f"known answers have {known.probabilities.shape[1:]} labels")
    encoded = [artifacts.tokenizer.encode(t, artifacts.max_length).ids for t in known.texts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    got = np.empty_like(known.probabilities)
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        got[rows] = engine.predict([encoded[i] for i in rows])
    difference = np.abs(got - known.probabilities).max(axis=1)
    worst = int(difference.argmax())
    if difference[worst] > TOLERANCE:
        raise ArtifactError(
            file,
            f"known answers differ on {int((difference > TOLERANCE).sum())} of "
            f"{len(known.texts)} texts: {known.texts[worst]!r} gets "
            f"{got[worst].round(4).tolist()} where training computed "
            f"{known.probabilities[worst].round(4).tolist()} (tokenizer, vocabulary, engine or "
            "weights do not match)",
        )
