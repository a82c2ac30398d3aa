"""Demand forecasting: regression of each zone's orders in the next five minutes from its recent order counts."""

from components.demand.component import component

__all__ = ["component"]
