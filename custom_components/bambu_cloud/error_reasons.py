"""Translation keys for the reasons the library gives for a refusal.

The library names what is wrong with a short code (``CertificateError.reason``,
``TlsBundleError.reason``). Each code has its own translation key, so the
user reads the whole message in their language; no English reason text is
put into a translated message. An unknown code (a newer library) falls back
to the generic key.
"""

from __future__ import annotations

from typing import Final, get_args

from .bambu.tls import TlsBundleError, TlsBundleReason

CERTIFICATE_ERROR: Final = "invalid_certificate"
BUNDLE_ERROR: Final = "invalid_bundle"

# Every CertificateError.reason of bambu/auth.py (a test keeps this complete).
CERTIFICATE_REASONS: Final = frozenset(
    {
        "certificate_id_required",
        "encrypted_key",
        "invalid_certificate",
        "invalid_pem",
        "key_mismatch",
        "key_too_large",
        "key_too_small",
        "no_private_key",
        "not_rsa",
        "too_large",
    }
)
BUNDLE_REASONS: Final[frozenset[str]] = frozenset(get_args(TlsBundleReason.__value__))
# Bundle reasons whose message names the offending certificate.
NAMED_BUNDLE_REASONS: Final = frozenset({"not_ca", "expired", "not_pinned"})


def certificate_error_key(reason: str) -> str:
    """The translation key of an app certificate refusal."""
    if reason in CERTIFICATE_REASONS:
        return f"{CERTIFICATE_ERROR}_{reason}"
    return CERTIFICATE_ERROR


def bundle_error(err: TlsBundleError) -> tuple[str, dict[str, str]]:
    """The translation key and placeholders of a CA bundle refusal."""
    if err.reason not in BUNDLE_REASONS:
        return BUNDLE_ERROR, {}
    if err.reason in NAMED_BUNDLE_REASONS:
        if err.cert_name is None:
            return BUNDLE_ERROR, {}
        return f"{BUNDLE_ERROR}_{err.reason}", {"certificate": err.cert_name}
    return f"{BUNDLE_ERROR}_{err.reason}", {}
