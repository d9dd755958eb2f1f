"""Sphinx configuration for the vmxkb site (the repository root is the source dir;
the pages live under docs/). Build with ``make html``; the gate runs in every build."""

import os

project = "vmxkb"
author = "vmxkb developers"
copyright = "2026, vmxkb developers"
root_doc = "index"  # docs/index.md: the Makefile builds with -c . docs
extensions = ["myst_parser", "sphinx_needs", "sphinx.ext.graphviz", "sphinx_copybutton", "vmxkb.sphinxext"]
source_suffix = {".md": "markdown"}
# Only docs/ is content; everything else at the root is code, data or build output.
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "_generated"]  # _generated/: included, not pages
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
html_theme = "furo"
# Where the site is published; permalinks (/id/<ID>.html) and `vmxkb cite` use it. A local
# build leaves it empty: links are then relative to _build/html.
html_baseurl = os.environ.get("VMXKB_BASE_URL", "")
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True
graphviz_output_format = "svg"
html_title = "vmxkb: Intel SDM VMX rules, executable"
pygments_style = "default"
nitpicky = False
suppress_warnings: list[str] = []  # nothing is hidden: the gate and -W see everything

# --- sphinx-needs 9.x data model (current option names only) ---------------------------
needs_id_required = True
needs_id_regex = r"^(SEC|ENTRY|POST|BM|SCN|KVM|DEV|PATCH)_[A-Z0-9]+(_[A-Z0-9]+)*$"
needs_build_json = True
needs_reproducible_json = True
needs_table_style = "table"
needs_role_need_template = "{{ id }}"  # {need}`ID` renders as the ID a reviewer cites
needs_flow_engine = "graphviz"
needs_flow_show_links = True
# needflow diagrams need Graphviz's `dot`: vmxkb.sphinxext stops the build with a plain
# message when it is missing (`make html` installs it when it can).
needs_types = [
    {"directive": "section", "title": "SDM section", "prefix": "SEC_", "color": "#DDDDDD"},
    {"directive": "clause", "title": "SDM clause (executable rule)", "prefix": "ENTRY_", "color": "#BFD8D2"},
    {"directive": "scenario", "title": "Scenario", "prefix": "SCN_", "color": "#FEDCD2"},
    {"directive": "behaviour", "title": "KVM behaviour", "prefix": "KVM_", "color": "#DF744A"},
    {"directive": "deviation", "title": "Deviation", "prefix": "DEV_", "color": "#DCB239"},
    {"directive": "patch", "title": "Patch / commit", "prefix": "PATCH_", "color": "#9DC3E6"},
]
_str = {"schema": {"type": "string"}, "nullable": True}
_strs = {"schema": {"type": "array", "items": {"type": "string"}}, "nullable": True}
needs_fields = {
    "editions": {**_strs, "description": "a section's number per edition group: EDITION:NUMBER:MARK"},
    "sdm_volume": {**_str, "description": "SDM volume (3A, 3B, 3C)"},
    "sdm_sections": {
        **_strs,
        "description": "the clause's section number per edition group, copied from its section",
        "derive_by_type": {"clause": {"kind": "copy", "field": "editions", "over": "sdm"}},
    },
    "failure": {**_str, "description": "what breaking the clause does: vmfail-control, vmfail-host, entry-fail-guest, effect, bare-metal"},
    "confidence": {**_str, "description": "how sure we are of the clause: high, medium, low"},
    "status": {
        "schema": {"type": "string", "enum": ["executable", "not-executable", "ambiguous"]},
        "nullable": True,
        "description": "a clause's status: executable (a rule implements it), not-executable (reason says why), "
        "ambiguous (a rule implements the interpretation chosen, support names the source)",
    },
    "reason": {**_str, "description": "why a not-executable clause has no rule"},
    "interpretation": {**_str, "description": "the reading an ambiguous clause's rule implements"},
    "support": {**_str, "description": "the source that supports an ambiguous clause's interpretation"},
    "expect": {"schema": {"type": "string", "enum": ["passes", "fails"]}, "nullable": True, "description": "a scenario's stated outcome"},
    "kind": {
        "schema": {"type": "string", "enum": ["entry-failure", "guest-visible", "reference"]},
        "nullable": True,
        "description": "a deviation's kind: what a KVM model's exploration finds (entry-failure, guest-visible), "
        "or an independent implementation that answers differently from the SDM (reference)",
    },
    "implementation": {**_str, "description": "a reference deviation's implementation, as repo:path:function"},
    "commit": {**_str, "description": "commit hash of a patch"},
    "url": {**_str, "description": "where a patch or thread can be read"},
}
needs_links = {
    "sdm": {"incoming": "cited by", "outgoing": "SDM section", "target_types": ["section"]},
    "exercises": {"incoming": "scenarios", "outgoing": "exercises", "target_types": ["clause"]},
    "source": {"incoming": "modelled in", "outgoing": "read from", "target_types": ["patch"]},
    "touches": {"incoming": "KVM behaviours", "outgoing": "touches", "target_types": ["clause"]},
    "affects": {"incoming": "deviations", "outgoing": "affects", "target_types": ["behaviour"]},
    "breaks": {"incoming": "broken by deviations", "outgoing": "breaks", "target_types": ["clause"]},
    "fixed_by": {"incoming": "fixes", "outgoing": "fixed by", "target_types": ["patch"]},
}
