"""provider-ingest: the endpoints carriers call back; verifies, normalises and publishes events."""
