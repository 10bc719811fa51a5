"""The credentials a provider with a hosted checkout reads from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from comanda.errors import ConfigError
from comanda.settings import setting, setting_int

# How long one call to a provider may take. start_payment and new_link make and close links with the
# order row locked, so a provider that hangs must not hold it for long (the SDKs' own default is 80 s).
REQUEST_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Credentials:
    """What a provider with a hosted checkout needs: its API key and base URL, the webhook secret, where
    the customer comes back to, how old a signed webhook may be."""

    api_key: str
    webhook_secret: str
    api_url: str
    return_url: str
    tolerance_seconds: int

    @classmethod
    def from_settings(cls, provider: str, key: str, secret: str, url: str) -> Credentials:
        if not setting(key) or not setting(secret):
            raise ConfigError(f"COMANDA_PAYMENT_PROVIDER={provider} needs {key} and {secret}")
        return cls(
            setting(key),
            setting(secret),
            setting(url).rstrip("/"),
            f"{setting('COMANDA_BACKOFFICE_URL')}/pay/return",
            setting_int("COMANDA_WEBHOOK_TOLERANCE_SECONDS"),
        )
