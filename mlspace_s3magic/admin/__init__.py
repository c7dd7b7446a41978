"""The admin endpoint: the HTTP API, its durable store, auth, and plan/apply/verify/revoke."""
