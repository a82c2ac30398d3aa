"""Shared templates: the streaming feature job and the KFP v2 training pipeline that every component plugs into."""
