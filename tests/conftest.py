from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A Sphinx project built by test_publish.py, not test code: its conf.py needs the built
# site's objects.inv and must not be imported by --doctest-modules.
collect_ignore = ["intersphinx_project"]


def build(tree: Path) -> subprocess.CompletedProcess[str]:
    """Build the site of ``tree`` the way `make html` does, importing ``tree``'s rules."""
    env = {"PYTHONPATH": str(tree / "rules"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-c", str(tree), "-W", "--keep-going", "-q", "-b", "html",
         str(tree / "docs"), str(tree / "_build" / "html")],
        capture_output=True, text=True, env=env, check=False,
    )


def copy_tree(dst: Path) -> Path:
    """Copy the sources a build needs into ``dst``."""
    for name in ("conf.py", "docs", "rules", "examples"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst / name)
    return dst


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the repository's sources to break."""
    return copy_tree(tmp_path / "repo")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One clean build of an unmodified copy, shared by the tests that only read it."""
    dst = copy_tree(tmp_path_factory.mktemp("site") / "repo")
    return dst, build(dst)


@pytest.fixture
def build_site():
    return build
