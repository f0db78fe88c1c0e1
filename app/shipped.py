"""Folders shipped with the code: `migrations/` and `policies/` (demo and example agreements, schemas, mappings).

In a checkout (and its editable install) they are the repository's top-level folders. The wheel
carries them as package data, `app/_shipped/<name>` (setup.py maps them there), so an installed
CaseBridge reads them next to its code and never from wherever a checkout happens to be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def shipped(name: Literal["migrations", "policies"]) -> Path:
    """The shipped folder `name`: the installed package's copy, else the checkout's."""
    packaged = PACKAGE / "_shipped" / name
    return packaged if packaged.is_dir() else CHECKOUT / name
