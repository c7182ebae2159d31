"""docker-compose.yml against the code it runs: services, commands, queues, settings, health checks, scaling.

No Docker engine is needed: the file is parsed with PyYAML and interpolated with .env.example
(tests/deploy/composefile.py); test_compose_cli.py additionally runs the real `docker compose config`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from typing import Any

import pytest

from tests.deploy.composefile import (
    COMPOSE_FILE,
    MissingVariable,
    command_argv,
    environment,
    load_compose,
    option,
    read_env_file,
    referenced_variables,
)
from web.core.settings import Settings

EXPECTED_SERVICES = {"redis", "postgres", "seaweedfs", "createbucket", "migrate", "web", "worker", "beat", "trainer"}
SCALED = ("worker", "worker-cpu")
ONE_SHOT = ("migrate", "createbucket")
# Read by something other than Settings: the file that reads it (checked), or None for third-party readers.
OTHER_READERS: dict[str, str | None] = {"WEB_WORKERS": "web/__main__.py", "TF_FORCE_GPU_ALLOW_GROWTH": None}
# What every platform process must be told in production; the defaults are the embedded laptop setup.
REQUIRED = (
    "DATABASE_URL", "BROKER_URL", "STORAGE_BACKEND", "S3_ENDPOINT_URL", "S3_BUCKET", "S3_ACCESS_KEY",
    "S3_SECRET_KEY", "SECRET_KEY",
)  # fmt: skip
REPO_ROOT = COMPOSE_FILE.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def project_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile (the others are stock images)."""
    return {name: service for name, service in services.items() if "build" in service}


class RecordingEnv(dict):
    """An environment that remembers which names were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def settings_variables() -> set[str]:
    recording = RecordingEnv()
    Settings.from_env(recording)
    return recording.asked


def test_settings_reads_one_variable_per_field() -> None:
    assert settings_variables() == {spec.name.upper() for spec in fields(Settings)}


def test_the_platform_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= EXPECTED_SERVICES
    assert set(project_services(services)) >= {"migrate", "web", "worker", "beat", "trainer"}


def test_every_variable_set_for_the_platform_is_read_by_it(services: dict[str, dict[str, Any]]) -> None:
    known = settings_variables()
    for name, service in project_services(services).items():
        unknown = set(environment(service)) - known - set(OTHER_READERS)
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
    for variable, reader in OTHER_READERS.items():
        if reader is not None:
            assert variable in (REPO_ROOT / reader).read_text(), f"{reader} no longer reads {variable}"


def test_every_platform_process_gets_the_required_settings_and_they_agree(
    services: dict[str, dict[str, Any]],
) -> None:
    seen: dict[str, dict[str, str]] = {}
    for name, service in project_services(services).items():
        env = environment(service)
        missing = [variable for variable in REQUIRED if not env.get(variable)]
        assert not missing, f"{name} lacks {missing}"
        seen[name] = {variable: env[variable] for variable in REQUIRED}
    first = next(iter(seen.values()))
    assert all(values == first for values in seen.values()), "web, workers and beat must share one platform"


def test_settings_accept_each_service_environment(services: dict[str, dict[str, Any]]) -> None:
    for name, service in project_services(services).items():
        settings = Settings.from_env(environment(service))
        assert settings.storage_backend == "s3" and settings.database_url.startswith("postgresql+psycopg://")
        assert settings.broker_url.startswith("redis://"), name
    web = Settings.from_env(environment(services["web"]))
    assert web.host == "0.0.0.0" and web.auth_required, "reachable from outside, so tokens are required"


def test_env_example_and_compose_name_the_same_variables() -> None:
    documented = set(read_env_file())
    used = referenced_variables(COMPOSE_FILE.read_text())
    assert documented - used == set(), "documented in .env.example but unused"
    assert used - documented == set(), "used by docker-compose.yml but not documented in .env.example"


def test_secrets_have_no_defaults() -> None:
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        load_compose({})


def _module_of(argv: list[str]) -> str | None:
    if argv[:2] == ["python", "-m"]:
        return argv[2]
    if argv[:1] == ["celery"]:
        return option(argv, "-A", "--app")
    return None


def test_every_command_runs_a_module_of_the_project(services: dict[str, dict[str, Any]]) -> None:
    for name, service in project_services(services).items():
        argv = command_argv(service)
        module = _module_of(argv)
        assert module, f"{name}: {argv} runs neither `python -m` nor `celery -A`"
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"


def test_migrate_runs_a_command_the_cli_has(services: dict[str, dict[str, Any]]) -> None:
    from web.cli import main

    argv = command_argv(services["migrate"])
    assert argv[:3] == ["python", "-m", "web.cli"] and argv[3] in main.commands


def celery_queues() -> set[str]:
    """Queues the Celery app declares with default settings (the compose file does not set QUEUE_NAME)."""
    from worker.celery_app import make_celery

    app = make_celery(Settings.from_env({}))
    return {queue.name for queue in app.conf.task_queues}


def test_workers_consume_queues_the_celery_app_declares(services: dict[str, dict[str, Any]]) -> None:
    queues = celery_queues()
    consumed = {}
    for name, service in project_services(services).items():
        argv = command_argv(service)
        if argv[:1] == ["celery"] and "worker" in argv:
            consumed[name] = option(argv, "-Q", "--queues")
            assert consumed[name] in queues, f"{name} consumes {consumed[name]!r}, the app declares {queues}"
            assert option(argv, "-c", "--concurrency") == "1", f"{name}: one model per container"
        assert "QUEUE_NAME" not in environment(service), "the web tier must enqueue where the workers consume"
    assert consumed["worker"] == Settings().queue_name, "the enhancement queue the web tier sends to"
    assert consumed["trainer"] == "training"


def test_exactly_one_beat(services: dict[str, dict[str, Any]]) -> None:
    beats = [name for name, s in services.items() if command_argv(s)[:1] == ["celery"] and "beat" in command_argv(s)]
    assert beats == ["beat"]
    embedded = [name for name, s in services.items() if {"-B", "--beat"} & set(command_argv(s))]
    assert not embedded, "a worker running beat would multiply the schedule when scaled"
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_scaled_services_have_no_fixed_name_or_host_port(services: dict[str, dict[str, Any]]) -> None:
    for name in SCALED:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name
    for name in ("beat", "trainer", *SCALED):
        assert "container_name" not in services[name]


def test_worker_reserves_a_gpu(services: dict[str, dict[str, Any]]) -> None:
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    assert services["worker"]["build"]["target"] == "worker-gpu"
    assert services["worker-cpu"]["build"]["target"] == "worker"
    assert services["web"]["build"]["target"] == "web", "the web image carries no TensorFlow"


def test_long_running_services_have_health_checks_and_restart(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") in (None, "no", "on-failure"), f"{name} must be allowed to finish"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") in ("unless-stopped", "always"), name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_worker_health_check_pings_its_own_node_name(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker", "trainer"):
        node = option(command_argv(services[name]), "-n", "--hostname")
        assert node and node.endswith("@%h")
        assert f"{node.removesuffix('%h')}$HOSTNAME" in " ".join(services[name]["healthcheck"]["test"])


def test_depends_on_waits_for_health_and_one_shots(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no health check"
            elif condition == "service_completed_successfully":
                assert target in ONE_SHOT, f"{name} waits for {target} to finish, but it never does"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r} starts before it is ready")
    for name in ("web", "worker", "beat", "trainer"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["createbucket"]["condition"] == "service_completed_successfully"


def test_bucket_is_created_with_the_configured_name(services: dict[str, dict[str, Any]]) -> None:
    script = " ".join(command_argv(services["createbucket"]))
    assert f"s3.bucket.create -name {environment(services['web'])['S3_BUCKET']}" in script


def test_stateful_services_keep_data_in_named_volumes(compose: dict[str, Any]) -> None:
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("seaweedfs", "/data"), ("redis", "/data")):
        volume = next(v for v in compose["services"][name]["volumes"] if v.endswith(f":{path}"))
        assert volume.split(":")[0] in compose["volumes"], name
