"""``edgefas serve``: a local HTTP API and a live demo page (needs the ``serve`` extra:
``pip install -c constraints.txt 'edgefas[serve]'``)."""
from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
