"""Inference engines: the one meaning of "engine" in rooflens (the serving software: vLLM, SGLang,
TensorRT-LLM, llama.cpp, MLX, transformers).

An engine has a name (with aliases), per-vendor backends where one engine has several kernel sets
(llama.cpp: CUDA, ROCm, Metal), and its scheduler's defaults (``rooflens.serving.SchedulerConfig``).
Its efficiency profiles live in ``hardware/efficiency.yaml``, keyed by the engine's profile name
(``profile_name``). The data is ``engines.yaml``; every default there carries its source.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .errors import RooflensError


class EngineInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    display_name: str
    aliases: list[str] = Field(default_factory=list)
    backends: dict[str, str] = Field(default_factory=dict, description="vendor -> profile name")
    scheduler: dict[str, float | int | bool]
    sources: dict[str, str]

    def profile_name(self, vendor: str) -> str:
        """The name its efficiency profiles go by on a device of ``vendor`` (a backend, or the engine)."""
        return self.backends.get(vendor, self.name)


@cache
def _data() -> dict:
    return yaml.safe_load((resources.files("rooflens") / "engines.yaml").read_text())


@cache
def engines() -> dict[str, EngineInfo]:
    return {name: EngineInfo(name=name, **entry) for name, entry in _data()["engines"].items()}


def engine_names() -> list[str]:
    return list(engines())


def split_version(name: str) -> tuple[str, str]:
    """'sglang@0.5.9' -> ('sglang', '0.5.9'); a name without '@' has no version."""
    base, _, version = name.partition("@")
    return base.strip(), version.strip()


def find_engine(name: str) -> EngineInfo | None:
    """The engine called ``name`` (case-insensitive; aliases, backend profile names and an
    ``@version`` suffix accepted)."""
    key = split_version(name)[0].lower()
    for info in engines().values():
        if key == info.name or key in info.aliases or key in info.backends.values():
            return info
    return None


def get_engine(name: str) -> EngineInfo:
    info = find_engine(name)
    if info is None:
        raise RooflensError(
            f"unknown engine '{name[:60]}'; known engines: {', '.join(engine_names())} "
            "(profile names such as llama.cpp-cuda are accepted too, and a version: vllm@0.11.0)"
        )
    return info


def default_engine(vendor: str, kind: str) -> str | None:
    """The engine an estimate assumes on a device when none is named (README: 'Engines')."""
    d = _data()["defaults"]
    return d["vendor"].get(vendor) or d["kind"].get(kind)
