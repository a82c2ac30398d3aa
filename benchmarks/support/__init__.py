"""Parts the benchmarks share or split out of a long benchmark. Not benchmarks themselves: `make bench` runs the
files directly in ``benchmarks/`` only."""
