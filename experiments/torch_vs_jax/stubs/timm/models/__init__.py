"""Stand-in for timm.models (see ../../README.md)."""
