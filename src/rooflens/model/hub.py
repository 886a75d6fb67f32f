"""Optional loading of a config.json from the Hugging Face Hub.

Only ``config.json`` is downloaded and only its JSON is read: no model code is fetched or run
(``trust_remote_code`` is never used). When the Hub cannot be reached, a model the bundled catalog
knows falls back to the bundled config with a message saying so; anything else is a clear error.
"""

from __future__ import annotations

import logging

from ..errors import RooflensError
from .spec import ModelSpec

log = logging.getLogger("rooflens")


class HubClientMissing(Exception):
    """huggingface_hub is not installed."""


def _download_config(model_id: str) -> str:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise HubClientMissing from None
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
    name = type(err).__name__
    if "Offline" in name or "Connection" in name or "LocalEntryNotFound" in name:
        return "offline"
    if "GatedRepo" in name:
        return "gated repository: log in with `huggingface-cli login` after accepting its licence"
    if "RepositoryNotFound" in name:
        return "no such repository"
    return f"{name}: {err}".splitlines()[0][:200]
