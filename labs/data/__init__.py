"""Loaders for the standard formats users bring, and access to the bundled samples in assets/.

    benchmarks    multiple-choice items: MMLU CSV, HellaSwag-style JSONL, the bundled mini benchmark
    corpora       text domains for the mixtures lab: the standard library's source and docstrings, uploads
    instructions  Alpaca rows and ShareGPT / LIMA conversations -> one Example shape
    preferences   (prompt, chosen, rejected) triples from the layouts people bring
"""
from pathlib import Path


ASSETS = Path(__file__).resolve().parents[2] / "assets"


def asset(*parts: str) -> Path:
    """Path of a bundled file under assets/ (written for this project; see assets/README.md)."""
    return ASSETS.joinpath(*parts)


def decode_upload(data: bytes | str, *, name: str = "The file", max_bytes: int, error: type[Exception] = ValueError,
                  size_hint: str = "Upload a smaller sample.", encoding_hint: str = "Save it as UTF-8 and upload it again.") -> str:
    """An upload as text: refuses files over `max_bytes` and anything that is not UTF-8 (a BOM is fine), with `error`
    and a message that says how to fix it."""
    if isinstance(data, str):
        return data
    if len(data) > max_bytes:
        raise error(f"{name} is {len(data) / 1e6:.1f} MB, larger than the {max_bytes // 1_000_000} MB limit. {size_hint}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}). "
                    f"{encoding_hint}") from None
