"""Inference engines: the one meaning of "engine" in rooflens (the serving software: vLLM, SGLang,
TensorRT-LLM, llama.cpp, MLX, transformers).

An engine has a name (with aliases), per-vendor backends where one engine has several kernel sets
(llama.cpp: CUDA, ROCm, Metal), and its scheduler's defaults (``rooflens.serving.SchedulerConfig``).
Its efficiency profiles live in ``hardware/efficiency.json``, keyed by the engine's profile name
(``profile_name``). The data is ``engines.yaml``; every default there carries its source.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from .errors import RooflensError
from .userfiles import load_bundled_yaml


class EngineInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    display_name: str
    aliases: list[str] = Field(default_factory=list)
    backends: dict[str, str] = Field(default_factory=dict, description="vendor -> profile name")
    vendors: list[str] = Field(default_factory=list, description="device vendors it runs on (empty: any)")
    small_gpu: dict[str, float] | None = Field(
        None, description="scheduler defaults on GPUs below below_gib of memory"
    )
    kernels: dict[str, dict[str, int | str]] = Field(
        default_factory=dict, description="per profile name: what its kernels do to a format's numbers"
    )
    scheduler: dict[str, float | int | bool | str]
    sources: dict[str, str]

    def profile_name(self, vendor: str) -> str:
        """The name its efficiency profiles go by on a device of ``vendor`` (a backend, or the engine)."""
        return self.backends.get(vendor, self.name)


@cache
def _data() -> dict:
    return load_bundled_yaml((resources.files("rooflens") / "engines.yaml").read_text())


@cache
def engines() -> dict[str, EngineInfo]:
    return {name: EngineInfo(name=name, **entry) for name, entry in _data()["engines"].items()}


def engine_names() -> list[str]:
    return list(engines())


VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}")


def split_version(name: str) -> tuple[str, str]:
    """'sglang@0.5.9' -> ('sglang', '0.5.9'); a name without '@' has no version; a leading 'v' is
    dropped ('v0.9.0' is '0.9.0')."""
    base, _, version = name.partition("@")
    version = version.strip()
    if version[:1] in ("v", "V") and version[1:2].isdigit():
        version = version[1:]
    if version and not VERSION.fullmatch(version):
        raise RooflensError(
            f"engine version '{version[:40]}' is not a version: letters, digits and . + _ - only, "
            "at most 40 characters (e.g. vllm@0.11.0)"
        )
    return base.strip(), version


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
    """The engine an estimate assumes on a device when none is named (README: 'Engines'): by kind
    (GPUs, Apple chips), then by the GPU's vendor; CPUs and other accelerators have none."""
    d = _data()["defaults"]
    if kind not in d["kind"]:
        return None
    return d["vendor"].get(vendor) if kind == "gpu" and vendor in d["vendor"] else d["kind"][kind]


def check_runs_on(info: EngineInfo, vendor: str, device: str) -> None:
    """Refuse an engine on a device vendor it does not run on (a device of unknown vendor passes)."""
    if info.vendors and vendor and vendor not in info.vendors:
        raise RooflensError(
            f"{info.display_name} does not run on {vendor} devices such as {device}; it runs on "
            f"{', '.join(info.vendors)}. Engines for {device}: "
            + ", ".join(e.name for e in engines().values() if not e.vendors or vendor in e.vendors)
        )


def kernel_rules(profile_name: str) -> dict[str, int | str]:
    """What the named profile's kernels do to a format's numbers (empty when nothing)."""
    info = find_engine(profile_name)
    return dict(info.kernels.get(profile_name, {})) if info else {}
