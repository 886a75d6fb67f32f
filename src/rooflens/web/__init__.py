"""Web API and page (``rooflens serve``); needs the ``web`` extra (FastAPI, uvicorn, plotly)."""

from __future__ import annotations


def create_app():
    """The FastAPI application (imported lazily: the core package does not need FastAPI)."""
    try:
        from .app import create_app as make
    except ImportError as err:
        from ..errors import RooflensError

        raise RooflensError(f"the web app needs its extra: pip install 'rooflens[web]' ({err})") from None
    return make()
