"""Web API and page (``rooflens serve``); needs the ``web`` extra (FastAPI, uvicorn, plotly)."""

from __future__ import annotations

# `rooflens serve --workers N`: uvicorn starts N processes, each building its own app from this
# import string (an app object cannot cross into a worker process).
APP_FACTORY = "rooflens.web:create_app"
# Each worker holds its own copy of the catalogs (tens of MB); past a few per core they only
# compete for the same CPUs. 64 covers the largest single hosts while catching typos like 1000.
MAX_WORKERS = 64


def create_app(**options):
    """The FastAPI application (imported lazily: the core package does not need FastAPI).

    ``options`` go to :func:`rooflens.web.app.create_app` (the bounds of its cache of answers)."""
    try:
        from .app import create_app as make
    except ImportError as err:
        from ..errors import RooflensError

        raise RooflensError(f"the web app needs its extra: pip install 'rooflens[web]' ({err})") from None
    return make(**options)
