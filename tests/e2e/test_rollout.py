"""Rolling out a new version on the real server: a shadow that scores live traffic without
answering it, a canary that takes its share of callers (sticky per caller), and the admin calls
that abort or promote it without a failed request."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tritonclient.http as triton

from tests.support.artifacts import TEXTS, make_repository
from tests.support.metrics import metric
from tests.support.servers import Server, start_server, stop_server

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
    # The live version (the highest other than the shadow) answered every request.
    assert {version_of(answer) for answer in live} == {"1"}
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
        if comparison["texts_compared"] + comparison["texts_dropped"] >= len(texts):
            break
        assert time.monotonic() < deadline, comparison
        time.sleep(0.1)
    assert state["setting"] == {"shadow": "7"} and state["live"] == "1"
    assert comparison["texts_dropped"] == 0, comparison  # 10 small requests: never behind
    assert comparison["texts_compared"] == len(texts)
    assert 0 < agreed < len(texts)
    assert comparison["label_agreement"] == pytest.approx(agreed / len(texts))
    assert 0 < comparison["top_probability_difference_max"] <= 1
    # Labels as exposed: in name order.
    compared = 'live="1",model="alpha",outcome="compared",shadow="7"'
    assert metric(shadowed.base_url, f"rnn_classifier_shadow_texts_total{{{compared}}}") == len(
        texts
    )
    agreement = 'rnn_classifier_shadow_agreement_total{live="1",model="alpha",shadow="7"}'
    assert metric(shadowed.base_url, agreement) == agreed


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
    canary = {"version": "2", "percent": 30, "sticky_header": "X-Caller"}
    load(explicit, {"version_policy": ALL_VERSIONS, "rollout": {"canary": canary}})
    assert rollout_state(explicit)["live"] == "1"
    # Without the header: each request drawn on its own; 400 draws at 30% land in 20-40% but
    # for a chance of about 1 in 100,000.
    counted = Counter(version_of(classify(explicit, ["funny"])) for _ in range(400))
    assert set(counted) == {"1", "2"} and 0.2 < counted["2"] / 400 < 0.4, counted
    # With it: a caller always gets the same version, and callers split by the share too.
    sides = {}
    for caller in range(60):
        got = {
            version_of(classify(explicit, ["funny"], headers={"X-Caller": f"team-{caller}"}))
            for _ in range(3)
        }
        assert len(got) == 1, (caller, got)
        sides[caller] = got.pop()
    assert {"1", "2"} == set(sides.values())
    # A version named by the request is what it gets, canary or not.
    assert version_of(classify(explicit, ["funny"], version="2")) == "2"
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
