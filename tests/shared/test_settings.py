import pytest

from shared.platform.settings import Settings, SettingsError


def test_defaults_and_env():
    s = Settings.from_env({"REDIS_URL": "redis://h:1/2", "ANYCOST_RENDER_BATCH_SIZE": "4",
                           "ANYCOST_LOG_JSON": "yes"})
    assert s.redis_url == "redis://h:1/2" and s.render_batch_size == 4 and s.log_json
    assert s.database_url.startswith("sqlite:///") and s.is_sqlite


@pytest.mark.parametrize("env", [
    {"ANYCOST_MAX_FILE_MB": "ten"},
    {"ANYCOST_PRECISION": "fp8"},
    {"ANYCOST_TASK_SOFT_LIMIT": "500", "ANYCOST_TASK_HARD_LIMIT": "400"},
    {"ANYCOST_LOG_JSON": "maybe"},
])
def test_bad_values_are_named(env):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert list(env)[-1] in str(err.value) or "must be" in str(err.value)


def test_public_dict_hides_credentials():
    s = Settings(database_url="postgresql://u:secret@db/x", secret_key="k")
    public = s.as_public_dict()
    assert "secret" not in public["database_url"] and "secret_key" not in public
