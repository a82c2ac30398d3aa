"""The only code that knows both modes: the ``mlstack`` CLI (embedded services, streaming, training, serving, the
demo, the scaffold), ``kubectl-canary`` and the stack commands behind ``make preview/up/down``."""
