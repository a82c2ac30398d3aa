"""Developer tooling: ``make setup``'s installers and the Go builds (Pulumi toolchain, policy tools, upstream judges).

Standard library only at import: ``make setup`` runs it on the bare interpreter.
"""
