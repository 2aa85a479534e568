"""Sisyphus jobs of this project that are not specific to one data or model type (RETURNN, scoring)."""
