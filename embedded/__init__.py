"""Embedded mode: the platform's real engines run as local processes on one machine (no Kubernetes, no Docker).

Kept import-light on purpose: ``python3 -m embedded.install`` runs on the bare interpreter before any
environment exists.
"""
