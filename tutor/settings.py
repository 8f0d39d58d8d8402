"""Settings, read from the environment (prefix ``TUTOR_``) and an optional ``.env`` file.

Only entry points (the CLI, the bot launcher) load settings; domain code receives plain values.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUTOR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite store and the index live.")
    discord_token: SecretStr | None = Field(default=None, description="Bot token; never logged.")
    discord_api_url: str = DISCORD_API_URL
    discord_gateway_url: str = DISCORD_GATEWAY_URL
    dev_guild_id: int | None = Field(default=None, description="Sync slash commands to this guild only.")
    answer_channel_ids: list[int] = Field(
        default_factory=list, description="Channels where every message is a question."
    )
    demo_timeout_s: float = 20.0
    log_level: str = "INFO"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "tutor.db"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


def load_settings(**overrides) -> Settings:
    """Load settings once, at an entry point."""
    return Settings(**overrides)
