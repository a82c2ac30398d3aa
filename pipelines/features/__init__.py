"""Feast for a component: its feature repo (``feature_store.yaml`` + definitions) built from the contract."""
