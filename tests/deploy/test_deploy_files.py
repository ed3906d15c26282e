"""The container files: the image installs what pyproject.toml declares and runs as a user, and
compose runs exactly the Procfile's processes against a Redis that keeps its data."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.deploy import yamlish
from tests.deploy.files import (
    DEPLOY,
    ROOT,
    dockerfile_stages,
    procfile,
    pyproject,
    settings_variables,
)

DOCKER = DEPLOY / "docker"
STAGES = dockerfile_stages(DOCKER / "Dockerfile")
FINAL = STAGES[-1]
COMPOSE: dict[str, Any] = yamlish.loads((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
REDIS = "redis"


def args(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for kw, arguments in stage if kw == keyword]


def copied_sources() -> set[str]:
    """Every path a COPY of the build context names (not `--from` copies between stages)."""
    out: set[str] = set()
    for stage in STAGES:
        for arguments in args(stage, "COPY"):
            if arguments.startswith("--from"):
                continue
            *sources, _destination = arguments.split()
            out |= {s.rstrip("/") for s in sources}
    return out


def test_every_stage_is_python_311_slim() -> None:
    assert [args(stage, "FROM")[0].split()[0] for stage in STAGES] == ["python:3.11-slim"] * len(
        STAGES
    )


def test_image_copies_what_pyproject_packages() -> None:
    project = pyproject()
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    # README.md is the project's readme: setuptools reads it to build the package metadata.
    assert copied_sources() == {"pyproject.toml", project["project"]["readme"], *packages}


def test_install_is_pip_install_dot_without_extras() -> None:
    installs = [a for stage in STAGES for a in args(stage, "RUN") if "pip install" in a]
    assert len(installs) == 1, installs
    words = installs[0].split()
    assert words[words.index("install") + 1 :] == ["."], installs[0]
    assert "[test]" in (ROOT / "Makefile").read_text()  # what `make install` adds, left out here
    assert "[" not in installs[0] and " -e " not in installs[0]


def test_final_stage_runs_as_a_user_before_the_entry_point() -> None:
    keywords = [kw for kw, _ in FINAL]
    users = args(FINAL, "USER")
    assert users, "the final stage never leaves root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert any(re.search(rf"useradd\b.*\b{re.escape(user)}$", a) for a in args(FINAL, "RUN"))


def test_entry_point_is_the_ingest_script_and_serves_by_default() -> None:
    scripts = pyproject()["project"]["scripts"]
    assert json.loads(args(FINAL, "ENTRYPOINT")[-1]) == ["ingest"]
    assert scripts["ingest"] == "ingest.cli:main"
    assert json.loads(args(FINAL, "CMD")[-1]) == ["serve"]
    assert procfile()["web"][:2] == ["ingest", "serve"]


def test_dockerignore_keeps_every_copied_path() -> None:
    kept = {
        line[1:].split("/")[0]
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert copied_sources() <= kept


def test_compose_runs_exactly_the_procfile_processes() -> None:
    processes = procfile()
    assert set(SERVICES) == {*processes, REDIS}
    for name, argv in processes.items():
        service = SERVICES[name]
        assert ["ingest", *service["command"]] == argv, name
        build = service["build"]
        assert DOCKER.joinpath(build["context"], build["dockerfile"]).is_file()


@pytest.mark.parametrize("name", sorted(procfile()))
def test_each_process_uses_the_compose_redis_and_the_env_file(name: str) -> None:
    service = SERVICES[name]
    assert service["env_file"] == ".env"
    assert service["environment"]["REDIS_URL"].startswith(f"redis://{REDIS}:6379/")
    assert service["depends_on"][REDIS]["condition"] == "service_healthy"
    assert service["stop_grace_period"] == "30s"  # Heroku's SIGTERM-to-SIGKILL time


def test_redis_keeps_its_data_on_a_named_volume() -> None:
    redis = SERVICES[REDIS]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    volumes = [v.split(":") for v in redis["volumes"]]
    assert [v[0] for v in volumes if v[1] == "/data"] == ["redis-data"]
    assert "redis-data" in COMPOSE["volumes"]


def test_two_workers() -> None:
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2


def test_web_health_check_asks_readyz_on_the_port_it_serves() -> None:
    command = SERVICES["web"]["command"]
    port = command[command.index("--port") + 1]
    check = " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in check
    assert f"{port}:{port}" in SERVICES["web"]["ports"]


def test_env_example_names_every_setting_and_nothing_else() -> None:
    text = (DOCKER / "env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert named == settings_variables()


def test_files_mounted_where_env_example_points() -> None:
    text = (DOCKER / "env.example").read_text()
    paths = {PurePosixPath(p).parent for p in re.findall(r"=(/\S+)", text)}
    mounts = {PurePosixPath(v.split(":")[1]) for v in SERVICES["worker"]["volumes"]}
    assert paths and paths <= mounts
