"""flowkeeper's benchmarks: `make bench` runs them and prints a table."""
