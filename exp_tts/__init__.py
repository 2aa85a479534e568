"""See experiments.py."""
