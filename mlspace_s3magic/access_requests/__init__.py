"""The client side of access requests: identity proof, submit, follow, outbox."""
