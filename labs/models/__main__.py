"""`python -m labs.models list | check | download KEY`."""
from __future__ import annotations

import argparse

from labs.core.errors import ModelError
from labs.models.cache import download
from labs.models.registry import all_specs, user_models


def main(argv: list[str] | None = None) -> int:
    """`python -m labs.models list | check | download KEY`."""
    parser = argparse.ArgumentParser(prog="python -m labs.models", description="LLM Lab models: the registry and "
                                     "the models file (LLMLAB_MODELS_FILE).")
    parser.add_argument("command", choices=["list", "check", "download"])
    parser.add_argument("key", nargs="?")
    args = parser.parse_args(argv)
    found = user_models()
    if args.command == "download":
        if not args.key:
            parser.error("download needs the model key (see `python -m labs.models list`).")
        try:
            print(download(args.key, lambda f, m: print(f"{f:4.0%} {m}")))
        except ModelError as exc:
            print(exc)
            return 1
        return 0
    for s in all_specs().values():
        print(f"{s.key:32} {s.kind:9} {s.source:8} {s.display_name}")
    print(f"models file: {found.path}" + ("" if found.path.exists() else " (not there: only the packaged models)"))
    for e in found.errors:
        print("problem:", e)
    return 1 if args.command == "check" and found.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
