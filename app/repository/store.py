"""Opening an object store (obstore's S3 client) for an s3:// URL: the endpoint of an
S3-compatible store (S3_ENDPOINT_URL), the standard credential chain, and bounded retries.

obstore is in the `s3` extra: a process that only reads local directories never imports it.
Credentials come from obstore itself (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, web identity as EKS's IRSA sets it, ECS and EC2 instance roles); a named
profile (AWS_PROFILE) needs boto3 to read ~/.aws, which obstore hands the job to.
"""

import importlib.util
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

SCHEME = "s3://"
EXTRA_MISSING = "s3:// needs obstore, which the serving install leaves out: pip install '{extra}'"
# A request that fails is retried a few times within seconds, not obstore's default three
# minutes: a poll that meets an outage reports it and backs off (app/lifecycle/control.py).
RETRIES = 2
RETRY_TIMEOUT = timedelta(seconds=10)
REQUEST_TIMEOUT = timedelta(seconds=30)
CONNECT_TIMEOUT = timedelta(seconds=3)


class StoreError(Exception):
    """The store cannot be reached or refused a request; the message says which and why."""


def is_object_url(location: str | os.PathLike[str] | None) -> bool:
    return isinstance(location, str) and location.startswith(SCHEME)


@dataclass(frozen=True)
class StoreAddress:
    bucket: str
    prefix: str  # "" or "path/inside/bucket" (no slashes around it)

    @classmethod
    def parse(cls, url: str) -> "StoreAddress":
        if not is_object_url(url):
            raise StoreError(f"{url!r} is not an s3:// URL")
        bucket, _, prefix = url.removeprefix(SCHEME).partition("/")
        if len(bucket) < 3:
            raise StoreError(f"{url!r}: the bucket name must have 3 or more characters")
        return cls(bucket, prefix.strip("/"))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")


def open_store(address: StoreAddress, endpoint_url: str | None, extra: str) -> Any:
    """An obstore S3Store rooted at the address's prefix. `extra`: the install that provides
    obstore, named in the error when it is missing."""
    if importlib.util.find_spec("obstore") is None:
        raise StoreError(EXTRA_MISSING.format(extra=extra))
    from obstore.store import S3Store

    options: dict[str, Any] = {}
    if endpoint_url:
        options["endpoint"] = endpoint_url
        # An S3-compatible store (MinIO, Ceph) addresses buckets by path, and a local one may
        # well speak plain HTTP.
        options["virtual_hosted_style_request"] = False
    if not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        options["region"] = "us-east-1"
    return S3Store(
        address.bucket,
        prefix=address.prefix or None,
        client_options={
            "allow_http": bool(endpoint_url and endpoint_url.startswith("http://")),
            "timeout": REQUEST_TIMEOUT,
            "connect_timeout": CONNECT_TIMEOUT,
        },
        retry_config={"max_retries": RETRIES, "retry_timeout": RETRY_TIMEOUT},
        credential_provider=_profile_credentials(),
        **options,
    )


def _profile_credentials() -> Any:
    """With AWS_PROFILE set, boto3's reading of ~/.aws/config and credentials; else None, and
    obstore's own chain."""
    if not os.environ.get("AWS_PROFILE"):
        return None
    if importlib.util.find_spec("boto3") is None:
        raise StoreError("AWS_PROFILE needs boto3 to read the profile: pip install boto3")
    from obstore.auth.boto3 import Boto3CredentialProvider

    return Boto3CredentialProvider()


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's prefix
    etag: str
    size: int


def _no_observer(operation: str, ok: bool) -> None:
    pass


class ObjectStore:
    """The few requests the repository makes, each one counted (`observe(operation, ok)`) and
    each failure a StoreError."""

    def __init__(self, address: StoreAddress, endpoint_url: str | None, extra: str) -> None:
        self.address = address
        self._store = open_store(address, endpoint_url, extra)
        self.observe = _no_observer

    def _call(self, operation: str, work: Any) -> Any:
        from obstore.exceptions import BaseError

        try:
            result = work()
        except (BaseError, OSError, TimeoutError) as exc:
            self.observe(operation, False)
            raise StoreError(f"{self.address}: {operation} failed: {_first_line(exc)}") from exc
        self.observe(operation, True)
        return result

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Every object under `prefix`: one request per 1,000 objects."""
        import obstore

        def listing() -> list[StoredObject]:
            found = []
            for chunk in obstore.list(self._store, prefix or None, chunk_size=1000):
                found += [StoredObject(o["path"], o["e_tag"] or "", o["size"]) for o in chunk]
            return found

        return list(self._call("list", listing))

    def read(self, key: str) -> bytes:
        import obstore

        return bytes(self._call("get", lambda: obstore.get(self._store, key).bytes()))

    def download(self, key: str, into: "os.PathLike[str]") -> None:
        """Stream the object into a file, in chunks: a large one never sits in memory."""
        import obstore

        def stream() -> None:
            with open(into, "wb") as out:
                for chunk in obstore.get(self._store, key).stream():
                    out.write(chunk)

        self._call("get", stream)

    def upload(self, key: str, source: "os.PathLike[str] | bytes", create: bool = False) -> bool:
        """Write the object (a file is streamed, in parts when it is large). With `create`, only
        if no object has that key (a conditional write): False if one had."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        def put() -> bool:
            body = source if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
            try:
                obstore.put(self._store, key, body, mode="create" if create else "overwrite")
            except AlreadyExistsError:
                return False
            finally:
                if not isinstance(body, bytes):
                    body.close()
            return True

        return bool(self._call("put", put))


def _first_line(exc: BaseException) -> str:
    """obstore's messages carry the whole request and its debug dump; the first line says it."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def endpoint_from_env() -> str | None:
    """S3_ENDPOINT_URL, as the training and file commands read it (the service: Settings)."""
    return os.environ.get("S3_ENDPOINT_URL") or None
