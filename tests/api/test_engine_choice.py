"""ENGINE picks what runs the forward pass; users see the same answers and /model says which."""

from pathlib import Path

import pytest

from app.settings import Settings
from tests.support.artifacts import TEXTS
from tests.support.clients import client_for, wait_ready


def served(model_dir: Path, engine: str) -> tuple[str, list[dict[str, float]]]:
    with client_for(model_dir, engine=engine, device="cpu") as client:
        wait_ready(client)
        name = client.get("/model").json()["engine"]
        response = client.post("/classify", json={"texts": TEXTS})
    assert response.status_code == 200, response.text
    return name, [result["probabilities"] for result in response.json()["results"]]


def test_auto_serves_onnx_on_cpu_with_the_answers_of_torch(tiny_model_dir: Path) -> None:
    engines = {choice: served(tiny_model_dir, choice) for choice in ("auto", "onnx", "torch")}
    assert [name for name, _ in engines.values()] == ["onnx", "onnx", "torch"]
    reference = engines["torch"][1]
    for _, answers in engines.values():
        for got, expected in zip(answers, reference, strict=True):
            assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("variable", ["THREADS", "TORCH_THREADS"])
def test_threads_setting_under_its_new_and_its_old_name(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "3")
    assert Settings().threads_per_worker() == 3


def test_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE", "tensorrt")
    with pytest.raises(ValueError, match="engine"):
        Settings()
