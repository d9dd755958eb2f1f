"""The build is offline: no intersphinx mapping (nothing to fetch), and a real `make html`
build run under a network guard (a Python audit hook that refuses every DNS lookup and
internet socket connection) passes without the guard firing. That build is the second clean
build of tests/test_reproducible.py (one build proves both); the guard is in conftest.py."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_conf_has_no_intersphinx_mapping() -> None:
    conf = runpy.run_path(str(ROOT / "conf.py"))
    assert not any("intersphinx" in e for e in conf["extensions"])
    assert not conf.get("intersphinx_mapping")
    # no other extension that fetches at build time
    assert not any(e in conf["extensions"] for e in ("sphinx.ext.linkcode", "sphinxcontrib.bibtex", "sphinx_remote_toc"))


def test_the_guard_refuses_network_requests(guarded) -> None:
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
