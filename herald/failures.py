"""The one place where provider errors become Temporal failures and back.

Activities raise ``ApplicationError(type=<class name>)``; ``workflows/post.py`` reads the type to
decide: wait exactly what was asked (RateLimited), back off (ProviderUnavailable), reconcile
(OutcomeUnknown), or fail at once (ContentRejected, AuthExpired, AccountUnavailable).
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from providers.base import (
    AuthExpired,
    ContentRejected,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

RATE_LIMITED = "RateLimited"
AUTH_EXPIRED = "AuthExpired"
CONTENT_REJECTED = "ContentRejected"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
OUTCOME_UNKNOWN = "OutcomeUnknown"
# The post cannot be published as stored: account gone, media missing, post not found.
NOT_PUBLISHABLE = "NotPublishable"

_TYPES = {
    RateLimited: RATE_LIMITED,
    AuthExpired: AUTH_EXPIRED,
    ContentRejected: CONTENT_REJECTED,
    ProviderUnavailable: PROVIDER_UNAVAILABLE,
    OutcomeUnknown: OUTCOME_UNKNOWN,
}


def to_application_error(exc: ProviderError) -> ApplicationError:
    """Details are (code, http_status, retry_after): plain values that survive serialization.
    Every publish failure is non-retryable at the Temporal level: the workflow decides."""
    err_type = next((t for cls, t in _TYPES.items() if isinstance(exc, cls)), PROVIDER_UNAVAILABLE)
    retry_after = getattr(exc, "retry_after", None)
    return ApplicationError(
        exc.message,
        exc.code,
        exc.http_status,
        retry_after,
        type=err_type,
        non_retryable=True,
        # An expected outcome the workflow handles, not a bug: the SDK logs it at debug level
        # instead of printing a traceback for every rate limit.
        category=ApplicationErrorCategory.BENIGN,
    )


def not_publishable(code: str, message: str) -> ApplicationError:
    return ApplicationError(message, code, None, None, type=NOT_PUBLISHABLE, non_retryable=True,
                            category=ApplicationErrorCategory.BENIGN)
