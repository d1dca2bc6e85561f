"""Rolling out a new version on the real server: a shadow that scores live traffic without
answering it, a canary that takes its share of callers (sticky per caller), and the admin calls
that abort or promote it without a failed request."""

import csv
import hashlib
import json
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from app.core.artifacts import CONFIG_FILE, VOCAB_FILE
from app.repository.layout import RepositoryError
from tests.support.artifacts import BUNDLED_MODEL, ROOT, TEXTS, make_repository
from tests.support.metrics import metric
from tests.support.servers import Server, start_server, stop_server
from tests.support.training import TINY
from training.train import main as train

ADMIN = {"Authorization": "Bearer adm1n"}
EXPLICIT = {"MODEL_CONTROL": "explicit", "ADMIN_API_KEY": "adm1n"}
ALL_VERSIONS = {"all": {}}


def classify(server: Server, texts: list[str], **extra: object) -> dict[str, object]:
    headers = extra.pop("headers", {})
    response = httpx.post(
        server.base_url + "/classify", json={"texts": texts, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def version_of(answer: dict[str, object]) -> str:
    model = answer["model"]
    assert isinstance(model, dict)
    return str(model["version"])


def labels_of(answer: dict[str, object]) -> list[str]:
    results = answer["results"]
    assert isinstance(results, list)
    return [str(r["label"]) for r in results]


def rollout_state(server: Server) -> dict[str, object]:
    (model,) = httpx.get(server.base_url + "/models").json()["models"]
    state: dict[str, object] = model["rollout"]
    return state


def load(server: Server, config: dict[str, object]) -> None:
    client = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    client.load_model("alpha", headers=ADMIN, config=json.dumps(config))


@pytest.fixture
def shadowed(tmp_path: Path) -> Iterator[Server]:
    # Versions 1 and 7 (models of seeds 1 and 7) agree on some of the texts, not all.
    root = make_repository(tmp_path / "repo", {"alpha": [1, 7]})
    setting = {"version_policy": ALL_VERSIONS, "rollout": {"shadow": "7"}}
    (root / "alpha" / "model.json").write_text(json.dumps(setting))
    server = start_server({"MODEL_REPOSITORY": str(root)})
    yield server
    stop_server(server)


def test_a_shadow_scores_every_live_request_and_answers_none(shadowed: Server) -> None:
    texts = [f"{text} {i}" for i in range(10) for text in TEXTS]
    live = [classify(shadowed, texts[i : i + 4]) for i in range(0, len(texts), 4)]
    # The live version (the highest other than the shadow) answered every request, exactly as
    # it answers when asked by name.
    assert {version_of(answer) for answer in live} == {"1"}
    by_name = [classify(shadowed, texts[i : i + 4], version="1") for i in range(0, len(texts), 4)]
    assert [a["results"] for a in live] == [a["results"] for a in by_name]
    # What the shadow would have said, asked for explicitly (its own figures must agree).
    shadow = [classify(shadowed, texts[i : i + 4], version="7") for i in range(0, len(texts), 4)]
    agreed = sum(
        a == b
        for ours, theirs in zip(live, shadow, strict=True)
        for a, b in zip(labels_of(ours), labels_of(theirs), strict=True)
    )
    deadline = time.monotonic() + 30  # bounds the wait for the background scoring, asserts no time
    while True:
        state = rollout_state(shadowed)
        comparison = state["shadow"]
        assert isinstance(comparison, dict)
        if comparison["texts_compared"] + comparison["texts_dropped"] >= 2 * len(texts):
            break
        assert time.monotonic() < deadline, comparison
        time.sleep(0.1)
    assert state["setting"] == {"shadow": "7"} and state["live"] == "1"
    assert comparison["texts_dropped"] == 0, comparison  # 10 small requests: never behind
    assert comparison["texts_compared"] == 2 * len(texts)  # the requests by name too
    assert 0 < agreed < len(texts)
    assert comparison["label_agreement"] == pytest.approx(agreed / len(texts))
    assert 0 < comparison["top_probability_difference_max"] <= 1
    # Labels as exposed: in name order.
    compared = 'live="1",model="alpha",outcome="compared",shadow="7"'
    assert metric(shadowed.base_url, f"rnn_classifier_shadow_texts_total{{{compared}}}") == 2 * len(
        texts
    )
    agreement = 'rnn_classifier_shadow_agreement_total{live="1",model="alpha",shadow="7"}'
    assert metric(shadowed.base_url, agreement) == 2 * agreed
    arm = 'rnn_classifier_model_arm{{arm="{}",model="alpha",version="{}"}}'
    assert metric(shadowed.base_url, arm.format("live", "1")) == 1
    assert metric(shadowed.base_url, arm.format("shadow", "7")) == 1


@pytest.fixture
def explicit(tmp_path: Path) -> Iterator[Server]:
    root = make_repository(tmp_path / "repo", {"alpha": [1, 2]})
    (root / "alpha" / "model.json").write_text(
        json.dumps({"version_policy": {"specific": {"versions": [1]}}})
    )
    server = start_server({"MODEL_REPOSITORY": str(root), **EXPLICIT})
    yield server
    stop_server(server)


def test_a_canary_takes_its_share_sticks_to_its_callers_and_can_be_aborted(
    explicit: Server,
) -> None:
    assert version_of(classify(explicit, ["funny"])) == "1"
    canary = {"version": "2", "percent": 10, "sticky_header": "X-Caller"}
    load(explicit, {"version_policy": ALL_VERSIONS, "rollout": {"canary": canary}})
    assert rollout_state(explicit)["live"] == "1"
    # Without the header: each request drawn on its own; 2,000 draws at 10% land in 7-13% but
    # for a chance of about 1 in 100,000 (4.5 standard deviations).
    with httpx.Client(base_url=explicit.base_url) as client:
        counted = Counter(
            version_of(client.post("/classify", json={"texts": ["funny"]}).json())
            for _ in range(2000)
        )
    assert set(counted) == {"1", "2"} and 0.07 < counted["2"] / 2000 < 0.13, counted
    # With it: a caller always gets the same version, and callers split by the share too.
    sides = {}
    for caller in range(100):
        got = {
            version_of(classify(explicit, ["funny"], headers={"X-Caller": f"team-{caller}"}))
            for _ in range(3)
        }
        assert len(got) == 1, (caller, got)
        sides[caller] = got.pop()
    assert {"1", "2"} == set(sides.values())
    # A version named by the request is what it gets, canary or not.
    assert version_of(classify(explicit, ["funny"], version="2")) == "2"
    # The Open Inference Protocol is routed alike; a version in its URL is what answers.
    v2 = triton.InferenceServerClient(url=explicit.base_url.removeprefix("http://"))
    texts = triton.InferInput("TEXT", [1], "BYTES")
    texts.set_data_from_numpy(np.array([b"funny"], dtype=object))
    answered = {v2.infer("alpha", [texts]).get_response()["model_version"] for _ in range(100)}
    assert answered == {"1", "2"}
    assert v2.infer("alpha", [texts], model_version="1").get_response()["model_version"] == "1"
    # Abort: the candidate goes, the live version answers everything.
    load(explicit, {"rollout": {}})
    assert {version_of(classify(explicit, ["funny"])) for _ in range(50)} == {"1"}
    (model,) = httpx.get(explicit.base_url + "/models").json()["models"]
    assert model["rollout"] is None
    assert {v["version"]: v["state"] for v in model["versions"]}["2"] != "READY"


def test_promoting_makes_the_candidate_live(explicit: Server) -> None:
    canary = {"version": "2", "percent": 10}
    load(explicit, {"version_policy": ALL_VERSIONS, "rollout": {"canary": canary}})
    load(explicit, {"version_policy": {"latest": {"num_versions": 1}}, "rollout": {}})
    assert {version_of(classify(explicit, ["funny"])) for _ in range(30)} == {"2"}


def test_a_rollout_must_name_a_version_the_policy_loads(explicit: Server) -> None:
    client = triton.InferenceServerClient(url=explicit.base_url.removeprefix("http://"))
    config = json.dumps({"rollout": {"shadow": "2"}})  # the file's policy loads version 1 only
    with pytest.raises(triton.InferenceServerException, match="does not load"):
        client.load_model("alpha", headers=ADMIN, config=config)
    bad = json.dumps({"rollout": {"canary": {"version": "2", "percent": 150}}})
    with pytest.raises(triton.InferenceServerException, match="percent"):
        client.load_model("alpha", headers=ADMIN, config=bad)
    assert version_of(classify(explicit, ["funny"])) == "1"  # still served as before


def reviews(count: int) -> list[str]:
    with (ROOT / "data" / "rotten_tomatoes.csv").open(newline="", encoding="utf-8") as f:
        return [row["text"] for _, row in zip(range(count), csv.DictReader(f), strict=False)]


def feed(server: Server, texts: list[str]) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        for start in range(0, len(texts), 10):
            answer = client.post("/classify", json={"texts": texts[start : start + 10]})
            assert answer.status_code == 200, answer.text


def wait_for(server: Server, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The model's entry in GET /models once `done` holds (bounded: the background scoring)."""
    deadline = time.monotonic() + 60
    while True:
        (model,) = httpx.get(server.base_url + "/models").json()["models"]
        if done(model):
            return model
        assert time.monotonic() < deadline, model
        time.sleep(0.1)


@pytest.fixture(scope="module")
def shuffled_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on the bundled reviews with their labels shuffled."""
    root = tmp_path_factory.mktemp("shuffled")
    rows = list(csv.DictReader((ROOT / "data" / "rotten_tomatoes.csv").open(encoding="utf-8")))
    labels = [row["label"] for row in rows]
    random.Random(0).shuffle(labels)
    data = root / "shuffled.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((row["text"], label) for row, label in zip(rows, labels, strict=True))
    train(["--data", str(data), "--limit", "2000", *TINY, "--out", str(root / "model")])
    return root / "model"


def guarded_server(trial: Path, tmp_path: Path) -> Server:
    """alpha 1: the bundled model, live; 2: `trial`, its shadow, guarded."""
    repository = tmp_path / "repo"
    shutil.copytree(BUNDLED_MODEL, repository / "alpha" / "1")
    shutil.copytree(trial, repository / "alpha" / "2")
    guard = {"min_agreement": 0.9, "over_texts": 200}
    setting = {"version_policy": ALL_VERSIONS, "rollout": {"shadow": "2", "guard": guard}}
    (repository / "alpha" / "model.json").write_text(json.dumps(setting))
    env = {"MODEL_REPOSITORY": str(repository), "MODEL_CONTROL": "poll", "POLL_INTERVAL_S": "0.2"}
    return start_server(env)


def test_a_copy_of_the_live_version_agrees_fully_and_its_guard_never_trips(
    tmp_path: Path,
) -> None:
    server = guarded_server(BUNDLED_MODEL, tmp_path)
    try:
        texts = reviews(400)
        feed(server, texts)
        model = wait_for(server, lambda m: m["rollout"]["shadow"]["texts_compared"] >= 400)
        shadow = model["rollout"]["shadow"]
        assert shadow["label_agreement"] == 1.0 and shadow["top_probability_difference_max"] < 1e-5
        # Still running: both versions served, the rollout in force.
        assert model["rollout"]["setting"]["shadow"] == "2"
        assert {v["state"] for v in model["versions"]} == {"READY"}
    finally:
        stop_server(server)


def test_the_guard_aborts_a_version_trained_on_shuffled_labels(
    shuffled_model: Path, tmp_path: Path
) -> None:
    server = guarded_server(shuffled_model, tmp_path)
    try:
        feed(server, reviews(400))
        model = wait_for(server, lambda m: m["rollout"] is None)
        states = {v["version"]: v["state"] for v in model["versions"]}
        assert states["1"] == "READY" and states["2"] != "READY", states
        assert metric(server.base_url, 'rnn_classifier_rollout_aborts_total{model="alpha"}') == 1
        # The live version answers everything, and the next polls do not bring version 2 back.
        time.sleep(1.5)  # a few POLL_INTERVAL_S, not a timing assertion
        assert {version_of(classify(server, ["funny"])) for _ in range(20)} == {"1"}
    finally:
        stop_server(server)
    assert "aborted by its guard: label agreement" in server.output()


def test_promote_and_abort_fail_no_request_of_16_concurrent_clients(explicit: Server) -> None:
    failures: list[str] = []
    answered: Counter[str] = Counter()
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=explicit.base_url) as client:
            while not stop.is_set():
                response = client.post("/classify", json={"texts": TEXTS})
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    answered[version_of(response.json())] += 1

    canary = {
        "version_policy": ALL_VERSIONS,
        "rollout": {"canary": {"version": "2", "percent": 50}},
    }
    promote = {"version_policy": {"latest": {"num_versions": 1}}, "rollout": {}}
    back = {"version_policy": {"specific": {"versions": [1]}}, "rollout": {}}
    with ThreadPoolExecutor(16) as pool:
        for _ in range(16):
            pool.submit(client_loop)
        for _ in range(3):
            load(explicit, canary)
            load(explicit, {"rollout": {}})  # abort
            load(explicit, canary)
            load(explicit, promote)
            load(explicit, back)
        stop.set()
    assert not failures, failures[:3]
    assert answered["1"] and answered["2"], answered


def test_retrain_shadow_canary_promote_as_readme_walks_through(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    tiny = ["--limit", "600", *TINY, "--repository", str(repository), "--name", "alpha"]
    train(tiny)
    env = {"MODEL_REPOSITORY": str(repository), "MODEL_CONTROL": "poll", "POLL_INTERVAL_S": "0.2"}
    server = start_server(env)
    try:
        assert version_of(classify(server, ["funny"])) == "1"
        train([*tiny, "--seed", "14", "--shadow"])  # the retrained version, as the shadow
        model = wait_for(server, lambda m: m["rollout"] is not None)
        assert model["rollout"]["setting"] == {"shadow": "2"} and model["rollout"]["live"] == "1"
        assert {version_of(classify(server, ["funny"])) for _ in range(20)} == {"1"}
        settings = repository / "alpha" / "model.json"
        setting = json.loads(settings.read_text())
        setting["rollout"] = {"canary": {"version": "2", "percent": 50}}
        settings.write_text(json.dumps(setting))
        wait_for(server, lambda m: "canary" in (m["rollout"] or {}).get("setting", {}))
        assert {version_of(classify(server, ["funny"])) for _ in range(100)} == {"1", "2"}
        settings.write_text(json.dumps({"version_policy": {"latest": {"num_versions": 1}}}))
        wait_for(server, lambda m: m["rollout"] is None)
        assert {version_of(classify(server, ["funny"])) for _ in range(20)} == {"2"}
    finally:
        stop_server(server)


def test_a_shadow_needs_a_live_version_and_a_repository(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        train(["--limit", "300", *TINY, "--shadow", "--out", str(tmp_path / "m")])
    with pytest.raises(RepositoryError, match="no version yet"):
        train(["--limit", "300", *TINY, "--repository", str(tmp_path / "r"), "--shadow"])
    assert not [p for p in (tmp_path / "r").rglob("*") if p.name.isdigit()]


def resigned_copy(target: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """The bundled model with its vocabulary file edited and the checksum recomputed, as someone
    (or a broken pipeline) editing a model by hand would."""
    shutil.copytree(BUNDLED_MODEL, target)
    vocabulary = json.loads((target / VOCAB_FILE).read_text())
    edit(vocabulary)
    (target / VOCAB_FILE).write_text(json.dumps(vocabulary))
    config = json.loads((target / CONFIG_FILE).read_text())
    config["files"][VOCAB_FILE] = hashlib.sha256((target / VOCAB_FILE).read_bytes()).hexdigest()
    (target / CONFIG_FILE).write_text(json.dumps(config))


def swap_good_and_bad(vocabulary: dict[str, Any]) -> None:
    tokens = vocabulary["tokens"]
    good, bad = tokens.index("good"), tokens.index("bad")
    tokens[good], tokens[bad] = "bad", "good"


def keep_case(vocabulary: dict[str, Any]) -> None:
    vocabulary["lowercase"] = False


def test_a_version_that_reads_words_otherwise_is_refused_and_the_live_one_serves(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(BUNDLED_MODEL, root / "alpha" / "1")
    resigned_copy(root / "alpha" / "2", swap_good_and_bad)
    resigned_copy(root / "alpha" / "3", keep_case)
    (root / "alpha" / "model.json").write_text(
        json.dumps({"version_policy": {"specific": {"versions": [1]}}})
    )
    server = start_server({"MODEL_REPOSITORY": str(root), **EXPLICIT})
    try:
        client = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
        for version, reason in (("2", "known answers differ on 2 of"), ("3", "lowercase")):
            shadow = {"version_policy": {"specific": {"versions": [1, int(version)]}},
                      "rollout": {"shadow": version}}  # fmt: skip
            with pytest.raises(triton.InferenceServerException, match=reason):
                client.load_model("alpha", headers=ADMIN, config=json.dumps(shadow))
            assert version_of(classify(server, ["a good film"])) == "1"
        (model,) = httpx.get(server.base_url + "/models").json()["models"]
        assert model["rollout"] is None
    finally:
        stop_server(server)
