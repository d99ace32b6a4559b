"""The repository's examples/ is a byte-identical copy of the public worked year (shared/examples).

The tests never read the shared folder (a fresh clone has none beside it); the manifest pins the
copy instead, and a developer compares it with the shared folder by hand (`diff -r`) when the brief's copy changes.
"""

from __future__ import annotations

import hashlib

from tests.conftest import EXAMPLES


def test_every_example_file_matches_its_pinned_digest() -> None:
    pinned = {}
    for line in (EXAMPLES / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        pinned[name.removeprefix("./")] = digest
    present = {
        str(path.relative_to(EXAMPLES)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in EXAMPLES.rglob("*")
        if path.is_file() and path.name != "SHA256SUMS"
    }
    assert present == pinned
