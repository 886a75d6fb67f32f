"""Optional loading of a config.json from the Hugging Face Hub.

Only ``config.json`` is downloaded and only its JSON is read: no model code is fetched or run
(``trust_remote_code`` is never used). When the Hub cannot be reached, a model the bundled catalog
knows falls back to the bundled config with a message saying so; anything else is a clear error.

Failing over is quick: the Hub client retries a refused connection for about half a minute, so before
asking it, one TCP connection to the Hub's endpoint (or to the proxy that reaches it) is tried, DNS
included, for at most ``PROBE_TIMEOUT_S``. ``HF_HUB_OFFLINE=1``, or an endpoint that does not answer,
leaves only the local Hugging Face cache: a config downloaded earlier still serves, else the fallback.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from urllib.parse import urlsplit

from ..errors import RooflensError
from .spec import ModelSpec

log = logging.getLogger("rooflens")

PROBE_TIMEOUT_S = 1.5  # the whole reachability check: name lookup and connection
TRUTHY = {"1", "true", "yes", "on"}  # as huggingface_hub reads its boolean variables


class HubClientMissing(Exception):
    """huggingface_hub is not installed."""


class HubUnreachable(Exception):
    """The Hub's endpoint took no connection within the probe's time, and nothing was cached."""


def offline_requested() -> bool:
    """HF_HUB_OFFLINE is set (read now: the Hub client reads it once, when first imported)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the host of ``url`` opens within ``timeout`` seconds in all, or to
    the proxy that the environment routes it through. The attempt runs on a daemon thread, so a name
    lookup that hangs costs ``timeout`` and no more."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    target = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if via.hostname:
            target = (via.hostname, via.port or 80)
    opened: list[bool] = []
    done = threading.Event()

    def connect() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                opened.append(True)
        except OSError:
            pass  # refused, unreachable, unknown name or timed out: all mean "not now"
        finally:
            done.set()

    threading.Thread(target=connect, daemon=True).start()
    done.wait(timeout)
    return bool(opened)


def _download_config(model_id: str) -> str:
    try:
        from huggingface_hub import constants, hf_hub_download
    except ImportError:
        raise HubClientMissing from None
    if offline_requested() or constants.HF_HUB_OFFLINE:
        # Only the local cache: a copy downloaded earlier, or LocalEntryNotFoundError (offline).
        return hf_hub_download(repo_id=model_id, filename="config.json", local_files_only=True)
    if not reachable(constants.ENDPOINT):
        try:
            return hf_hub_download(repo_id=model_id, filename="config.json", local_files_only=True)
        except Exception:
            raise HubUnreachable(constants.ENDPOINT) from None
    return hf_hub_download(repo_id=model_id, filename="config.json")


def load_from_hub(model_id: str) -> ModelSpec:
    from pathlib import Path

    from .catalog import catalog_spec, find_catalog_name, load_config_file
    from .families import spec_from_config

    try:
        path = _download_config(model_id)
    except Exception as err:  # the Hub client raises many kinds; every one means "no config here"
        reason = _describe(err)
        bundled = find_catalog_name(model_id)
        if bundled is not None:
            log.warning(
                "Hugging Face Hub unavailable (%s); using the bundled config of '%s'", reason, bundled
            )
            return catalog_spec(bundled)
        raise RooflensError(
            f"could not fetch config.json of '{model_id}' from the Hugging Face Hub ({reason}) and the "
            "bundled catalog has no such model; pass a local config.json path instead"
        ) from None
    return spec_from_config(load_config_file(Path(path)), name=model_id, hf_id=model_id)


def _describe(err: Exception) -> str:
    if isinstance(err, HubClientMissing):
        return "huggingface_hub is not installed: pip install 'rooflens[hub]'"
    if isinstance(err, HubUnreachable):
        return "offline"
    name = type(err).__name__
    if "Offline" in name or "Connection" in name or "LocalEntryNotFound" in name:
        return "offline"
    if "GatedRepo" in name:
        return "gated repository: log in with `huggingface-cli login` after accepting its licence"
    if "RepositoryNotFound" in name:
        return "no such repository"
    return f"{name}: {err}".splitlines()[0][:200]
