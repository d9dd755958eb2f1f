"""The build is offline: no intersphinx mapping (nothing to fetch), and a real `make html`
build run under a network guard (a Python audit hook that refuses every DNS lookup and
internet socket connection) passes without the guard firing."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def guarded(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", GUARD + code, *args], capture_output=True, text=True,
                          cwd=cwd, check=False, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "rules")})


def test_conf_has_no_intersphinx_mapping() -> None:
    conf = runpy.run_path(str(ROOT / "conf.py"))
    assert not any("intersphinx" in e for e in conf["extensions"])
    assert not conf.get("intersphinx_mapping")
    # no other extension that fetches at build time
    assert not any(e in conf["extensions"] for e in ("sphinx.ext.linkcode", "sphinxcontrib.bibtex", "sphinx_remote_toc"))


def test_the_guard_refuses_network_requests() -> None:
    for code in (
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9/', timeout=1)",
        "import socket; socket.getaddrinfo('example.org', 80)",
        "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)",
    ):
        r = guarded(code)
        assert r.returncode != 0, code
        assert "VMXKB-OFFLINE-GUARD: network request refused" in r.stderr, (code, r.stderr)
    # a local socket pair is allowed (not the network)
    r = guarded("import socket; a, b = socket.socketpair(); a.sendall(b'x'); assert b.recv(1) == b'x'")
    assert r.returncode == 0, r.stderr


def test_build_makes_no_network_request(tmp_path: Path) -> None:
    out = tmp_path / "html"
    r = guarded(
        "from sphinx.cmd.build import main; sys.exit(main(sys.argv[1:]))",
        "-W", "--keep-going", "-q", "-c", str(ROOT), "-b", "html", str(ROOT / "docs"), str(out),
    )
    assert "VMXKB-OFFLINE-GUARD" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert (out / "index.html").exists() and (out / "needs.json").exists()
