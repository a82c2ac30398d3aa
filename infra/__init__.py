"""Pulumi programs: cluster providers, one ComponentResource per platform service, per-component resources."""
