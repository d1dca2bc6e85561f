"""Where bulk scoring sits: a protocol beside REST and v2 (it never imports the HTTP side), whose
file and Spark dependencies stay out of the serving install and out of the server's process."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.artifacts import ROOT
from tests.support.bulk import run_cli

BULK = ROOT / "app" / "bulk"
FORBIDDEN = ("app.http", "app.api", "app.v2", "app.ui", "app.main", "fastapi", "starlette")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", sorted(BULK.glob("*.py")), ids=lambda p: p.name)
def test_bulk_imports_only_the_request_path_and_below(path: Path) -> None:
    bad = [m for m in imported_modules(path) if m.startswith(FORBIDDEN)]
    assert bad == [], f"{path.name} imports {bad}"


def file_libraries_loaded_by(code: str) -> str:
    """Which of pyarrow, pandas and pyspark a fresh interpreter holds after running `code`."""
    code += "; import sys; print(sorted(m for m in FILE_LIBRARIES if m in sys.modules))"
    code = f"FILE_LIBRARIES = ('pyarrow', 'pandas', 'pyspark'); {code}"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_server_imports_no_file_or_spark_library() -> None:
    code = "from app.main import create_app; import app.__main__; create_app()"
    assert file_libraries_loaded_by(code) == "[]"


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which importing `modules` fails as if they were not installed."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    )
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize(
    ("missing", "options", "extra"),
    [
        ("pyarrow", [], "rnn-text-classifier[files]"),
        ("pyspark", ["--engine", "spark"], "rnn-text-classifier[spark]"),
    ],
)
def test_a_missing_optional_dependency_names_the_extra_to_install(
    tmp_path: Path, missing: str, options: list[str], extra: str
) -> None:
    done = run_cli("in.csv", "-o", "out.csv", *options, env=without(tmp_path, missing))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"needs {missing}" in done.stderr and f"pip install '{extra}'" in done.stderr


def test_worker_processes_load_no_file_library() -> None:
    # Each MB a worker of --workers N loads counts N times: it gets texts, not Arrow data.
    assert file_libraries_loaded_by("import app.bulk.workers") == "[]"
