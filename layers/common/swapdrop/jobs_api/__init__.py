"""The jobs API (ApiFunction): models, the service behind the routes, list queries, cursors, idempotency."""
