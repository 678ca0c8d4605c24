"""The deployment files (Dockerfile, compose.yaml) run the commands the tests run: every `syncbot` command they
name exists and takes the arguments given (no Docker daemon runs here, so the files are read, not built)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _syncbot_help(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args, "--help"],
                          capture_output=True, text=True, timeout=60)


def test_compose_runs_syncbot_commands_that_exist_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    commands = [s["command"] for s in compose["services"].values() if "command" in s]
    assert ["syncbot", "db", "upgrade"] in commands and commands.count(["syncbot", "serve"]) == 2
    for command in commands:
        assert command[0] == "syncbot"
        assert _syncbot_help(command[1:]).returncode == 0, command
    for name, service in compose["services"].items():
        if service.get("command", [""])[0] == "syncbot":
            assert service["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://"), name


def test_the_dockerfile_installs_the_package_and_serves() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copied = {line.split()[1] for line in lines if line.startswith("COPY ")}
    for package in ("bot", "handlers", "sync", "sandbox", "alembic", "alembic.ini", "pyproject.toml"):
        assert package in copied, package
        assert (ROOT / package).exists(), package
    assert any("pip install" in line and "-e ." in line for line in lines)
    assert 'CMD ["syncbot", "serve"]' in lines
    assert _syncbot_help(["serve"]).returncode == 0
