"""The home page: what LLM Lab is, the map of labs, this machine, the models, and a chat box."""
from __future__ import annotations

import streamlit as st

from labs import generation, hardware, models, settings
from ui.common import cached_model, friendly_errors, model_status_table, session_id, sidebar


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
        _decoding()

    st.subheader("Try a model")
    if settings.tiny_models():
        st.caption("LLMLAB_TINY_MODELS is on: the models are tiny and randomly initialised (for tests), so answers are noise.")
    _chat()


def _decoding() -> None:
    """The decode variant generation uses, and its quality next to float32 (measured, never typed)."""
    from labs import quality

    key = st.session_state.get("home_model", models.DEFAULT_CHAT_MODEL)
    lm = _loaded(key)
    if lm is None:
        st.caption("Decoding: the model is loaded on first use.")
        return
    gate = models.decode_gate(lm)
    ratio = gate["ppl_ratio"] if gate and gate.get("variant") == lm.decode else 1.0
    st.caption(f"**Decoding** `{lm.decode}` · perplexity ×{ratio:.3f} of float32 (gate: ≤ ×{quality.GATE:.2f}) · "
               f"every chat, battle and answer on this model shares one batched decoder.")
    if st.button("Measure the fast paths", key="home_measure_variants",
                 help="Perplexity on standard-library docstrings and greedy agreement with float32 for each decode "
                      "variant of this model (about a minute on 2 cores). A variant may be the default only within +2 %."):
        with st.spinner("Scoring each decode variant…"), friendly_errors("Measuring"):
            st.session_state["home_variant_rows"] = [
                vars(r) for r in quality.score_variants(lm, models.DECODE_VARIANTS, max_tokens=512)]
    if st.session_state.get("home_variant_rows"):
        st.dataframe(st.session_state["home_variant_rows"], hide_index=True, width="stretch")


def _loaded(key: str):
    """The shared model if it is loaded already (the Home page does not load one just to show a caption)."""
    if settings.tiny_models() or models.cache_state(key) == "ready":
        with friendly_errors("Loading the model"):
            return cached_model(key)
    return None


def _chat() -> None:
    st.session_state.setdefault("home_messages", [])
    chat_models = models.causal_models()
    c = st.columns(5)
    key = c[0].selectbox("Model", [m.key for m in chat_models], key="home_model",
                         format_func=lambda k: models.spec(k).display_name,
                         help="SmolLM2 is instruction-tuned (chat). Gemma-3-270M is a base model: it continues text.")
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
            if settings.openai_base_url():
                backend = generation.OpenAIBackend(model=key)
            else:
                backend = generation.LocalBackend(cached_model(key))
            waiting = st.empty()

            def on_wait(position: int) -> None:
                waiting.caption(f"⏳ The model is serving a full class: you are number {position} in the queue.")

            pieces = (backend.stream_chat(history, config, on_wait=on_wait) if isinstance(backend, generation.LocalBackend)
                      else backend.stream_chat(history, config))
            answer = st.write_stream(pieces)
            waiting.empty()
            if not isinstance(answer, str):
                answer = "".join(map(str, answer))
            st.session_state["home_messages"] = history + [{"role": "assistant", "content": answer}]
