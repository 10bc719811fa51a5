"""WhatsApp Business Cloud API: the Graph API client and the message formats it accepts."""
