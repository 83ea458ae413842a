"""Contracts: the types and vocabularies every layer of the package shares (the bottom layer: imports nothing above)."""
