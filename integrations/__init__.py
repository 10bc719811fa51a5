"""Adapters to outside services (WhatsApp Graph API, payments, PACs, e-mail)."""
