"""Data preparation for the LibriSpeech joint TTS/ASR setup.

Modules are split into *pure* functions (no Sisyphus import, directly testable) and thin Sisyphus
job wrappers (``*_jobs.py``) around them. The public builders live in the top-level ``data.py``.
"""
