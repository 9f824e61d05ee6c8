"""Provider registry: provider id -> adapter class. Add a network with `providers/<id>.py`,
`sandbox/<id>.py` and its tests, then list it here."""

from __future__ import annotations

from providers.base import Adapter
from providers.discord import DiscordAdapter
from providers.facebook import FacebookAdapter
from providers.instagram import InstagramBusinessAdapter, InstagramLoginAdapter
from providers.linkedin import LinkedInAdapter, LinkedInPageAdapter
from providers.telegram import TelegramAdapter
from providers.threads import ThreadsAdapter
from providers.x import XAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    cls.provider: cls
    for cls in (DiscordAdapter, TelegramAdapter, LinkedInAdapter, LinkedInPageAdapter, ThreadsAdapter,
                FacebookAdapter, InstagramBusinessAdapter, InstagramLoginAdapter, XAdapter)
}

# Providers named by the SocialClaw spec that Herald does not publish to yet: accepted as ids,
# answered with a clear "not supported yet" rather than "unknown provider".
KNOWN_PROVIDERS = (
    "x", "facebook", "instagram_business", "instagram", "threads", "snapchat", "tiktok",
    "linkedin", "linkedin_page", "pinterest", "youtube", "reddit", "discord", "telegram",
    "wordpress", "bluesky", "mastodon",
)


class UnknownProvider(LookupError):
    def __init__(self, provider: str):
        supported = ", ".join(sorted(ADAPTERS))
        if provider in KNOWN_PROVIDERS:
            msg = f"provider {provider!r} is not supported yet (supported: {supported})"
        else:
            msg = f"unknown provider {provider!r} (supported: {supported})"
        super().__init__(msg)
        self.provider = provider
        self.message = msg


def get_adapter_class(provider: str) -> type[Adapter]:
    try:
        return ADAPTERS[provider]
    except KeyError:
        raise UnknownProvider(provider) from None


def provider_of_handle(handle: str) -> str | None:
    """`discord:123` -> `discord`; None when the handle has no provider prefix."""
    head, sep, _ = handle.partition(":")
    return head if sep else None
