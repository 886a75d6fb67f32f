"""The bundled model catalog and the one entry point that turns "a model" into a ModelSpec.

A model can be given as a catalog name (``llama-3-8b``), a Hugging Face id that the catalog knows
(``meta-llama/Meta-Llama-3-8B``), a path to a ``config.json`` (or a folder holding one), a config
dict, or a ModelSpec. Catalog files are real configs (architecture fields) with a ``_rooflens`` block
that records where they came from and the published parameter count.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import RooflensError, did_you_mean
from ..userfiles import exists, read_user_text
from .families import config_name, spec_from_config
from .spec import ModelSpec

ModelLike = ModelSpec | dict[str, Any] | str | Path

_META_KEYS = (
    "hf_id",
    "source",
    "published_params",
    "published_params_source",
    "published_active_params",
    "active_params_convention",
    "published_params_rounding",
    "published_params_unmodelled",
    "published_params_includes_mtp",
)


@cache
def _catalog_files() -> dict[str, dict[str, Any]]:
    """Catalog name -> parsed JSON of every bundled config, read once."""
    folder = resources.files("rooflens.model") / "catalog"
    docs = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            doc = json.loads(entry.read_text())
            docs[doc["_rooflens"]["name"]] = doc
    return dict(sorted(docs.items()))


@cache
def _index() -> dict[str, str]:
    """Every accepted spelling (lower case) -> catalog name."""
    index: dict[str, str] = {}
    for name, doc in _catalog_files().items():
        meta = doc["_rooflens"]
        for key in (name, meta["hf_id"], meta["hf_id"].split("/")[-1], *meta.get("aliases", [])):
            index[key.lower()] = name
    return index


def catalog_names() -> list[str]:
    return list(_catalog_files())


@cache
def catalog_spec(name: str) -> ModelSpec:
    doc = _catalog_files()[name]
    meta = doc["_rooflens"]
    return spec_from_config(doc, name=name, **{k: meta[k] for k in _META_KEYS if meta.get(k) is not None})


def find_catalog_name(query: str) -> str | None:
    return _index().get(query.strip().lower())


def catalog_model(name: str) -> ModelSpec:
    """A catalog model by name or alias only: never a file path (the web API takes names from clients)."""
    found = find_catalog_name(name)
    if found is None:
        hint = did_you_mean(name, list(_index()))
        raise RooflensError(f"unknown model '{name}'.{hint or ''} GET /api/models lists the catalog.")
    return catalog_spec(found)


def list_models() -> list[ModelSpec]:
    return [catalog_spec(n) for n in catalog_names()]


def load_config_file(path: Path) -> dict[str, Any]:
    if path.is_dir():
        path = path / "config.json"
    text = read_user_text(path, "model config")
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as err:
        raise RooflensError(f"'{path}' is not valid JSON: {err.msg} at line {err.lineno}") from None
    if not isinstance(cfg, dict):
        raise RooflensError(f"'{path}' must hold a JSON object (a Hugging Face config.json)")
    return cfg


def path_name(path: Path) -> str:
    """A model's name from where its config lies: the folder of a ``config.json`` (every checkpoint's
    config has that name, so the folder is what tells them apart), else the file's stem."""
    path = path.expanduser()
    if path.is_dir() or path.name == "config.json":
        folder = path if path.is_dir() else path.parent
        return folder.resolve().name or str(folder)
    return path.stem


def hf_config(model: ModelLike) -> dict[str, Any]:
    """The Hugging Face config dict behind a catalog name, config path or dict (for building the real
    model in ``rooflens validate``); rooflens's own ``_rooflens`` block is dropped."""
    if isinstance(model, dict):
        raw = model
    elif isinstance(model, Path) or (isinstance(model, str) and find_catalog_name(model) is None):
        raw = load_config_file(Path(model).expanduser())
    elif isinstance(model, str):
        raw = _catalog_files()[find_catalog_name(model)]
    else:
        raise RooflensError("a real-model run needs a catalog name, a config.json path or a config dict")
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def load_model(model: ModelLike, *, hub: bool = False) -> ModelSpec:
    """Resolve any accepted model reference to a ModelSpec; raise RooflensError with advice if not."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        return spec_from_config(model)
    if isinstance(model, Path):
        cfg = load_config_file(model)
        return spec_from_config(cfg, name=config_name(cfg) or path_name(model))
    if not isinstance(model, str) or not model.strip():
        raise RooflensError("a model must be a catalog name, a Hugging Face id, a config.json path or a dict")
    if hub:
        from .hub import load_from_hub

        return load_from_hub(model)
    name = find_catalog_name(model)
    if name is not None:
        return catalog_spec(name)
    path = Path(model).expanduser()
    if path.suffix == ".json" or exists(path):
        if not exists(path):
            raise RooflensError(f"model config file '{model}' does not exist")
        return load_model(path)
    hint = did_you_mean(model, list(_index()))
    hub_hint = " Use --hf to fetch a config from the Hugging Face Hub." if "/" in model else ""
    raise RooflensError(
        f"unknown model '{model}'.{hint or ''}{hub_hint} Run `rooflens models` for the catalog, "
        "or pass a path to a config.json."
    )
