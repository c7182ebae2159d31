"""The Celery configuration the delivery guarantees rest on, and what importing the worker must not do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.platform import REPO_ROOT
from web.core.settings import Settings
from worker.beat import beat_schedule
from worker.celery_app import make_celery


def test_delivery_is_at_least_once_and_one_message_at_a_time() -> None:
    settings = Settings.from_env({}, broker_url="redis://127.0.0.1:6379/0", task_time_limit=660)
    conf = make_celery(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (600, 660)
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.result_backend is None and conf.task_ignore_result is True


def test_visibility_timeout_follows_a_long_hard_limit() -> None:
    settings = Settings.from_env({}, broker_url="redis://h/0", task_soft_time_limit=5000, task_time_limit=7200)
    assert make_celery(settings).conf.broker_transport_options["visibility_timeout"] > 7200


def test_tasks_and_queues_are_named_explicitly() -> None:
    app = make_celery(Settings.from_env({}, queue_name="enhance"))
    assert {"worker.enhance_job", "worker.recover_stale_jobs"} <= set(app.tasks)
    assert {queue.name for queue in app.conf.task_queues} == {"enhance", "training"}
    assert app.amqp.router.route({}, "worker.enhance_job")["queue"].name == "enhance"


def test_each_app_keeps_the_task_options_of_its_own_settings() -> None:
    few = make_celery(Settings.from_env({}, storage_retry_attempts=1))
    many = make_celery(Settings.from_env({}, storage_retry_attempts=7))
    assert few.tasks["worker.enhance_job"].max_retries == 2
    assert many.tasks["worker.enhance_job"].max_retries == 8


def test_the_embedded_default_broker_needs_no_server(tmp_path: Path) -> None:
    broker = tmp_path / "var" / "broker.db"
    app = make_celery(Settings.from_env({}, broker_url=f"sqla+sqlite:///{broker}"))
    assert app.conf.broker_url.startswith("sqla+sqlite")
    assert broker.parent.is_dir(), "the folder of the SQLite broker file is created"


def test_beat_recovers_stale_jobs_twice_per_lease() -> None:
    schedule = beat_schedule(Settings.from_env({}))
    assert schedule["recover-stale-jobs"]["task"] == "worker.recover_stale_jobs"
    assert schedule["recover-stale-jobs"]["schedule"] == 15.0
    short = beat_schedule(Settings.from_env({}, task_soft_time_limit=10, task_time_limit=15))
    assert short["recover-stale-jobs"]["schedule"] == 5.0
    hooked = beat_schedule(Settings.from_env({}), extra={"retrain": {"task": "worker.retrain", "schedule": 3600}})
    assert set(hooked) == {"recover-stale-jobs", "retrain"}


@pytest.mark.integration
def test_importing_the_worker_app_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = "import sys, worker.celery_app; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    env = {"PATH": "/usr/bin:/bin", "BROKER_URL": f"sqla+sqlite:///{tmp_path / 'b.db'}"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.integration
def test_views_come_from_the_setting_or_else_the_model_card(tiny_model_path: Path) -> None:
    import json

    from worker.model import load_enhancer

    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    shipped = int(card.get("inference", {}).get("views", 1))
    assert load_enhancer(Settings.from_env({}, model=str(tiny_model_path))).views == shipped
    chosen = 3 if shipped != 3 else 2
    assert load_enhancer(Settings.from_env({"VIEWS": str(chosen)}, model=str(tiny_model_path))).views == chosen


@pytest.mark.integration
def test_a_configuration_the_model_cannot_run_with_is_reported_as_such(tiny_model_path: Path) -> None:
    from worker.model import ModelUnavailable, load_enhancer

    with pytest.raises(ModelUnavailable, match=r"cannot run with PRECISION=auto TILE=8 MAX_BATCH=4: tile 8"):
        load_enhancer(Settings.from_env({}, model=str(tiny_model_path), tile=8))
    with pytest.raises(ModelUnavailable, match=r"cannot run with PRECISION=auto VIEWS=3 TILE=8 MAX_BATCH=4: tile 8"):
        load_enhancer(Settings.from_env({}, model=str(tiny_model_path), tile=8, views=3))
    with pytest.raises(ModelUnavailable, match=r"model '.*nowhere.keras' cannot be loaded"):
        load_enhancer(Settings.from_env({}, model=str(tiny_model_path.with_name("nowhere.keras"))))


def test_a_loaded_model_is_traced_for_any_batch_and_size_before_the_first_job(tiny_enhancer) -> None:
    import numpy as np

    traced = tiny_enhancer._predict.experimental_get_tracing_count()
    assert traced >= 1 and tiny_enhancer.batch_sizes == []  # the warm-up is not counted as work
    for count, height, width in ((3, 40, 24), (1, 72, 56), (4, 32, 48)):
        tiny_enhancer.enhance_many([np.zeros((height, width, 3), np.float32)] * count)
    assert tiny_enhancer._predict.experimental_get_tracing_count() == traced, "a real batch paid for tracing"
    tiny_enhancer.batch_sizes.clear()
