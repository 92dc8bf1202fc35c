"""Converters between third-party SAE checkpoint layouts and the canonical `SAE`."""
