"""Peer stacks for the benchmarks; each serves the same bytes as Shipshape."""
