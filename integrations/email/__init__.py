"""Outgoing e-mail: ``smtp.SmtpMailer`` implements the core's ``Mailer`` over SMTP (COMANDA_SMTP_*)."""
