"""Webhook fan-out: signs status notifications (Standard Webhooks) and delivers them to customers."""
