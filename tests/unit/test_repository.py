"""The repository on disk: names, version folders, policies, and writing a version atomically."""

import os
import threading
from pathlib import Path

import pytest

from app.repository.layout import (
    LoadConfig,
    Repository,
    RepositoryError,
    check_name,
    parse_load_config,
)
from app.repository.policy import PolicyError, VersionPolicy
from app.repository.rollout import Canary, Rollout, RolloutError
from app.repository.writer import write_version


def test_policies_select_as_triton_does() -> None:
    available = [1, 2, 3, 10]
    assert VersionPolicy.parse({"latest": {"num_versions": 1}}).select(available) == [10]
    assert VersionPolicy.parse({"latest": {"num_versions": 2}}).select(available) == [3, 10]
    assert VersionPolicy.parse({"all": {}}).select(available) == available
    specific = VersionPolicy.parse({"specific": {"versions": [2, 7]}})
    assert specific.select(available) == [2]  # 7 is not on disk
    assert VersionPolicy().select(available) == [10]  # the default: latest 1
    for bad in (
        {},
        {"latest": {"num_versions": 0}},
        {"specific": {"versions": []}},
        {"newest": {}},
    ):
        with pytest.raises(PolicyError):
            VersionPolicy.parse(bad)
    assert parse_load_config('{"version_policy": {"all": {}}}') == LoadConfig(VersionPolicy("all"))
    assert parse_load_config("{}") == LoadConfig()
    with pytest.raises(RepositoryError):
        parse_load_config("not json")


def test_a_rollout_setting_reads_as_the_issue_spells_it() -> None:
    assert Rollout.parse({"shadow": "3"}) == Rollout(shadow="3")
    assert Rollout.parse({"shadow": 3}).to_json() == {"shadow": "3"}
    canary = {"canary": {"version": "3", "percent": 10, "sticky_header": "X-Caller"}}
    assert Rollout.parse(canary) == Rollout(canary=Canary("3", 10.0, "x-caller"))
    assert Rollout.parse({}) == Rollout() and Rollout().version is None
    config = parse_load_config('{"version_policy": {"all": {}}, "rollout": {"shadow": "2"}}')
    assert config == LoadConfig(VersionPolicy("all"), Rollout(shadow="2"))
    for bad in (
        {"shadow": "3", "canary": {"version": "3", "percent": 5}},
        {"shadow": "v3"},
        {"shadow": 0},
        {"canary": {"version": "3", "percent": 101}},
        {"canary": {"version": "3"}},
        {"canary": {"version": "3", "percent": 5, "header": "X"}},
        {"mirror": "3"},
        ["shadow", "3"],
    ):
        with pytest.raises(RolloutError):
            Rollout.parse(bad)
    with pytest.raises(RepositoryError, match="percent"):
        parse_load_config('{"rollout": {"canary": {"version": "3", "percent": -1}}}')


def test_a_sticky_caller_always_lands_on_the_same_side() -> None:
    canary = Canary("3", 30.0, "x-caller")
    callers = [f"caller-{i}" for i in range(2000)]
    sides = [canary.takes(c, draw=0.0) for c in callers]
    # Whatever the draw, a caller's side is its own: the same every time.
    assert sides == [canary.takes(c, draw=99.9) for c in callers]
    assert 0.25 < sum(sides) / len(sides) < 0.35
    # Without a caller, the draw decides.
    assert canary.takes(None, draw=29.9) and not canary.takes(None, draw=30.0)


def test_only_positive_integer_folders_are_versions_in_numeric_order(tmp_path: Path) -> None:
    for folder in ("2", "10", "1", "0", "-1", "draft", ".staging-abc", "3.5"):
        (tmp_path / "m" / folder).mkdir(parents=True)
    (tmp_path / "m" / "7").write_text("a file, not a folder")
    versions = [f.version for f in Repository(tmp_path).versions("m")]
    assert versions == ["1", "2", "10"]


def test_names_that_could_leave_the_repository_are_refused(tmp_path: Path) -> None:
    repository = Repository(tmp_path / "repo")
    (tmp_path / "repo").mkdir()
    for name in ("..", "../other", "a/b", ".hidden", "", "x" * 200, "-x"):
        with pytest.raises(RepositoryError):
            repository.model_path(name)
    assert check_name("reviews-v2.en_US") == "reviews-v2.en_US"
    # A version folder linked to a place outside the model is not one of its versions.
    (tmp_path / "outside").mkdir()
    (tmp_path / "repo" / "m").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "repo" / "m" / "1")
    assert repository.versions("m") == []


def test_a_written_version_appears_complete_under_the_next_number(tmp_path: Path) -> None:
    repository = Repository(tmp_path)
    seen_while_writing: list[list[str]] = []

    def write(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        seen_while_writing.append([f.version for f in repository.versions("m")])

    first = write_version(tmp_path, "m", write)
    second = write_version(tmp_path, "m", write)
    assert (first.version, second.version) == ("1", "2")
    assert seen_while_writing == [[], ["1"]]  # the staging folder is never a version
    assert (second.path / "config.json").read_text() == "{}"
    assert oct(second.path.stat().st_mode & 0o777) == "0o755"
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")] == []


def test_concurrent_writers_get_distinct_versions(tmp_path: Path) -> None:
    versions: list[str] = []
    start = threading.Barrier(4)

    def writer() -> None:
        start.wait()
        versions.append(write_version(tmp_path, "m", lambda folder: None).version)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions, key=int) == ["1", "2", "3", "4"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_version(tmp_path, "m", broken)
    assert list((tmp_path / "m").iterdir()) == []
