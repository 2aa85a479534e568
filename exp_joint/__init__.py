"""See experiment.py."""
