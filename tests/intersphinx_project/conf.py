"""A second, tiny Sphinx project that links vmxkb rule IDs through intersphinx, the way the
kernel's Documentation/virt/kvm could (tests/test_publish.py builds it with -W)."""

import os

project = "intersphinx-consumer"
extensions = ["sphinx.ext.intersphinx"]
# The built site's objects.inv, by path: no network (the URL is where links point).
intersphinx_mapping = {
    "vmxkb": ("https://vmxkb.example.org/", os.environ["VMXKB_OBJECTS_INV"]),
}
intersphinx_disabled_reftypes: list[str] = []
