"""Glow-TTS building blocks: text encoder (+duration predictor), flow decoder, and the core model."""
from .flow import FlowDecoder
from .model import GlowTTS, GlowTTSOutput
from .text_encoder import TextEncoder

__all__ = ["FlowDecoder", "GlowTTS", "GlowTTSOutput", "TextEncoder"]
