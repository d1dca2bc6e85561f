"""rnn-classifier-classify: classify every row of a CSV, JSON lines or Parquet file.

    rnn-classifier-classify reviews.csv --output scored.csv
    rnn-classifier-classify tickets.jsonl -o scored.parquet --text-column body --workers 2
    rnn-classifier-classify reviews.parquet --output scored/ --engine spark --master 'local[2]'
    rnn-classifier-classify s3://bucket/in/reviews.csv -o s3://bucket/out/scored.parquet

The output has every input column, then label, score, probability_<label> for each label, and
error (why the service would refuse that row's text, which then has no label). Rows keep their
order. Texts are read as /classify reads them (MAX_TEXT_CHARS and TRUNCATION apply) and get the
probabilities /classify gives them. Exit status: 0 when every row was read (refused rows
included), 1 when a file or the model cannot be used, 2 for a wrong option, 130 when interrupted.
"""

import argparse
import importlib.util
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

from app.bulk.errors import PROG, Failure

FORMATS = ("csv", "jsonl", "parquet")
EXTRA_MISSING = (
    "{what} needs {package}, which the serving install leaves out: pip install '{extra}'"
)


def parser() -> argparse.ArgumentParser:
    from app.bulk.scoring import DEFAULT_BATCH_SIZE

    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Strings, not Paths: with --engine spark they may be URIs (s3a://...), which Path would mangle.
    p.add_argument(
        "input", help="the file to classify (.csv, .jsonl, .parquet), or s3://bucket/key"
    )
    p.add_argument("-o", "--output", required=True,
                   help="where to write (a file or s3://bucket/key; a directory with --engine spark)")  # fmt: skip
    p.add_argument("--format", choices=FORMATS, help="the input's format (default: its extension)")
    p.add_argument("--output-format", choices=FORMATS,
                   help="the output's format (default: its extension, else the input's)")  # fmt: skip
    p.add_argument("--text-column", default="text", help="the column to classify (default text)")
    p.add_argument("--model-dir", type=Path,
                   help="the model's directory (default: MODEL_DIR, else model_artifacts)")  # fmt: skip
    p.add_argument("--model", metavar="NAME[:VERSION]",
                   help="a model of --repository: the version the service serves by default "
                   "(its version_policy's highest), or the one given")  # fmt: skip
    p.add_argument("--repository", type=Path,
                   help="the model repository of --model (default: MODEL_REPOSITORY)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1,
                   help="scoring processes, one core each (default 1)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"texts per forward pass (default {DEFAULT_BATCH_SIZE})")  # fmt: skip
    p.add_argument("--prefix", default="",
                   help="put before the added column names, for inputs that already have a "
                   "'label' or 'score' column (e.g. --prefix predicted_)")  # fmt: skip
    p.add_argument("--encoding", default="utf8", help="a CSV file's text encoding (default utf8)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local (this machine, --workers processes) or spark (a Spark job "
                   "writing a directory of Parquet files)")  # fmt: skip
    p.add_argument("--master", default="local[*]",
                   help="with --engine spark: the Spark master (default local[*])")  # fmt: skip
    return p


def require(module: str, extra: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        package = module.split(".")[0]
        raise Failure(EXTRA_MISSING.format(what=what, package=package, extra=extra))


def model_dir(args: argparse.Namespace) -> Path:
    """The model to score with: a directory, or a version folder of a repository."""
    from app.repository.layout import Repository, RepositoryError
    from app.settings import get_settings

    if args.model is None:
        return Path(args.model_dir) if args.model_dir is not None else get_settings().model_dir
    if args.model_dir is not None:
        raise Failure("--model-dir and --model name two models: give one")
    root = args.repository or get_settings().model_repository
    if root is None:
        raise Failure("--model needs --repository (or MODEL_REPOSITORY)")
    name, _, version = args.model.partition(":")
    try:
        repository = Repository(Path(root))
        folders = repository.versions(name) if version else repository.wanted(name)
    except RepositoryError as exc:
        raise Failure(str(exc)) from exc
    chosen = [f for f in folders if f.version == version] if version else folders[-1:]
    if not chosen:
        known = [f.version for f in repository.versions(name)]
        raise Failure(f"model {name!r} has no version {version or '(none selected)'}: {known}")
    return chosen[0].path


def check_numbers(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")


def _terminate(signum: int, _frame: FrameType | None) -> NoReturn:
    # Unwind through the `finally` blocks, which remove the partial output and end the workers.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    check_numbers(p, args)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.engine == "spark":
            require("pyspark", "rnn-text-classifier[spark]", f"{PROG} --engine spark")
            require("pandas", "rnn-text-classifier[spark]", f"{PROG} --engine spark")
            from app.bulk.spark_job import run_spark

            return run_spark(args, model_dir(args))
        require("pyarrow", "rnn-text-classifier[files]", PROG)
        from app.bulk.local import run_local
        from app.bulk.remote import with_remote_files

        model = model_dir(args)
        return with_remote_files(args, lambda local: run_local(local, model))
    except Failure as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
