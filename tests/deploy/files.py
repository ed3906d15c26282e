"""What the deploy-file tests compare against: the Procfile, pyproject.toml and the settings object.

No Docker engine, Heroku or Entra runs here, so the deploy files are checked by reading them
against the sources they must agree with.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def procfile() -> dict[str, list[str]]:
    """Process type -> its command as argv, from the Procfile."""
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            out[name.strip()] = shlex.split(command)
    return out


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


class _Recorder(Mapping[str, str]):
    """An empty environment that notes every variable looked up in it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_variables() -> frozenset[str]:
    """Every environment variable Settings.from_env reads, seen by letting it read them."""
    recorder = _Recorder()
    Settings.from_env(recorder)
    return frozenset(recorder.names)


def settings_source_names() -> frozenset[str]:
    """Every upper-case name quoted in core/settings.py: a variable read only on some branch
    would be missed by the recorder, but not by this."""
    source = (ROOT / "core" / "settings.py").read_text()
    return frozenset(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|PORT)"', source))


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (keyword, arguments), one list per FROM stage, with line
    continuations joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[list[tuple[str, str]]] = []
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"an instruction before the first FROM: {line}"
        stages[-1].append((keyword.upper(), " ".join(arguments.split())))
    return stages
