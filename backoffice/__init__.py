"""Comanda's back office: one web process (Sanic) with one blueprint per concern.

Today: health and the WhatsApp simulator; payment pages, payment webhooks and the staff console
join as blueprints of the same app.
"""
