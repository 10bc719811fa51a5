"""WhatsApp Business Cloud API channel for Rasa: a webhook that never loses or duplicates a message.

- ``channel``: the HTTP side, Rasa's input channel (the signed webhook, acknowledged once the messages
  are in the durable inbox) and output channel (the bot's messages become outbox rows).
- ``inbox_writer``: writes what concurrent webhooks bring in one transaction (a group commit).
- ``inbox_worker``: claims inbox rows, routes them to a store, customer and conversation, runs NLU
  and the turn, and recovers what a crash left unanswered.
- ``outbox_sender``: delivers outbox rows to the Graph API, each once, in order per conversation.
- ``statuses``: sent / delivered / read / failed reports, and the re-engagement template.

credentials.yml names the channel ``connectors.whatsapp.WhatsAppInput``.
"""

from connectors.whatsapp.channel import WhatsAppInput, WhatsAppOutput

__all__ = ["WhatsAppInput", "WhatsAppOutput"]
