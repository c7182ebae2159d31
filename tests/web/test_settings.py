"""Settings: one object from the environment; auth defaults to on unless bound to loopback."""

import pytest

from web.core.settings import Settings, SettingsError


def test_defaults_are_the_embedded_platform() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///var/lowlight.db"
    assert settings.broker_url == "sqla+sqlite:///var/broker.db"
    assert settings.storage_backend == "local"
    assert settings.max_upload_bytes == 50 * 2**20
    assert settings.max_pixels == 50_000_000
    assert (settings.precision, settings.tile, settings.max_batch, settings.max_batch_delay_ms) == (
        "auto",
        1024,
        4,
        200,
    )
    assert settings.model is None


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({}, False),
        ({"HOST": "localhost"}, False),
        ({"HOST": "0.0.0.0"}, True),
        ({"HOST": "0.0.0.0", "REQUIRE_AUTH": "false"}, False),
        ({"REQUIRE_AUTH": "true"}, True),
    ],
)
def test_auth_is_required_unless_bound_to_loopback(env: dict[str, str], required: bool) -> None:
    settings = Settings.from_env(env)
    assert settings.require_auth is required
    assert settings.auth_required is required


def test_reads_types_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MAX_UPLOAD_BYTES": "1_000",
            "PRESIGN_RESULTS": "yes",
            "MAX_BATCH_DELAY_MS": "50",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "STORAGE_BACKEND": "s3",
            "S3_SECRET_KEY": "hunter2",
            "MODEL": "",
        }
    )
    assert settings.max_upload_bytes == 1000
    assert settings.presign_results is True
    assert settings.max_batch_delay_ms == 50
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.model is None
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    "env",
    [
        {"MAX_BATCH": "four"},
        {"PRESIGN_RESULTS": "maybe"},
        {"STORAGE_BACKEND": "ftp"},
        {"PRECISION": "fp16"},
        {"TILE": "0"},
        {"TASK_SOFT_TIME_LIMIT": "100", "TASK_TIME_LIMIT": "50"},
    ],
)
def test_bad_values_are_refused_with_the_variable_name(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_an_unknown_precision_names_the_ones_there_are() -> None:
    with pytest.raises(SettingsError, match=r"^PRECISION='fp16': use auto, fp32 or bf16$"):
        Settings.from_env({"PRECISION": "fp16"})


def test_views_default_to_the_model_cards_and_are_checked() -> None:
    assert Settings.from_env({}).views is None
    assert Settings.from_env({"VIEWS": ""}).views is None  # docker-compose passes an unset VIEWS as empty
    assert Settings.from_env({"VIEWS": "3"}).views == 3
    with pytest.raises(SettingsError, match=r"^VIEWS=5: use 1, 2, 3 or 4, or leave it empty for the model card's$"):
        Settings.from_env({"VIEWS": "5"})
    with pytest.raises(SettingsError, match=r"^VIEWS='three' is not an integer$"):
        Settings.from_env({"VIEWS": "three"})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.tile = 256  # type: ignore[misc]
