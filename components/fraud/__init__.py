"""Fraud scoring: binary classification of card transactions from per-card and per-merchant velocity and amounts."""

from components.fraud.component import component

__all__ = ["component"]
