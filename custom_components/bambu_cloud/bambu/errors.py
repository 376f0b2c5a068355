"""Typed errors of the protocol library, one per thing a user can act on."""

from __future__ import annotations


class BambuError(Exception):
    """Base class of every error raised by the protocol library."""


class BambuAuthError(BambuError):
    """The token (or password) was refused: sign in again."""


class BambuForbiddenError(BambuError):
    """HTTP 403: a Cloudflare block or a permission the account lacks."""

    def __init__(self, *, cloudflare: bool, code: int | None = None) -> None:
        """Record which kind of 403 this was."""
        kind = "cloudflare" if cloudflare else f"permission (code {code})"
        super().__init__(f"forbidden: {kind}")
        self.cloudflare = cloudflare
        self.code = code


class BambuRateLimitedError(BambuError):
    """HTTP 429: wait at least retry_after seconds (None when not told)."""

    def __init__(self, retry_after: float | None) -> None:
        """Record how long the server asked us to wait."""
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = retry_after


class BambuConnectionError(BambuError):
    """The cloud could not be reached or answered something unusable."""


class BambuCodeError(BambuError):
    """A login verification code was refused (expired or wrong)."""

    def __init__(self, *, expired: bool) -> None:
        """Record whether a new code must be requested."""
        super().__init__("verification code expired" if expired else "wrong code")
        self.expired = expired
