"""Fault drills: the real processes, a fault injected, the outcome counted (`make drills`)."""
