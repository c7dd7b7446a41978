"""The domain: names, AWS clients, identity, policy evaluation. Nothing here imports Jupyter."""
