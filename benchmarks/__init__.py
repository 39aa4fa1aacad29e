"""Benchmarks of ociruntime against runc and crun (not tests: see README.md)."""
