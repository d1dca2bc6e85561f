"""What a training run reports beyond accuracy: calibration, the paired comparison with the
baseline, per-class scores, class weights on skewed labels, and a quiet log."""

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from app.core.artifacts import WEIGHTS_FILE, load_artifacts
from app.core.network import RNNClassifier, from_weights
from tests.support.training import TINY, toy_corpus
from training.config import TrainConfig, architecture
from training.evaluation import predict_logits
from training.fit import fit, train_epoch
from training.train import main as train

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_has_calibration_comparison_and_per_class_scores(tmp_path: Path) -> None:
    out = tmp_path / "model"
    report = train(["--limit", "600", "--out", str(out), *TINY])
    saved = json.loads((out / "report.json").read_text())
    calibration = saved["calibration"]
    assert calibration["fitted_on"] == "validation" and calibration["temperature"] > 0
    for name in ("validation", "test"):
        for key in ("ece_before", "ece_after", "nll_before", "nll_after"):
            assert calibration[name][key] >= 0, (name, key)
        assert (
            calibration[name]["ece_before"] <= 1
            and len(calibration[name]["reliability_after"]) == 15
        )
    # The temperature can only lower the NLL of the split it was fitted on.
    assert calibration["validation"]["nll_after"] <= calibration["validation"]["nll_before"]
    comparison = saved["comparison"]
    assert comparison["texts"] == saved["data"]["split_sizes"]["test"]
    difference = saved["test"]["accuracy"] - saved["baseline"]["test"]["accuracy"]
    assert comparison["accuracy"]["difference"] == pytest.approx(difference, abs=2e-4)
    assert comparison["accuracy"]["low"] <= comparison["accuracy"]["difference"]
    assert comparison["accuracy"]["difference"] <= comparison["accuracy"]["high"]
    assert set(saved["test"]["per_class"]) == {"negative", "positive"}
    assert (out / "reliability.png").read_bytes()[:8] == PNG
    md = (out / "report.md").read_text()
    for heading in ("## Calibration", "## RNN against the baseline", "## Per class"):
        assert heading in md
    assert "![reliability](reliability.png)" in md
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["temperature"] == calibration["temperature"]
    assert config["metrics"]["test_ece"] == calibration["test"]["ece_after"]
    assert report["calibration"] == calibration


def test_saved_weights_serve_the_calibrated_probabilities(tmp_path: Path) -> None:
    """The folded dense layer and n-gram branch are what is saved: the served softmax is
    softmax(logits / T)."""
    out = tmp_path / "model"
    report = train(["--limit", "600", "--out", str(out), *TINY])
    temperature = report["calibration"]["temperature"]
    artifacts = load_artifacts(out)
    served = from_weights(artifacts.architecture, artifacts.weights)
    raw = load_file(str(out / WEIGHTS_FILE))
    logit_terms = ("dense.weight", "dense.bias", "ngrams.words", "ngrams.pairs")
    assert set(logit_terms) <= set(raw)  # the default trains the branch
    unfolded = {**raw, **{name: raw[name] * temperature for name in logit_terms}}
    original = from_weights(artifacts.architecture, unfolded)
    ids = [artifacts.tokenizer.encode(t, 20).ids for t in ("a fine film", "dull", "not bad at all")]
    np.testing.assert_allclose(
        torch.softmax(predict_logits(served, ids), -1).numpy(),
        torch.softmax(predict_logits(original, ids) / temperature, -1).numpy(),
        atol=1e-5,
    )


def skewed_rows(count: int) -> list[dict[str, str]]:
    """Three topics, one of them 4% of the texts; a cue word in most texts says which."""
    rng = random.Random(0)
    filler = "the a of and it was this that some very".split()
    rows = []
    for i in range(count):
        label = "rare" if i % 25 == 0 else ["sports", "food"][i % 2]
        cue = {"sports": "goal", "food": "pizza", "rare": "guitar"}[label]
        words = [*rng.sample(filler, 5), cue if rng.random() < 0.8 else "", f"n{i}"]
        rng.shuffle(words)
        rows.append({"text": " ".join(w for w in words if w), "label": label})
    return rows


def test_skewed_labels_get_a_validation_chosen_adjustment_or_class_weights(tmp_path: Path) -> None:
    data = tmp_path / "skewed.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in skewed_rows(1000)))
    flags = ["--data", str(data), "--epochs", "4", "--embedding-dim", "16", "--hidden-dim", "16"]
    plain = train([*flags, "--out", str(tmp_path / "plain")])
    assert not plain["class_weight"]["applied"] and plain["class_weight"]["skewed"]
    adjustment = plain["logit_adjustment"]
    assert adjustment["applied"] and adjustment["tau"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    scores = adjustment["validation_macro_f1"]
    assert scores[str(adjustment["tau"])] == max(scores.values())
    assert "Labels skewed: logit adjustment tau" in (tmp_path / "plain" / "report.md").read_text()
    weighted = train([*flags, "--out", str(tmp_path / "weighted"), "--class-weight", "balanced"])
    assert weighted["class_weight"]["applied"] and "val_macro_f1" in weighted["history"][0]
    # With class weights the kept epoch is the one with the best validation macro-F1.
    best = max(row["val_macro_f1"] for row in weighted["history"])
    assert weighted["history"][weighted["best_epoch"] - 1]["val_macro_f1"] == best
    assert set(weighted["test"]["per_class"]) == {"food", "rare", "sports"}


def test_adversarial_options_train_and_leave_the_served_model_plain(tmp_path: Path) -> None:
    out = tmp_path / "model"
    flags = ["--adversarial", "1.0", "--virtual-adversarial", "1.0"]
    report = train(["--limit", "300", "--out", str(out), *TINY, *flags])
    assert report["hyperparameters"]["adversarial"] == 1.0
    assert report["hyperparameters"]["virtual_adversarial"] == 1.0
    artifacts = load_artifacts(out)  # verified against the plain architecture's shapes
    assert set(artifacts.weights) == set(artifacts.architecture.weight_shapes())


def test_progress_bar_is_quiet_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = toy_corpus(200)
    config = replace(
        TrainConfig(model=architecture(embedding_dim=8, hidden_dim=8)),
        epochs=2,
        patience=0,
        vectors=False,
    )
    torch.manual_seed(0)
    model = RNNClassifier(replace(config.model, vocab_size=40, num_classes=2))
    fitted = fit(model, data, toy_corpus(50), config, seed=0)
    captured = capsys.readouterr()
    assert "epoch 1" not in captured.err and "it/s" not in captured.err  # no bar redraws
    assert "Val loss" in captured.out and len(fitted.history) == 2  # the epoch table stays
    optimizer = torch.optim.Adam(model.parameters())
    train_epoch(model, data, optimizer, torch.Generator().manual_seed(0), config, None, "e")
    assert capsys.readouterr().err == ""
