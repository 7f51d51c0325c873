import pytest

from exchange.settings import Settings, shipped_rules_dir


def test_defaults_serve_the_embedded_database() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite+aiosqlite:///var/exchange.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.rules_path == shipped_rules_dir()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_plain_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert Settings.from_env({"EXCHANGE_DATABASE_URL": given}).database_url == expected


def test_numbers_are_parsed_and_checked() -> None:
    assert Settings.from_env({"EXCHANGE_PORT": "9000"}).port == 9000
    with pytest.raises(SystemExit, match="port"):
        Settings.from_env({"EXCHANGE_PORT": "99999"})


def test_a_misspelt_setting_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="EXCHANGE_DATABASE_ULR"):
        Settings.from_env({"EXCHANGE_DATABASE_ULR": "sqlite:///x.db"})


def test_test_suite_variables_are_not_settings() -> None:
    Settings.from_env({"EXCHANGE_TEST_POSTGRES_URL": "postgresql://x"})
