"""Glow-TTS / joint TTS-ASR experiments with an auxiliary phoneme-reconstruction loss and given alignments.

The repository root is this package; see README.md.
"""
