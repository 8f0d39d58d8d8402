"""Settings, read from the environment (prefix ``TUTOR_``) and an optional ``.env`` file.

Only entry points (the CLI, the bot launcher) load settings; domain code receives plain values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"


def default_data_dir() -> Path:
    """One knowledge base per user whatever the current folder (``~/.local/share/dl-tutor`` on Linux)."""
    return user_data_path("dl-tutor", appauthor=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUTOR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the SQLite store and the index live (default: the user's data folder).",
    )
    discord_token: SecretStr | None = Field(default=None, description="Bot token; never logged.")
    discord_api_url: str = DISCORD_API_URL
    discord_gateway_url: str = DISCORD_GATEWAY_URL
    dev_guild_id: int | None = Field(default=None, description="Sync slash commands to this guild only.")
    answer_channel_ids: list[int] = Field(
        default_factory=list, description="Channels where every message is a question."
    )
    demo_timeout_s: float = Field(
        default=60.0, description="Upper bound on any demo's wall-clock budget (each has its own)."
    )
    demo_queue_per_user: int = Field(default=1, description="Demos one user may have queued or running.")
    demo_queue_total: int = Field(default=6, description="Demos queued or running for everyone together.")
    demo_warm_start: bool = Field(default=True, description="Start the demo worker when the bot starts.")
    broker_url: str | None = Field(
        default=None,
        description="redis://host:port/db: run demos on Celery workers (`tutor worker`) instead of in-process.",
    )
    demo_max_wait_s: float = Field(
        default=180.0,
        description="With a broker: how long a request may wait for a worker, queueing included.",
    )
    demo_result_ttl_s: int = Field(default=600, description="With a broker: how long results are kept.")
    broker_visibility_s: int = Field(
        default=120,
        description="With a broker: a task whose worker died is handed out again after this (> longest budget).",
    )
    guild_ready_timeout: float = Field(default=2.0, description="discord.py's wait for GUILD_CREATEs.")
    view_timeout_s: float = Field(
        default=840.0, description="How long answer buttons work (under an interaction token's 15 minutes)."
    )
    ask_burst: int = Field(
        default=5,
        ge=1,
        description="Questions one user may ask at once (mentions, DMs, /ask) before the limit.",
    )
    ask_per_minute: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="After the burst, questions one user may ask a minute (the refill rate).",
    )
    owner_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Discord user ids of the tutor's owners besides the application's owner or team, "
        "comma-separated (`123,456`) or a JSON list (`[123, 456]`).",
    )
    guild_grace_days: float = Field(
        default=30.0,
        ge=0,
        allow_inf_nan=False,
        description="Days after the bot leaves a server before that server's data is deleted "
        "(a return within them keeps everything).",
    )
    log_level: str = "INFO"

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("owner_ids", mode="before")
    @classmethod
    def _id_list(cls, value: object) -> object:
        """``TUTOR_OWNER_IDS``: ``123,456`` or ``[123, 456]`` (blank: none)."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]


def pool_settings(settings: Settings):
    """The demo pool's settings, or None when no broker is configured (demos run in-process)."""
    if not settings.broker_url:
        return None
    from engine.pool import PoolSettings

    return PoolSettings(
        broker_url=settings.broker_url,
        result_ttl_s=settings.demo_result_ttl_s,
        visibility_timeout_s=settings.broker_visibility_s,
        max_wait_s=settings.demo_max_wait_s,
    )


def load_settings(**overrides) -> Settings:
    """Load settings once, at an entry point."""
    return Settings(**overrides)
