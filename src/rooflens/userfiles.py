"""Reading files a user names (model configs, device specs): bounded, and YAML without aliases.

A config.json is a few kB and a device file less; a read stops at ``MAX_FILE_BYTES`` so that a path
such as /dev/zero or a multi-GB file is refused at once instead of filling memory. YAML aliases
(``*name``) are refused: a few hundred bytes of nested aliases ("billion laughs") expand to gigabytes,
and no device or profile file needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import RooflensError

MAX_FILE_BYTES = 8 * 1024 * 1024


def read_user_text(path: Path, what: str) -> str:
    """The text of a user's file, refused past ``MAX_FILE_BYTES`` or when it is not UTF-8."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise RooflensError(f"cannot read {what} '{path}': {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise RooflensError(
            f"{what} '{path}' is over {MAX_FILE_BYTES // 2**20} MiB; a config or device file is a few kB"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RooflensError(f"{what} '{path}' is not UTF-8 text (byte {err.start})") from None


def exists(path: Path) -> bool:
    """Whether a path names something, False for names the system refuses (too long, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def write_user_text(path: Path, text: str) -> None:
    """Write an output file the user named, with a clear error when it cannot be written."""
    try:
        path.write_text(text)
    except OSError as err:
        raise RooflensError(f"cannot write '{path}': {err.strerror or err}") from None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases when it meets one."""

    def fetch_alias(self) -> None:
        raise yaml.YAMLError("aliases (*name) are not accepted in rooflens files; write the values out")


def load_bundled_yaml(text: str) -> Any:
    """Parse one of rooflens's own YAML files with libyaml where PyYAML has it (the hardware catalog in
    0.04 s, seven times faster than the pure-Python safe loader, which serves where it does not)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # safe: no object tags


def load_yaml_text(text: str) -> Any:
    """Parse YAML safely (no tags that build objects) and without aliases; yaml.YAMLError if invalid."""
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass: no object tags
