"""`rnn-classifier-classify` on this machine: one file in, one file out, in --workers processes.

Maps what can go wrong to the CLI's answers: a FileError, a model the service would refuse and a
worker that died are one line and exit status 1, with the partial output removed.
"""

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from app.bulk.columns import ResultColumns
from app.bulk.errors import Failure
from app.bulk.formats import FileError, Source, file_format, open_source
from app.bulk.pipeline import (
    Tally,
    WorkerDied,
    WorkerPool,
    chunks,
    run,
    scored_inline,
)
from app.bulk.progress import Progress
from app.bulk.scoring import Scorer, Scores
from app.bulk.sinks import Sink
from app.bulk.workers import ScorerSpec
from app.core.artifacts import ArtifactError, Artifacts, load_artifacts
from app.lifecycle.validation import TextRules
from app.settings import Settings, get_settings


def load_model(model_dir: Path) -> tuple[Artifacts, Settings]:
    """The model, verified as the service verifies it, and the service's settings (whose
    MAX_TEXT_CHARS and TRUNCATION the texts are read with)."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise Failure(f"setting {problem['loc'][0]}: {problem['msg']}") from exc
    try:
        return load_artifacts(model_dir), settings
    except ArtifactError as exc:
        raise Failure(f"model {model_dir}: {exc}") from exc


def formats(args: argparse.Namespace) -> tuple[str, str]:
    source_format = file_format(args.input, args.format)
    if args.output_format:
        return source_format, str(args.output_format)
    try:
        return source_format, file_format(args.output, None)
    except FileError:
        return source_format, source_format  # no known extension: as the input


def scored(
    args: argparse.Namespace,
    artifacts: Artifacts,
    settings: Settings,
    source: Source,
    pool: WorkerPool | None,
) -> Iterator[tuple[pa.RecordBatch, Scores]]:
    parts = chunks(source.batches())
    if pool is None:  # in this process: nothing to gain from a second one on one core
        rules = TextRules.of(artifacts, settings)
        scorer = Scorer(artifacts, rules, threads=1, batch_size=args.batch_size)
        return scored_inline(scorer, parts, args.text_column)
    return pool.scored(parts, args.text_column)


def start_workers(args: argparse.Namespace, settings: Settings, model_dir: Path) -> WorkerPool:
    spec = ScorerSpec(model_dir, args.batch_size, settings.max_text_chars, settings.truncation)
    try:
        return WorkerPool(spec, args.workers)
    except WorkerDied as exc:
        raise Failure(str(exc)) from exc


def run_local(args: argparse.Namespace, model_dir: Path) -> int:
    args.input, args.output = Path(args.input), Path(args.output)  # local files
    try:
        source_format, output_format = formats(args)
        if args.output.resolve() == args.input.resolve():
            raise Failure(f"{args.output}: is the input file; write the output elsewhere")
        artifacts, settings = load_model(model_dir)
        source = open_source(args.input, source_format, args.text_column, args.encoding)
    except FileError as exc:
        raise Failure(str(exc)) from exc
    try:
        return _classify(args, artifacts, settings, model_dir, source, output_format)
    finally:
        source.close()


def _classify(
    args: argparse.Namespace,
    artifacts: Artifacts,
    settings: Settings,
    model_dir: Path,
    source: Source,
    output_format: str,
) -> int:
    columns = ResultColumns(artifacts.labels, args.prefix)
    clashes = columns.clashes(source.schema.names)
    if clashes:
        raise Failure(
            f"{args.input}: already has column(s) {', '.join(map(repr, clashes))}; "
            "pass --prefix (e.g. --prefix predicted_) to name the added columns apart"
        )
    schema = columns.schema(source.schema)
    pool = start_workers(args, settings, model_dir) if args.workers > 1 else None
    progress = Progress(
        sys.stderr, source.total_rows, source.total_bytes, source.position, not args.no_progress
    )
    try:
        sink = Sink(args.output, output_format, schema)
    except FileError as exc:
        if pool is not None:
            pool.close()
        raise Failure(str(exc)) from exc
    try:
        tally = run(
            scored(args, artifacts, settings, source, pool),
            lambda batch, scores: sink.write(columns.append(batch, scores, schema)),
            Tally(artifacts.labels),
            progress,
        )
        sink.commit()
    except (FileError, WorkerDied) as exc:
        raise Failure(str(exc)) from exc
    finally:
        sink.abort()  # a no-op once committed: the partial file is gone by then
        progress.clear()
        if pool is not None:
            pool.close()
    print(summary(tally, progress.elapsed(), args), file=sys.stderr)
    return 0


def summary(tally: Tally, seconds: float, args: argparse.Namespace) -> str:
    rate = tally.rows / seconds if seconds > 0 else 0.0
    workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    lines = [
        f"classified {tally.rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s, {workers}) "
        f"-> {args.destination or args.output}",
        "labels: " + ", ".join(f"{label} {tally.per_label[label]:,}" for label in tally.labels),
    ]
    refused = sum(tally.refused.values())
    if refused:
        kinds = "; ".join(f"{kind}: {count:,}" for kind, count in tally.refused.most_common())
        lines.append(f"refused: {refused:,} rows, no label (see the error column): {kinds}")
    else:
        lines.append("refused: none")
    return "\n".join(lines)
