"""Test support: fakes of installers, judges built from upstream modules, references."""
