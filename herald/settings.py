"""The one settings object. Every field is an environment variable with the ``HERALD_`` prefix
(``DATABASE_URL`` is also read without it). README.md documents each one.

Dev mode (the default) points every provider base URL at the local sandbox; production points
them at the real networks and refuses to start with default secrets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from providers.oauth import OAuthApp

# A well-known value so a fresh `make run` works; production refuses it (see check_production).
DEV_SECRET_KEY = "herald-dev-secret-change-me"

# Where each provider's API lives in production, and the sandbox prefix that emulates it.
REAL_PROVIDER_BASES = {
    "discord": "https://discord.com/api/v10",
    "telegram": "https://api.telegram.org",
    "x": "https://api.x.com",
    "linkedin": "https://api.linkedin.com",
    "linkedin_page": "https://api.linkedin.com",
    # Graph hosts without a version: adapters put their pinned version in each path.
    "facebook": "https://graph.facebook.com",
    "instagram_business": "https://graph.facebook.com",
    "instagram": "https://graph.instagram.com",
    "threads": "https://graph.threads.net",
}
SANDBOX_PROVIDER_PATHS = {
    "discord": "/discord/api/v10",
    "telegram": "/telegram",
    "x": "/x/api",
    "linkedin": "/linkedin/api",
    "linkedin_page": "/linkedin/api",
    "facebook": "/facebook/graph",
    # Its own prefix, so the Facebook and Instagram emulators never share a route; the tokens
    # and Pages are the Facebook emulator's (sandbox/test_users.py).
    "instagram_business": "/instagram_business/graph",
    "instagram": "/instagram/graph",
    "threads": "/threads/graph",
}

# OAuth: (where the user's browser is sent to authorize, where codes and refresh tokens are
# exchanged). shared/reference/providers.md §1-§6 give each network's URLs.
REAL_OAUTH_BASES = {
    "x": ("https://x.com", "https://api.x.com"),
    "linkedin": ("https://www.linkedin.com", "https://www.linkedin.com"),
    "facebook": ("https://www.facebook.com", "https://graph.facebook.com"),
    "instagram": ("https://www.instagram.com", "https://api.instagram.com"),
    "threads": ("https://threads.net", "https://graph.threads.net"),
}
SANDBOX_OAUTH_PATHS = {
    "x": ("/x/www", "/x/api"),
    "linkedin": ("/linkedin/www", "/linkedin/www"),
    "facebook": ("/facebook/www", "/facebook/graph"),
    "instagram": ("/instagram/www", "/instagram/api"),
    "threads": ("/threads/www", "/threads/graph"),
}
# Which registered app (client id and secret) a provider's OAuth flow uses: Instagram through
# Facebook Login is a Facebook app; LinkedIn member and page connections share one app.
OAUTH_APP_OF = {
    "x": "x", "linkedin": "linkedin", "linkedin_page": "linkedin", "facebook": "facebook",
    "instagram_business": "facebook", "instagram": "instagram", "threads": "threads",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore", populate_by_name=True)

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".herald")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("HERALD_DATABASE_URL", "DATABASE_URL")
    )
    secret_key: str = DEV_SECRET_KEY
    bootstrap_key: str | None = None

    host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str | None = None

    temporal_address: str | None = None
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_namespace: str = "default"
    # gzip on every gRPC call to Temporal: on loopback or a LAN it only burns CPU (profiled: a
    # deflate state allocated and zeroed per call, ~10 % of a publisher's CPU in a burst).
    temporal_grpc_compression: Literal["none", "gzip"] = "none"
    temporal_ui_url: str | None = None
    task_queue: str = "herald-publish"
    # The irreversible provider calls have a queue of their own, so a publisher process can do
    # nothing else at the instant a burst is due (see workers/main.py).
    publish_task_queue: str = "herald-publish-calls"

    sandbox_port: int = 8790
    sandbox_url: str | None = None
    discord_api_base: str | None = None
    telegram_api_base: str | None = None
    x_api_base: str | None = None
    linkedin_api_base: str | None = None
    linkedin_page_api_base: str | None = None
    facebook_api_base: str | None = None
    instagram_business_api_base: str | None = None
    instagram_api_base: str | None = None
    threads_api_base: str | None = None

    # OAuth apps (README "Registering the network apps"). In development an unset app talks to
    # the sandbox with built-in sandbox credentials; in production an unset app means the
    # network cannot be connected (connections/start answers 400 and capabilities say why).
    x_client_id: str | None = None
    x_client_secret: str | None = None
    linkedin_client_id: str | None = None
    linkedin_client_secret: str | None = None
    facebook_app_id: str | None = None  # Facebook Pages and Instagram through Facebook Login
    facebook_app_secret: str | None = None
    instagram_app_id: str | None = None  # Instagram API with Instagram Login
    instagram_app_secret: str | None = None
    threads_app_id: str | None = None
    threads_app_secret: str | None = None
    # Explicit authorize / token hosts, e.g. HERALD_X_OAUTH_BASES="https://x.com,https://api.x.com".
    x_oauth_bases: str | None = None
    linkedin_oauth_bases: str | None = None
    facebook_oauth_bases: str | None = None
    instagram_oauth_bases: str | None = None
    threads_oauth_bases: str | None = None
    # Where the browser goes after an OAuth callback (``?connectionId=&status=`` appended);
    # unset: the callback answers JSON.
    oauth_success_url: str | None = None
    # A pending OAuth connection expires after this long.
    oauth_state_ttl_seconds: int = 600
    # The safety-net sweep refreshes access tokens expiring within this window.
    token_refresh_ahead_seconds: float = 1800.0

    # Publishing behaviour.
    # How early a post's workflow wakes before publish_at to load, prepare and hold the call.
    # A burst's wake-up work must finish inside this window (bench/burst.py measures it).
    publish_lead_seconds: float = 60.0
    publish_deadline_seconds: float = 3600.0
    max_posts_per_run: int = 1000
    past_grace_seconds: float = 300.0
    provider_timeout_seconds: float = 30.0
    # Concurrent HTTP requests per network per publisher process (each network has its own pool,
    # so a slow network never holds up another). 4 measured best for a burst on two networks
    # (docs/benchmarks.md); real networks rate-limit far below 4 x publishers in flight.
    provider_max_connections: int = 4
    # Publisher processes `herald dev` starts (each sends at most provider_max_connections at once
    # to each network).
    dev_publishers: int = 2
    # Concurrent activity-task polls of the publisher worker.
    publish_pollers: int = 40
    max_concurrent_activities: int = 2000
    # Workflows kept in the worker's cache. Evicting a sleeping post means replaying its whole
    # history at wake-up, so keep it above the number of posts due close together.
    max_cached_workflows: int = 5000
    # Lets media URLs resolve to loopback/private addresses. For development and tests only
    # (cloud metadata addresses stay refused even then). `herald dev` says when it is on.
    allow_private_networks: bool = False

    # Media pipeline (docs/media.md). Storage: `local` (files under HERALD_DATA_DIR/storage) or
    # `s3` (any S3-compatible service; multipart uploads then go straight to the bucket).
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""
    # Largest asset accepted (uploads, multipart totals, URL downloads for prepare tasks).
    max_asset_bytes: int = 500 * 1024 * 1024
    # A URL download (a post's media, a prepare task's URL) must finish within this time.
    media_fetch_timeout_seconds: float = 600.0
    # Decoded pixels above this are refused as a decompression bomb (Pillow's own default is 89 M).
    max_image_pixels: int = 100_000_000
    # Explicit ffmpeg / ffprobe executables; else PATH, else the ffmpeg inside imageio-ffmpeg
    # (probing then uses PyAV).
    ffmpeg_path: str | None = None
    ffprobe_path: str | None = None
    # Media activities (download, probe, transcode) have a task queue of their own, so a long
    # transcode never delays a workflow task or a publish call.
    media_task_queue: str = "herald-media"
    # Concurrent media activities per worker process (transcodes are CPU-bound).
    media_max_concurrent: int = 2

    # API guards. Rate limits are per API key and route group ("N/second|minute|hour|day");
    # defaults follow SocialHub's published limits. Counters are shared through Redis when set.
    max_body_bytes: int = 10 * 1024 * 1024
    rate_limits_enabled: bool = True
    rate_limit_auth: str = "10/minute"
    rate_limit_publishing: str = "60/hour"
    rate_limit_media: str = "30/hour"
    rate_limit_reads: str = "100/hour"
    redis_url: str | None = None

    # The safety-net sweep (a Temporal Schedule): how often, and how late a post must be to count.
    sweep_interval_seconds: float = 60.0
    sweep_overdue_seconds: float = 600.0

    # Fault injection for chaos/api_crash.py: the API process exits (os._exit, no cleanup) right
    # after an apply's transaction commits and before its RunWorkflow is started, so the safety-net
    # sweep has runs to repair. Development and chaos runs only: production refuses it.
    fault_exit_after_run_write: bool = False

    # Meta app secret(s), comma-separated (Facebook, Instagram and Threads apps may differ): verify
    # the signed_request of Meta's deauthorize and data-deletion callbacks (/webhooks/meta/...).
    meta_app_secret: str | None = None

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check_rate_limits(self) -> "Settings":
        from limits import parse

        for name in ("rate_limit_auth", "rate_limit_publishing", "rate_limit_media", "rate_limit_reads"):
            try:
                parse(getattr(self, name))
            except ValueError:
                raise ValueError(f"HERALD_{name.upper()} must look like 10/minute or 60/hour, "
                                 f"got {getattr(self, name)!r}") from None
        return self

    @model_validator(mode="after")
    def _check_production(self) -> "Settings":
        if self.env == "production":
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ValueError(
                    "HERALD_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production (it encrypts provider credentials)"
                )
            if self.allow_private_networks:
                raise ValueError("HERALD_ALLOW_PRIVATE_NETWORKS is for development and tests only; "
                                 "it must be off in production")
            if self.fault_exit_after_run_write:
                raise ValueError("HERALD_FAULT_EXIT_AFTER_RUN_WRITE crashes the API on every apply (chaos "
                                 "scenarios only); it must be off in production")
            if not self.database_url:
                raise ValueError("DATABASE_URL (or HERALD_DATABASE_URL) is required in production")
        return self

    # Derived values: one place that knows the defaults' shape.
    @property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the common `postgres://` / `postgresql://` spellings and use psycopg 3.
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://"):]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            return url
        return f"sqlite:///{(self.data_dir / 'herald.db').resolve()}"

    @model_validator(mode="after")
    def _check_storage(self) -> "Settings":
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("HERALD_STORAGE=s3 needs HERALD_S3_BUCKET")
        return self

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def temporal_ui_base(self) -> str:
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    @property
    def sandbox_base(self) -> str:
        return (self.sandbox_url or f"http://127.0.0.1:{self.sandbox_port}").rstrip("/")

    @property
    def api_base(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.api_port}").rstrip("/")

    def provider_base(self, provider: str) -> str:
        explicit = getattr(self, f"{provider}_api_base", None)
        if explicit:
            return explicit.rstrip("/")
        if self.env == "development":
            return self.sandbox_base + SANDBOX_PROVIDER_PATHS[provider]
        return REAL_PROVIDER_BASES[provider]

    def oauth_app(self, provider: str) -> "OAuthApp | None":
        """The OAuth app a provider's connections use, or None when it is not configured."""
        from providers.oauth import OAuthApp

        app = OAUTH_APP_OF.get(provider)
        if app is None:
            return None
        id_field = "client_id" if app in ("x", "linkedin") else "app_id"
        secret_field = "client_secret" if app in ("x", "linkedin") else "app_secret"
        client_id, secret = getattr(self, f"{app}_{id_field}"), getattr(self, f"{app}_{secret_field}")
        explicit = getattr(self, f"{app}_oauth_bases")
        if explicit:
            auth_base, _, token_base = explicit.partition(",")
            bases = (auth_base.strip().rstrip("/"), (token_base or auth_base).strip().rstrip("/"))
        elif self.env == "development" and not getattr(self, f"{provider}_api_base", None):
            bases = tuple(self.sandbox_base + p for p in SANDBOX_OAUTH_PATHS[app])  # type: ignore[assignment]
            # The sandbox accepts any client; a fresh `make run` connects with no set-up.
            client_id = client_id or f"herald-sandbox-{app}"
            secret = secret or "herald-sandbox-secret"
        else:
            bases = REAL_OAUTH_BASES[app]
        if not client_id or not secret:
            return None
        return OAuthApp(app=app, client_id=client_id, client_secret=secret,
                        redirect_uri=f"{self.api_base}/oauth/{provider}/callback",
                        auth_base=bases[0], token_base=bases[1])

    @staticmethod
    def oauth_setting_names(provider: str) -> tuple[str, str]:
        app = OAUTH_APP_OF[provider]
        if app in ("x", "linkedin"):
            return f"HERALD_{app.upper()}_CLIENT_ID", f"HERALD_{app.upper()}_CLIENT_SECRET"
        return f"HERALD_{app.upper()}_APP_ID", f"HERALD_{app.upper()}_APP_SECRET"


@lru_cache
def get_settings() -> Settings:
    return Settings()
