"""Lab configuration: defaults, zetl.toml, ZETL_* variables, keyword overrides, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from zetl_nb.config import CONFIG_FILE, LabConfig, load_config
from zetl_nb.core.errors import ConfigError, ZetlError


def write(home: Path, text: str) -> Path:
    path = home / CONFIG_FILE
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={})
    assert config == LabConfig()
    assert config.account_id == "123456789012"
    assert config.region == "us-east-1"
    assert config.time_scale == 1.0
    assert config.prerequisite_recheck_seconds == 10.0
    assert config.retry_window_days == 7.0
    assert config.dynamodb_endpoint == ""
    assert config.embedded_postgres is True
    assert config.embedded_cluster == "zetl-aurora-postgres"
    assert dict(config.databases) == {}


def test_missing_home_means_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "nowhere", env={}) == LabConfig()


def test_file_values(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
account_id = "210987654321"
region = "eu-west-2"
time_scale = 60
prerequisite_recheck_seconds = 2.5
retry_window_days = 1
dynamodb_endpoint = "http://127.0.0.1:8000"
embedded_postgres = false
embedded_cluster = "my-cluster"
""",
    )
    config = load_config(tmp_path, env={})
    assert config.account_id == "210987654321"
    assert config.region == "eu-west-2"
    assert config.time_scale == 60.0 and isinstance(config.time_scale, float)
    assert config.prerequisite_recheck_seconds == 2.5
    assert config.retry_window_days == 1.0
    assert config.dynamodb_endpoint == "http://127.0.0.1:8000"
    assert config.embedded_postgres is False
    assert config.embedded_cluster == "my-cluster"


def test_integer_account_in_toml_is_read_as_text(tmp_path: Path) -> None:
    write(tmp_path, "account_id = 210987654321\n")
    assert load_config(tmp_path, env={}).account_id == "210987654321"


def test_databases(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
[databases.orders]
url = "mysql://root@127.0.0.1:3306/shop"

[databases.crm]
url = "postgresql://postgres@127.0.0.1:5432/crm"
""",
    )
    config = load_config(tmp_path, env={})
    assert dict(config.databases) == {
        "orders": "mysql://root@127.0.0.1:3306/shop",
        "crm": "postgresql://postgres@127.0.0.1:5432/crm",
    }


def test_env_overrides_file(tmp_path: Path) -> None:
    write(tmp_path, 'region = "eu-west-2"\ntime_scale = 60\nembedded_postgres = true\n')
    env = {
        "ZETL_REGION": "ap-southeast-2",
        "ZETL_TIME_SCALE": "120",
        "ZETL_ACCOUNT_ID": "111122223333",
        "ZETL_EMBEDDED_POSTGRES": "0",
        "ZETL_EMBEDDED_CLUSTER": "other",
        "ZETL_DYNAMODB_ENDPOINT": "http://localhost:4566",
        "ZETL_PREREQUISITE_RECHECK_SECONDS": "0.5",
        "ZETL_RETRY_WINDOW_DAYS": "0.01",
        "UNRELATED": "x",
    }
    config = load_config(tmp_path, env=env)
    assert config.region == "ap-southeast-2"
    assert config.time_scale == 120.0
    assert config.account_id == "111122223333"
    assert config.embedded_postgres is False
    assert config.embedded_cluster == "other"
    assert config.dynamodb_endpoint == "http://localhost:4566"
    assert config.prerequisite_recheck_seconds == 0.5
    assert config.retry_window_days == 0.01


def test_file_value_survives_when_env_is_silent(tmp_path: Path) -> None:
    write(tmp_path, 'region = "eu-west-2"\n')
    config = load_config(tmp_path, env={"ZETL_TIME_SCALE": "5"})
    assert config.region == "eu-west-2"
    assert config.time_scale == 5.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("", False),
        ("1", True),
        ("true", True),
        ("yes", True),
    ],
)
def test_embedded_postgres_from_env(tmp_path: Path, value: str, expected: bool) -> None:
    assert (
        load_config(tmp_path, env={"ZETL_EMBEDDED_POSTGRES": value}).embedded_postgres is expected
    )


def test_databases_are_not_read_from_env(tmp_path: Path) -> None:
    write(tmp_path, '[databases.orders]\nurl = "mysql://root@h:3306/shop"\n')
    config = load_config(tmp_path, env={"ZETL_DATABASES": "nonsense"})
    assert dict(config.databases) == {"orders": "mysql://root@h:3306/shop"}


def test_keyword_overrides_win(tmp_path: Path) -> None:
    write(tmp_path, 'region = "eu-west-2"\ntime_scale = 60\n')
    env = {"ZETL_REGION": "ap-southeast-2", "ZETL_TIME_SCALE": "120"}
    config = load_config(
        tmp_path,
        env=env,
        region="us-west-2",
        time_scale="30",
        embedded_postgres=False,
        databases={"x": "postgresql://u@h:1/d"},
    )
    assert config.region == "us-west-2"
    assert config.time_scale == 30.0
    assert config.embedded_postgres is False
    assert dict(config.databases) == {"x": "postgresql://u@h:1/d"}


def test_env_none_reads_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # monkeypatch restores os.environ after the test.
    monkeypatch.setenv("ZETL_REGION", "eu-central-1")
    assert load_config(tmp_path).region == "eu-central-1"


def test_config_is_frozen() -> None:
    config = LabConfig()
    with pytest.raises(AttributeError):
        config.region = "eu-west-1"  # type: ignore[misc]


# -- errors ---------------------------------------------------------------------------------------


def rejected(tmp_path: Path, text: str | None = None, **kwargs: object) -> str:
    if text is not None:
        write(tmp_path, text)
    env = kwargs.pop("env", {})
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env=env, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ZetlError)
    return str(info.value)


@pytest.mark.parametrize("account", ["12345", "1234567890123", "12345678901a", ""])
def test_bad_account(tmp_path: Path, account: str) -> None:
    message = rejected(tmp_path, f'account_id = "{account}"\n')
    assert f"account_id '{account}'" in message
    assert "12 digits" in message


def test_bad_account_from_env(tmp_path: Path) -> None:
    assert "account_id 'abc'" in rejected(tmp_path, env={"ZETL_ACCOUNT_ID": "abc"})


@pytest.mark.parametrize("region", ["US-EAST-1", "useast1", "us-east", "mars", ""])
def test_bad_region(tmp_path: Path, region: str) -> None:
    message = rejected(tmp_path, region=region)
    assert f"region '{region}'" in message
    assert "us-east-1" in message


@pytest.mark.parametrize("value", ["-1", "0", "-0.5"])
def test_time_scale_must_be_positive(tmp_path: Path, value: str) -> None:
    message = rejected(tmp_path, f"time_scale = {value}\n")
    assert "time_scale must be > 0" in message


def test_negative_time_scale_from_env(tmp_path: Path) -> None:
    assert "time_scale" in rejected(tmp_path, env={"ZETL_TIME_SCALE": "-2"})


def test_recheck_seconds_must_be_positive(tmp_path: Path) -> None:
    assert "prerequisite_recheck_seconds" in rejected(tmp_path, prerequisite_recheck_seconds=0)


def test_non_numeric_time_scale(tmp_path: Path) -> None:
    message = rejected(tmp_path, env={"ZETL_TIME_SCALE": "fast"})
    assert "setting 'time_scale' must be a number; got 'fast'" in message


@pytest.mark.parametrize("value", ["[1, 2]", "{ x = 1 }", '"fast"'])
def test_non_numeric_time_scale_in_toml(tmp_path: Path, value: str) -> None:
    assert "setting 'time_scale' must be a number" in rejected(tmp_path, f"time_scale = {value}\n")


def test_unknown_key(tmp_path: Path) -> None:
    message = rejected(tmp_path, 'regoin = "us-east-1"\n')
    assert "unknown setting 'regoin'" in message
    assert "region" in message  # the known settings are listed


def test_unknown_table(tmp_path: Path) -> None:
    assert "unknown setting 'services'" in rejected(tmp_path, "[services]\nport = 1\n")


def test_unknown_keyword_override(tmp_path: Path) -> None:
    assert "unknown setting 'colour'" in rejected(tmp_path, colour="blue")


def test_bad_toml(tmp_path: Path) -> None:
    message = rejected(tmp_path, "region = us-east-1\n")
    assert "is not valid TOML" in message
    assert str(tmp_path / CONFIG_FILE) in message


@pytest.mark.parametrize(
    "text",
    [
        "[databases.orders]\nhost = 'localhost'\n",
        "[databases.orders]\nurl = 'localhost:3306'\n",
        "[databases.orders]\nurl = 5\n",
        "[databases]\norders = 'mysql://root@h:3306/shop'\n",
    ],
)
def test_database_without_url(tmp_path: Path, text: str) -> None:
    message = rejected(tmp_path, text)
    assert "[databases.orders] needs url" in message
    assert "postgresql://" in message


def test_databases_must_be_a_table(tmp_path: Path) -> None:
    assert "[databases] in zetl.toml must be a table" in rejected(tmp_path, 'databases = "x"\n')
