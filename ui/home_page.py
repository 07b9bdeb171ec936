"""The home page: what LLM Lab is, the map of labs, this machine, the models, and a chat box."""
from __future__ import annotations

import streamlit as st

from labs import models
from labs.core import hardware, settings
from labs.core.errors import ConfigError
from labs.models import quality
from labs.serving import decode_gate
from labs.serving import endpoints as backends
from labs.serving import generation
from ui import prepare_panel
from ui.common import (cached_model, cached_target, display_name, friendly_errors, model_status_table,
                       models_file_problems, session_id, sidebar)


@st.cache_data(show_spinner="Measuring this machine…", ttl=3600)
def _hardware() -> dict:
    return hardware.describe()


def render(pages) -> None:
    session_id()
    st.title("🧪 LLM Lab")
    st.markdown(
        "Train, tune and evaluate real (small) language models, live, on this machine. Each lab turns one idea "
        "from the lecture into an experiment you run yourself: set the knobs, watch the curves move, compare "
        "before and after. Everything runs locally with models shipped as Python packages — no internet needed.")
    sidebar()

    st.subheader("The labs")
    if pages:
        cols = st.columns(2)
        for i, (path, title, icon, summary) in enumerate(pages):
            with cols[i % 2]:
                st.page_link(str(path), label=f"**{title}**", icon=icon or None)
                st.caption(summary)
    else:
        st.caption("No lab pages are installed yet.")

    left, right = st.columns(2)
    with left:
        st.subheader("This machine")
        with friendly_errors("Measuring the hardware"):
            hw = _hardware()
            c = st.columns(3)
            c[0].metric("Device", hw["device"], help=hw["name"])
            c[1].metric("Threads", hw["threads"])
            c[2].metric("dtype", hw["dtype"])
            c = st.columns(2)
            c[0].metric("Matmul", f"{hw['matmul_gflops']:.0f} GFLOP/s",
                        help="Measured now: best of 5 1024×1024 matrix multiplications. Bounds training speed.")
            c[1].metric("Memory bandwidth", f"{hw['bandwidth_gbs']:.1f} GB/s",
                        help="Measured now: copying a 256 MB tensor. Bounds decoding speed: every new token "
                             "reads all the weights once.")
            st.caption(f"this machine · torch {hw['torch']} · override with LLMLAB_DEVICE / LLMLAB_DTYPE")
    with right:
        st.subheader("Models")
        st.dataframe(model_status_table(), hide_index=True, width="stretch")
        models_file_problems()
        _downloads()
        _decoding()
    prepare_panel.panel()
    _add_model()

    st.subheader("Try a model")
    if settings.tiny_models():
        st.caption("LLMLAB_TINY_MODELS is on: the models are tiny and randomly initialised (for tests), so answers are noise.")
    _chat()


def _decoding() -> None:
    """The decode variant generation uses, and its quality next to float32 (measured, never typed)."""
    key = st.session_state.get("home_model", models.DEFAULT_CHAT_MODEL)
    try:
        if models.spec(key).is_endpoint:
            st.caption("**Decoding** happens on the endpoint's server.")
            return
    except models.ModelError:
        return
    lm = _loaded(key)
    if lm is None:
        st.caption("Decoding: the model is loaded on first use.")
        return
    gate = decode_gate.decode_gate(lm) if lm.decode != "float32" else None  # float32 is the reference: no file to read
    ratio = gate["ppl_ratio"] if gate and gate.get("variant") == lm.decode else 1.0
    quality_note = ("the reference the fast paths are measured against" if lm.decode == "float32" else
                    f"perplexity ×{ratio:.3f} of float32, measured (gate: ≤ ×{quality.GATE:.2f})")
    if lm.runtime is not None and lm.runtime.alive:
        st.caption(f"**Runtime** {lm.runtime_note} · every chat, battle and answer on this model shares one "
                   "continuous-batching decoder; adapters and scoring use the torch engine.")
    else:
        failure = f" (the fast runtime stopped: {lm.runtime.failure})" if lm.runtime is not None else ""
        st.caption(f"**Runtime** {lm.runtime_note}{failure} · **Decoding** `{lm.decode}` · {quality_note} · every "
                   "chat, battle and answer on this model shares one batched decoder.")
    if st.button("Measure the fast paths", key="home_measure_variants",
                 help="Perplexity on standard-library docstrings and greedy agreement with float32 for each decode "
                      "variant of this model (about a minute on 2 cores). A variant may be the default only within +2 %."):
        with st.spinner("Scoring each decode variant…"), friendly_errors("Measuring"):
            st.session_state["home_variant_rows"] = [
                vars(r) for r in decode_gate.score_variants(lm, models.DECODE_VARIANTS, max_tokens=512)]
    if st.session_state.get("home_variant_rows"):
        st.dataframe(st.session_state["home_variant_rows"], hide_index=True, width="stretch")


def _loaded(key: str):
    """The shared model if it is loaded already (the Home page does not load one just to show a caption)."""
    if (settings.tiny_models() and not models.spec(key).is_user) or models.cache_state(key) == "ready":
        with friendly_errors("Loading the model"):
            return cached_model(key)
    return None


def _chat() -> None:
    st.session_state.setdefault("home_messages", [])
    chat_models = models.generators()
    if st.session_state.get("home_model") not in [m.key for m in chat_models]:
        st.session_state.pop("home_model", None)  # an entry removed from the models file
    c = st.columns(5)
    key = c[0].selectbox("Model", [m.key for m in chat_models], key="home_model", format_func=display_name,
                         help="SmolLM2 is instruction-tuned (chat). Gemma-3-270M is a base model: it continues text. "
                              "Models from your models file (and endpoints) are listed after them.")
    temperature = c[1].slider("Temperature", 0.0, 1.5, 0.7, 0.05, key="home_temperature",
                              help="0 always picks the most likely token; higher is more varied (and more wrong).")
    top_p = c[2].slider("Top-p", 0.1, 1.0, 0.9, 0.05, key="home_top_p",
                        help="Sample only from the smallest set of tokens holding this much probability.")
    top = settings.new_tokens_slider_max(512)
    max_tokens = c[3].slider("Max tokens", 16, top, min(128, top), 16, key="home_max_tokens",
                             help="Longest answer. About 15–30 tokens per second on a 2-core laptop.")
    seed = c[4].number_input("Seed", 0, 2**31 - 1, 0, key="home_seed",
                             help="Same seed and prompt give the same answer.")
    if st.button("Clear chat", key="home_clear"):
        st.session_state["home_messages"] = []
    for m in st.session_state["home_messages"]:
        st.chat_message(m["role"]).write(m["content"])
    prompt = st.chat_input("Ask the model something…", key="home_chat_input")
    if prompt is None:
        return
    if not prompt.strip():
        st.warning("The message is empty: type a question first.")
        return
    history = st.session_state["home_messages"] + [{"role": "user", "content": prompt}]
    st.chat_message("user").write(prompt)
    with st.chat_message("assistant"):
        with friendly_errors("Generating"):
            config = generation.GenerationConfig(max_new_tokens=int(max_tokens), temperature=float(temperature),
                                                  top_p=float(top_p), seed=int(seed))
            target = (cached_target(key) if models.spec(key).is_endpoint
                      else backends.default_endpoint(key) or cached_model(key))
            waiting = st.empty()

            def on_wait(position: int) -> None:
                waiting.caption(f"⏳ The model is serving a full class: you are number {position} in the queue.")

            answer = st.write_stream(backends.stream(target, history, config, on_wait=on_wait))
            waiting.empty()
            if not isinstance(answer, str):
                answer = "".join(map(str, answer))
            st.session_state["home_messages"] = history + [{"role": "assistant", "content": answer}]


def _downloads() -> None:
    """Hub entries are downloaded only here, when asked (and only when the machine is online)."""
    pending = [s for s in models.all_specs().values() if s.source == "hub" and models.cache_state(s.key) != "ready"]
    for s in pending:
        if st.button(f"Download {s.display_name} ({s.location})", key=f"home_download_{s.key}",
                     help="One download from the Hugging Face hub into LLMLAB_HOME/hub; needs HF_HUB_OFFLINE=0."):
            bar = st.progress(0.0, text=f"Downloading {s.location}…")
            with friendly_errors("Downloading"):
                models.download(s.key, lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
                st.success(f"{s.display_name} is downloaded: every picker can use it now.")


SOURCES = {"path": "A Hugging Face folder on this machine", "gguf": "A GGUF file", "hub_id": "A Hugging Face hub id",
           "base_url": "An OpenAI-compatible server (vLLM, Ollama, llama.cpp, labs.serving.serve)"}


def _add_model() -> None:
    """Validate an entry (config, parameters, memory; or the server's model list) and write it to the models file."""
    with st.expander("➕ Add a model", expanded=False):
        st.caption(f"Writes a [[model]] table to {models.models_file()} (LLMLAB_MODELS_FILE). Every page re-reads "
                   "the file: no restart needed.")
        with st.form("home_add_form"):
            c = st.columns(2)
            name = c[0].text_input("Name", key="home_add_name", help="Shown in every model picker.")
            source = c[1].selectbox("Where it is", list(SOURCES), format_func=SOURCES.get, key="home_add_source",
                                    help="A folder needs config.json, *.safetensors and the tokenizer files.")
            location = st.text_input("Folder, file, hub id or base URL", key="home_add_location",
                                     placeholder="/data/smollm2-360m  ·  HuggingFaceTB/SmolLM2-360M-Instruct  ·  "
                                                 "http://gpu-box:8000/v1",
                                     help="What the chosen source needs: a path, a hub id (owner/name) or the server's "
                                          "/v1 address.")
            c = st.columns(4)
            served = c[0].text_input("Served model name (servers only)", key="home_add_model",
                                     help="The name the server knows the model by, e.g. Qwen2.5-7B-Instruct.")
            key_env = c[1].text_input("API key variable (servers only)", key="home_add_key_env",
                                      help="Name of an environment variable holding the key; the key itself is never "
                                           "written to the file.")
            kind = c[2].selectbox("Kind", ["causal", "embedding"], key="home_add_kind",
                                  help="causal writes text; embedding turns text into vectors (RAG retrieval).")
            prompt_format = c[3].selectbox("Prompt format", ["chat", "plain"], key="home_add_format",
                                           help="chat: the tokenizer's chat template (instruct models). plain: a base "
                                                "model continues the text.")
            save = st.form_submit_button("Check and add", type="primary")
        if not save:
            return
        entry = {"name": name.strip(), source: location.strip(), "kind": kind, "prompt_format": prompt_format}
        if source == "base_url":
            entry.update(model=served.strip(), api_key_env=key_env.strip())
        with friendly_errors("Adding the model"):
            s = models.entry_spec(entry, "new entry")
            if s.key in models.all_specs():
                raise ConfigError(f"A model called {s.display_name!r} exists already; pick another name.")
            if s.is_endpoint:
                served_models = backends.probe(s)
                st.success(f"{s.location} answers and serves {', '.join(served_models) or s.endpoint_model}.")
            elif s.source == "hub" and models.cache_state(s.key) != "ready":
                st.info("A hub model is checked when it is downloaded (Models → Download, online only).")
            else:
                check = models.check_memory(s, "inference")
                if not check.fits:
                    raise ConfigError(f"Not added. {check.text()}")
                st.success(f"Config read: {models.params_text(check.params)} parameters. {check.text()}")
            models.add_to_models_file(entry)
            st.success(f"Added {s.display_name}: it is in every picker where it fits.")

