"""Where a trained model goes: the artifacts the service loads and the report, in a folder or as
the next version of a model repository (written aside and renamed in, or for an object store
uploaded with config.json last, so the service never sees half a version)."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core.artifacts import save_artifacts
from app.core.network import RNNClassifier, numpy_weights
from app.core.tokenizer import Tokenizer
from app.repository.publish import publish_version
from app.repository.store import is_object_url
from app.repository.writer import write_version
from training.calibration import calibration_metrics
from training.config import TrainConfig
from training.report import plot_curves, plot_reliability, write_report
from training.serving_checks import known_answers, unknown_word_share


def write(
    out: Path,
    model: RNNClassifier,
    tokenizer: Tokenizer,
    labels: list[str],
    validation: list[str],
    config: TrainConfig,
    report: dict[str, Any],
) -> None:
    """The artifacts the service loads (with the known answers and the unknown-word share it
    checks, both from the validation texts), the report and its charts."""
    save_artifacts(
        out,
        model.config,
        numpy_weights(model),
        tokenizer,
        labels,
        config.max_length,
        name=report["name"],
        version=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        extra={
            "metrics": {
                "test_accuracy": report["test"]["accuracy"],
                "test_macro_f1": report["test"]["macro_f1"],
                "baseline_test_accuracy": report["baseline"]["test"]["accuracy"],
                "best_epoch": report["best_epoch"],
                **calibration_metrics(report["calibration"]),
            },
            "training": {
                "preset": report["preset"],
                "seed": report["seed"],
                "data_sha256": report["data"]["sha256"],
                "temperature": report["calibration"]["temperature"],
                "class_weighted": report["class_weight"]["applied"],
            },
            "monitoring": {
                "unknown_word_share": unknown_word_share(tokenizer, validation, config.max_length)
            },
        },
        known_answers=known_answers(model, tokenizer, validation, config.max_length),
    )
    plot_curves(
        report["history"],
        report["test"]["accuracy"],
        report["baseline"]["test"]["accuracy"],
        out / "training_curves.png",
    )
    plot_reliability(report["calibration"], out / "reliability.png")
    write_report(out, report)


def save(
    out: Path,
    repository: str | None,
    model: RNNClassifier,
    tokenizer: Tokenizer,
    labels: list[str],
    validation: list[str],
    config: TrainConfig,
    report: dict[str, Any],
    as_shadow: bool = False,
) -> Path | str:
    """Write to `out`, or as the next version of the model in `repository`, a directory or an
    s3:// prefix (`as_shadow`: the shadow of its live version); where it went."""

    def write_to(folder: Path) -> None:
        write(folder, model, tokenizer, labels, validation, config, report)

    if repository is None:
        write_to(out)
        return out
    if is_object_url(repository):
        return publish_version(repository, report["name"], write_to, as_shadow)
    return write_version(Path(repository), report["name"], write_to, as_shadow).path
