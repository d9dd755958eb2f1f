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


@pytest.fixture(scope="session")
def copy_repo():
    """:func:`copy_tree`, for fixtures of a wider scope than ``tree``."""
    return copy_tree


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


#: Prepended to the code a guarded interpreter runs: any name lookup or connection to an
#: internet address is refused and reported on stderr (audit events: see the Python docs,
#: "Audit events table").
GUARD = r'''
import socket, sys
_EVENTS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
           "socket.connect", "socket.sendto", "socket.sendmsg", "urllib.Request", "http.client.connect",
           "ftplib.connect", "smtplib.connect", "webbrowser.open"}
def _guard(event, args):
    if event not in _EVENTS:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock = args[0]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return  # a local (Unix) socket is not the network
    sys.stderr.write(f"VMXKB-OFFLINE-GUARD: network request refused: {event} {args[1:]!r}\n")
    raise OSError(f"vmxkb offline guard: {event}")
sys.addaudithook(_guard)
'''


def _guarded(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in an interpreter whose network access is refused (see GUARD)."""
    return subprocess.run([sys.executable, "-c", GUARD + code, *args], capture_output=True, text=True,
                          cwd=cwd, check=False, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "rules")})


@pytest.fixture
def guarded():
    return _guarded


def offline_build(out: Path) -> subprocess.CompletedProcess[str]:
    """`make html` of the repository into ``out`` under the network guard."""
    return _guarded("from sphinx.cmd.build import main; sys.exit(main(sys.argv[1:]))",
                    "-W", "--keep-going", "-q", "-c", str(ROOT), "-b", "html", str(ROOT / "docs"), str(out))


@pytest.fixture
def guarded_build():
    return offline_build


#: Branch coverage that the whole run must reach, by package (the rest is reported only).
REQUIRED_COVERAGE = {"vmxkb/sdm/": 100.0, "vmxkb/kvm/": 100.0}


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail a whole-suite run (no paths given) whose rules or KVM models are not fully
    branch-covered: a rule branch no test reaches is a rule nobody checked."""
    import io

    config = session.config
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS or exitstatus != 0:
        return
    plugin = config.pluginmanager.getplugin("_cov")
    cov = getattr(getattr(plugin, "cov_controller", None), "cov", None)
    if cov is None:
        return
    low = []
    for package, required in REQUIRED_COVERAGE.items():
        out = io.StringIO()
        percent = cov.report(include=[f"*/{package}*"], file=out, skip_covered=True, show_missing=True, precision=2)
        if percent < required:
            low.append(f"{package}: {percent:.2f}% < {required:.0f}%\n{out.getvalue()}")
    if low:
        session.config.get_terminal_writer().line(
            "\nvmxkb: branch coverage below the requirement:\n" + "\n".join(low), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
