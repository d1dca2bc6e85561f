"""s3:// inputs and outputs of the local run: the input streamed down into a local file first,
the output written locally and streamed up once complete (so a failed or interrupted run leaves
no object behind, as it leaves no local file). The file names keep their extensions, which say
the formats. Credentials and S3_ENDPOINT_URL as for the service (app/repository/store.py)."""

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from app.bulk.errors import Failure
from app.repository.store import (
    ObjectStore,
    StoreAddress,
    StoreError,
    endpoint_from_env,
    is_object_url,
)

EXTRA = "rnn-text-classifier[files,s3]"


def _object(url: str) -> tuple[ObjectStore, str]:
    """A store rooted at the bucket, and the object's key."""
    address = StoreAddress.parse(url)
    if not address.prefix:
        raise Failure(f"{url}: names a bucket, not an object in it")
    return ObjectStore(StoreAddress(address.bucket, ""), endpoint_from_env(), EXTRA), address.prefix


def with_remote_files(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """`run(args)` on local files standing in for the s3:// ones."""
    if not is_object_url(args.input) and not is_object_url(args.output):
        return run(args)
    with tempfile.TemporaryDirectory(prefix="rnn-classifier-classify-") as scratch:
        local = argparse.Namespace(**vars(args))
        try:
            if is_object_url(args.input):
                store, key = _object(args.input)
                local.input = Path(scratch, "in", PurePosixPath(key).name)
                local.input.parent.mkdir()
                store.download(key, local.input)
            if is_object_url(args.output):
                store, key = _object(args.output)
                local.output = Path(scratch, "out", PurePosixPath(key).name)
                local.output.parent.mkdir()
            status = run(local)
            if status == 0 and is_object_url(args.output):
                store.upload(key, local.output)
        except StoreError as exc:
            raise Failure(str(exc)) from exc
        except Failure as exc:  # said of the local stand-in: say it of the object
            said = str(exc).replace(str(local.input), str(args.input))
            raise Failure(said.replace(str(local.output), str(args.output))) from exc
        return status
