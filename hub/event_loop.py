"""The event loop ``hub serve`` runs on: uvloop's when it is installed, else asyncio's own.

uvloop is optional (``pip install 'containerhub[fast]'``). With it the hub spends about 15-20 % less CPU per
forward-auth answer (benchmarks/throughput.py), the request every visit to a user's server costs it. Nothing
else changes: the hub uses only what both loops offer.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    log.info("event loop: uvloop %s", uvloop.__version__)
    return uvloop.new_event_loop()
