"""Models: where weights come from, how they are cached and loaded, and how big they are.

    registry   the packaged trio and the user's models file (LLMLAB_MODELS_FILE): one ModelSpec per model
    cache      package folders, the GGUF -> safetensors cache with its `.complete` manifest, hub downloads
    load       LoadedModel (shared read-only), load_model / load_tokenizer / load_embedder, tiny test models
    variants   decode variants: bfloat16, int8-weight and int8-dynamic copies for generation
    quality    the quality gate's measurements: perplexity on standard-library text, the reference prompts
    memory     parameter counts and memory checks: a model that will not fit is refused with the numbers
    targets    LoRA target names per architecture (the one list)
    adapters   LoRA adapters trained in the app: list, load, attach to a model
    __main__   `python -m labs.models list | check | download KEY`

The package re-exports the names pages and labs use most (`models.spec`, `models.load_model`, ...); inside this
package each module imports its siblings directly.
"""
from labs.core.errors import ModelError
from labs.models.cache import (Progress, cache_dir, cache_state, download, embedder_folder, ensure_cached,
                               ensure_local, installed, package_dir, source_path)
from labs.models.load import LoadedModel, load_embedder, load_model, load_tokenizer, tiny_model
from labs.models.memory import (PURPOSES, MemoryCheck, available_memory, check_memory, count_parameters,
                                entry_parameters, params_text, require_memory, size_text)
from labs.models.registry import (DEFAULT_CHAT_MODEL, EMBEDDING_MODEL, ENTRY_FIELDS, REGISTRY, SOURCE_FIELDS, ModelSpec,
                                  UserModels, add_to_models_file, all_specs, causal_models, embedding_models,
                                  endpoint_refusal, entry_spec, generators, gguf_architecture, model_key, models_file,
                                  spec, toml_entry, user_models)
from labs.models.targets import LORA_TARGETS, lora_targets
from labs.models.variants import DECODE_VARIANTS, decode_variant, forced_decode


__all__ = [
    "ModelError", "Progress", "cache_dir", "cache_state", "download", "ensure_cached", "ensure_local", "installed",
    "package_dir", "embedder_folder", "source_path", "LoadedModel", "load_embedder", "load_model", "load_tokenizer", "tiny_model",
    "PURPOSES", "MemoryCheck", "available_memory", "check_memory", "count_parameters", "entry_parameters",
    "params_text", "require_memory", "size_text", "DEFAULT_CHAT_MODEL", "EMBEDDING_MODEL", "ENTRY_FIELDS", "REGISTRY",
    "SOURCE_FIELDS", "ModelSpec", "UserModels", "add_to_models_file", "all_specs", "causal_models",
    "embedding_models", "endpoint_refusal", "entry_spec", "generators", "gguf_architecture", "model_key",
    "models_file", "spec", "toml_entry", "user_models", "LORA_TARGETS", "lora_targets", "DECODE_VARIANTS",
    "decode_variant", "forced_decode",
]
