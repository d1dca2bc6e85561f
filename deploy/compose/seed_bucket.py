"""Fill deploy/compose/object-store.yml's store: create the bucket, and publish the bundled model
as version 1 of its model unless the bucket has a version of it already (a second `up` publishes
nothing).   python seed_bucket.py s3://BUCKET/PREFIX MODEL_DIR   (S3_ENDPOINT_URL set)"""

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from app.repository.publish import publish_version
from app.repository.store import ObjectStore, StoreAddress, endpoint_from_env


def main(url: str, model_dir: Path) -> None:
    address, endpoint = StoreAddress.parse(url), endpoint_from_env()
    request = urllib.request.Request(f"{endpoint}/{address.bucket}", method="PUT")
    try:  # the local store takes an unsigned bucket creation; one that exists answers 409
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise
    name = json.loads((model_dir / "config.json").read_text())["name"]
    store = ObjectStore(address, endpoint, "rnn-text-classifier[s3]")
    if any(o.key.endswith("/config.json") for o in store.list(f"{name}/")):
        print(f"{url}/{name} has a version already: nothing published")
        return

    def write(folder: Path) -> None:
        for file in model_dir.iterdir():
            if file.is_file():
                shutil.copy(file, folder / file.name)

    print("published", publish_version(url, name, write))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
