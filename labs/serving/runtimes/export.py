"""Export a loaded model to an OpenVINO IR, once, into the model cache.

Path: the model's own float32 tensors (the reference every quality figure is measured against, adapters merged in)
are written as a GGUF file with the metadata (tokenizer, chat template, RoPE) of the model's source GGUF, then
OpenVINO GenAI's GGUF reader builds the graph and saves the IR. No exporter that pins another transformers is
needed. Weights are stored as Q8_0 (int8, one scale per 32 values) or F16: re-quantising the packaged Q4_1 file's
values directly is what the reader gets wrong (perplexity x1.23), dequantised values re-stored are within the gate.

Covered: Llama-architecture models (SmolLM2, and models-file GGUF entries of that family). Gemma 3 is not built by
the reader ("Unsupported model architecture 'gemma3'") and stays on torch.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import gguf
import numpy as np
import torch

from labs import models
from labs.models import ModelError


ARCHITECTURES = ("llama",)  # what our tensor-name map covers and OpenVINO GenAI's GGUF reader builds
WEIGHTS = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "f16": gguf.GGMLQuantizationType.F16}
_FILES = ("openvino_model.xml", "openvino_model.bin")
_MANIFEST = ".complete"


class ExportUnsupported(ModelError):
    """This model cannot run on the fast runtime; the message says why (it is served by torch)."""


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """transformers' q/k row order -> llama.cpp's: each head's rotary halves interleaved (the inverse of the
    permutation transformers undoes when it reads a Llama GGUF)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's weights under llama.cpp's tensor names, in GGUF's row order, float32."""
    cfg = model.config
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    out = {}
    for name, tensor in model.state_dict().items():
        w = tensor.detach().float().cpu().numpy()
        if name == "model.embed_tokens.weight":
            out["token_embd.weight"] = w
        elif name == "model.norm.weight":
            out["output_norm.weight"] = w
        elif name == "lm_head.weight":
            if not getattr(cfg, "tie_word_embeddings", False):
                out["output.weight"] = w
        elif name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            module, kind = rest.rsplit(".", 1)
            if module not in names or kind != "weight":
                raise ExportUnsupported(f"Tensor {name} has no place in a Llama GGUF file.")
            if module == "self_attn.q_proj":
                w = _permute(w, heads)
            elif module == "self_attn.k_proj":
                w = _permute(w, kv_heads)
            out[f"blk.{i}.{names[module]}.weight"] = w
        elif "rotary_emb" not in name:
            raise ExportUnsupported(f"Tensor {name} has no place in a Llama GGUF file.")
    return out


def _architecture_fields(cfg) -> dict[str, tuple[object, gguf.GGUFValueType]]:
    """GGUF metadata that follows from the transformers config (a tiny model differs from its source file here)."""
    u32, f32 = gguf.GGUFValueType.UINT32, gguf.GGUFValueType.FLOAT32
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)
    return {"llama.block_count": (cfg.num_hidden_layers, u32), "llama.embedding_length": (cfg.hidden_size, u32),
            "llama.feed_forward_length": (cfg.intermediate_size, u32),
            "llama.attention.head_count": (cfg.num_attention_heads, u32),
            "llama.attention.head_count_kv": (cfg.num_key_value_heads, u32),
            "llama.rope.dimension_count": (head_dim, u32), "llama.rope.freq_base": (float(rope), f32),
            "llama.context_length": (cfg.max_position_embeddings, u32),
            "llama.attention.layer_norm_rms_epsilon": (float(cfg.rms_norm_eps), f32)}


def write_gguf(model: torch.nn.Module, template: Path, dst: Path, weights: str) -> None:
    """A GGUF file of `model`'s weights (stored as `weights`) with the template file's tokenizer and metadata."""
    reader = gguf.GGUFReader(template)
    arch = reader.fields["general.architecture"].contents()
    if arch not in ARCHITECTURES:
        raise ExportUnsupported(f"the fast runtime builds {', '.join(ARCHITECTURES)} models; this one is '{arch}'")
    writer = gguf.GGUFWriter(dst, arch)
    derived = _architecture_fields(model.config)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in derived:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    for name, (value, kind) in derived.items():
        writer.add_key_value(name, value, kind)
    qtype = WEIGHTS[weights]
    for name, w in gguf_tensors(model).items():
        if w.ndim == 1:  # norms stay float32
            writer.add_tensor(name, w)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, w.astype(np.float16))
        else:
            q = gguf.quants.quantize(w, qtype)
            writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def template_gguf(key: str) -> Path:
    """The GGUF file whose metadata an export reuses: the model's own source file."""
    s = models.spec(key)
    if s.source not in ("package", "gguf"):
        raise ExportUnsupported(f"{s.display_name} has no GGUF file to take its tokenizer from")
    return models.source_path(key)


def fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the weights' values (a sample of each tensor): a merged adapter gets its own export."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        flat = t.detach().reshape(-1)
        h.update(name.encode())
        h.update(flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def export_dir(key: str, weights: str, tag: str = "") -> Path:
    """Where an export lives: beside the model's cache folder (whose manifest must not change)."""
    return models.cache_dir(key).parent / f"{key}.openvino-{weights}{('-' + tag) if tag else ''}"


def is_complete(folder: Path) -> bool:
    """The export finished and no file was cut short since (sizes match its manifest)."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        return all((folder / f).stat().st_size == n for f, n in manifest["files"].items())
    except (OSError, ValueError, KeyError):
        return False


def export(key: str, model: torch.nn.Module, weights: str = "q8_0", tag: str = "",
           progress=None) -> Path:
    """The IR folder of `model` (exported now if missing or cut short). progress(fraction, message)."""
    progress = progress or (lambda f, m: None)
    folder = export_dir(key, weights, tag)
    if is_complete(folder):
        return folder
    template = template_gguf(key)
    import openvino_genai  # optional dependency: without it the torch engine serves every model

    t0 = time.perf_counter()
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        progress(0.05, f"Writing {weights.upper()} weights for the fast runtime…")
        write_gguf(model, template, tmp / "model.gguf", weights)
        progress(0.5, "Building the OpenVINO graph…")
        openvino_genai.LLMPipeline(str(tmp / "model.gguf"), "CPU", enable_save_ov_model=True)
        (tmp / "model.gguf").unlink()
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        if not all(f in files for f in _FILES):
            raise ExportUnsupported(f"the OpenVINO export wrote no model ({sorted(files)})")
        (tmp / _MANIFEST).write_text(json.dumps({"files": files, "weights": weights, "key": key, "tag": tag,
                                                 "seconds": round(time.perf_counter() - t0, 1)}))
        shutil.rmtree(folder, ignore_errors=True)  # an export cut short is rebuilt
        tmp.rename(folder)
    except ExportUnsupported:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the converter leaves torch serving, with the reason
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportUnsupported(f"the OpenVINO export failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    progress(1.0, f"Exported for the fast runtime in {time.perf_counter() - t0:.0f} s")
    return folder
