"""The built wheel is the program: every module imports from it, with its templates, static files and migrations,
in a fresh virtual environment that cannot see this checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "audit", "config", "ingest", "storage")


def _source_modules() -> set[str]:
    names = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if path.name == "__main__.py" or "migrations" in path.parts[1:-1] or path.name == "env.py":
                continue  # scripts run by python -m or by Alembic, not modules to import
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            names.add(".".join(parts))
    return names


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # setuptools writes build/ beside the sources: build from a copy so that the checkout stays clean.
    source = out / "source"
    skip = shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, source, ignore=skip)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("bwc_evidence-*.whl")
    env = out / "venv"
    venv.create(env, with_pip=False)
    # The third-party dependencies come from the test's own environment; the project itself only from the wheel.
    site = Path(
        subprocess.check_output(
            [env / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env / "bin/python"),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return env


def test_every_module_imports_from_the_wheel(wheel_env: Path, tmp_path: Path) -> None:
    modules = sorted(_source_modules())
    script = textwrap.dedent(
        """
        import importlib, json, sys
        where = {}
        for name in sys.argv[1:]:
            where[name] = importlib.import_module(name).__file__
        print(json.dumps(where))
        """
    )
    result = subprocess.run(
        [wheel_env / "bin/python", "-c", script, *modules], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    where = json.loads(result.stdout)
    assert set(where) == set(modules)
    outside = {name: f for name, f in where.items() if not f.startswith(str(wheel_env))}
    assert outside == {}, "modules loaded from outside the wheel"


def test_the_wheel_carries_templates_static_files_and_migrations(wheel_env: Path, tmp_path: Path) -> None:
    script = (
        "import api, storage.migrations as m, pathlib; a = pathlib.Path(api.__file__).parent; "
        "print(sorted(p.name for p in (a / 'templates').iterdir())); print((a / 'static' / 'app.css').is_file()); "
        "print(sorted(p.name for p in (pathlib.Path(m.__file__).parent / 'versions').glob('0*.py')))"
    )
    result = subprocess.run([wheel_env / "bin/python", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    templates, css, versions = result.stdout.splitlines()
    expected = sorted(p.name for p in (ROOT / "api/templates").iterdir())
    assert templates == repr(expected)
    assert css == "True"
    assert versions == repr(sorted(p.name for p in (ROOT / "storage/migrations/versions").glob("0*.py")))


def test_the_console_script_runs_from_the_wheel(wheel_env: Path, tmp_path: Path) -> None:
    result = subprocess.run([wheel_env / "bin/bwc", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "init" in result.stdout and "report" in result.stdout
