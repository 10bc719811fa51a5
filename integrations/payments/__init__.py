"""Payment providers behind one interface (comanda/services/payment_provider.py): the sandbox (default), Stripe,
Mercado Pago.

``payment_provider()`` builds the one COMANDA_PAYMENT_PROVIDER names; ``payment_provider("stripe")``
a given one (a payment made with another provider before a switch is still refunded or reconciled
with it). Vendor SDKs are imported only when their provider is built.
"""

from __future__ import annotations

from typing import Optional

from comanda.enums import PaymentProviderName
from comanda.errors import ConfigError
from comanda.services.payment_provider import PaymentProvider
from comanda.settings import setting

PROVIDERS = (PaymentProviderName.SANDBOX, PaymentProviderName.STRIPE, PaymentProviderName.MERCADOPAGO)


def payment_provider(name: Optional[str] = None) -> PaymentProvider:
    name = name or setting("COMANDA_PAYMENT_PROVIDER")
    if name == PaymentProviderName.SANDBOX:
        from integrations.payments.sandbox import SandboxProvider

        return SandboxProvider.from_settings()
    if name == PaymentProviderName.STRIPE:
        from integrations.payments.stripe_provider import StripeProvider

        return StripeProvider.from_settings()
    if name == PaymentProviderName.MERCADOPAGO:
        from integrations.payments.mercadopago_provider import MercadoPagoProvider

        return MercadoPagoProvider.from_settings()
    raise ConfigError(f"COMANDA_PAYMENT_PROVIDER must be one of {', '.join(PROVIDERS)}, not {name!r}")
