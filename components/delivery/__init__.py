"""Delivery outcome: multiclass classification of food orders (on time, late, very late) from the kitchen's,
the zone's and the courier's recent activity; the outcome arrives later, as an event of its own."""

from components.delivery.component import component

__all__ = ["component"]
