"""Loaders for the standard formats users bring, and access to the bundled samples in assets/."""
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def asset(*parts: str) -> Path:
    """Path of a bundled file under assets/ (written for this project; see assets/README.md)."""
    return ASSETS.joinpath(*parts)
