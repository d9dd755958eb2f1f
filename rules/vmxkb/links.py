"""Permalinks: one URL per need ID that never moves when pages are reorganised.

The site has ``id/<ID>.html`` for every need (written by the build), redirecting to wherever
the need is rendered now. The base URL is a setting: ``VMXKB_BASE_URL`` in the environment
(the same variable sets ``html_baseurl`` in ``conf.py`` for a published build); without it,
``_build/html``, where ``make html`` puts a local build, relative to the repository root.
"""

from __future__ import annotations

import os

DEFAULT_BASE_URL = "_build/html"
PERMALINK_DIR = "id"


def base_url() -> str:
    """The site's base URL (no trailing slash)."""
    return (os.environ.get("VMXKB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def permalink(need_id: str) -> str:
    """The URL of a need that never moves: ``<base>/id/<ID>.html``."""
    return f"{base_url()}/{PERMALINK_DIR}/{need_id}.html"
