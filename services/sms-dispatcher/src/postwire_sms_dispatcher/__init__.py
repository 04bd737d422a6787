"""sms-dispatcher: consumes ``send.sms``, claims each message once, submits it to a carrier, reports."""
