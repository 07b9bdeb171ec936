"""Shared page machinery. Keep logic in labs/; this file only draws and wires widgets."""
from __future__ import annotations

import contextlib
import inspect
import logging
import uuid
from pathlib import Path
from typing import Callable

import streamlit as st

from labs import models
from labs.core import settings
from labs.core.errors import LabError
from labs.models import adapters
from labs.runs import jobs
from labs.serving import endpoints as backends
from labs.serving.runtimes import gate as runtime_gate


log = logging.getLogger(__name__)


def session_id() -> str:
    """A pseudonymous id per browser session (owner of runs, voter id in the arena)."""
    if "llmlab_session" not in st.session_state:
        st.session_state["llmlab_session"] = uuid.uuid4().hex[:12]
    return st.session_state["llmlab_session"]


def init_state(prefix: str, **defaults) -> None:
    """Idempotent session-state defaults: init_state('sft', run_id=None) sets st.session_state['sft_run_id']."""
    for key, value in defaults.items():
        st.session_state.setdefault(f"{prefix}_{key}", value)


def page_header(title: str, idea: str, icon: str = "") -> None:
    """Title and the one-paragraph lecture idea every page starts with."""
    st.title(f"{icon} {title}".strip())
    st.markdown(idea)
    sidebar()


@contextlib.contextmanager
def friendly_errors(what: str = "That"):
    """Turn an exception into a readable st.error instead of a traceback; the page keeps working.

    A LabError is a problem the user can fix: its message is shown as it is. Anything else is a bug: the page says
    so in one line (never a bare key or a traceback) and the log keeps the traceback."""
    try:
        yield
    except LabError as exc:
        st.error(f"{what} did not work: {exc}")
    except Exception as exc:  # noqa: BLE001 - students never see a traceback
        log.exception("%s failed", what)
        detail = "" if isinstance(exc, KeyError) or not str(exc) else f": {exc}"
        st.error(f"{what} failed unexpectedly ({type(exc).__name__}{detail}). The app is still running; "
                 "try different settings.")


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_model_cached(key: str, location: str = "") -> models.LoadedModel:
    # `location` is part of the cache key: a models-file entry pointed at another folder loads afresh.
    bar = st.progress(0.0, text=f"Preparing {models.spec(key).display_name}…")

    def progress(fraction: float, message: str) -> None:
        try:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)
        except Exception:  # noqa: BLE001 - the element may be gone after a rerun
            pass

    lm = models.load_model(key, progress=progress)
    runtime_gate.serve(lm, progress)  # the fast runtime under the engine (its one-time export shows on this bar)
    bar.empty()
    return lm


def cached_model(key: str = models.DEFAULT_CHAT_MODEL) -> models.LoadedModel:
    """The shared, read-only model (converted once, then loaded from the cache). Train on copies/adapters only."""
    lm = _load_model_cached(key, models.spec(key).location)
    if lm.note and not st.session_state.get(f"_note_shown_{key}"):
        st.info(lm.note)
        st.session_state[f"_note_shown_{key}"] = True
    return lm


def cached_target(key: str) -> backends.Target:
    """What writes answers for `key`: the shared local model, or an Endpoint for a models-file server."""
    return backends.target_for(key, cached_model)


def _endpoint_note(why: str) -> None:
    endpoints = [s.display_name for s in models.generators() if s.is_endpoint]
    if endpoints:
        st.caption(f"Not listed: {', '.join(endpoints)} (endpoints). {why}")


def model_picker(prefix: str, help: str, training: bool = False) -> models.LoadedModel:
    """A 'Model' selectbox (key <prefix>_model) over the local generative models (packaged + models file), and
    the shared model it names. training=True: endpoints are explained away and a models-file model that will not
    fit (a private copy next to the shared one) is refused with the numbers. Stops the page (after a readable
    error) if the model cannot be loaded. lm.key is the chosen registry key."""
    options = [s.key for s in models.causal_models()]
    if st.session_state.get(f"{prefix}_model") not in options:
        st.session_state.pop(f"{prefix}_model", None)  # an entry removed from the models file
    key = st.selectbox("Model", options, key=f"{prefix}_model", format_func=display_name, help=help)
    if training:
        _endpoint_note("Training changes the weights, and a server only sends back text: only models whose "
                       "weights are on this machine can be trained.")
    with friendly_errors("Loading the model"):
        if training and models.spec(key).is_user:
            models.require_memory(key, "lora")
        return cached_model(key)
    st.stop()


def display_name(key: str) -> str:
    try:
        s = models.spec(key)
    except models.ModelError:
        return key
    return s.display_name + (" · endpoint" if s.is_endpoint else "")


def generator_picker(label: str, key: str, help: str, default: str | None = None, container=None) -> str:
    """A selectbox over everything that writes answers: local models and endpoints. Returns the registry key;
    load it with cached_target (inside friendly_errors)."""
    options = [s.key for s in models.generators()]
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    index = options.index(default) if default in options else 0
    return (container or st).selectbox(label, options, index=index, key=key, format_func=display_name, help=help)


@st.cache_resource(show_spinner="Loading the embedding model…", max_entries=2)
def _embedder_cached(key: str, location: str):
    return models.load_embedder(key=key)


def cached_embedder(key: str = models.EMBEDDING_MODEL):
    return _embedder_cached(key, models.spec(key).location)


def models_file_problems() -> None:
    """The models file's problems, one message per bad entry (every other model keeps working)."""
    found = models.user_models()
    for message in found.errors:
        st.warning(message, icon="⚠️")


def _params(s: models.ModelSpec) -> str:
    if s.params:
        return s.params
    if s.is_endpoint:
        return "on the server"
    try:
        return models.params_text(models.count_parameters(s.key))
    except Exception:  # noqa: BLE001 - the table must draw even when one entry is broken
        return "?"


def model_status_table() -> list[dict]:
    rows = []
    for s in models.all_specs().values():
        state = models.cache_state(s.key) if models.installed(s.key) else "not installed"
        rows.append({"model": s.display_name, "params": _params(s), "kind": s.kind, "prompt format": s.prompt_format,
                     "source": "package" if not s.is_user else f"{s.source}: {s.location}",
                     "state": {"ready": "ready", "missing": "not converted yet (first use converts, ~20 s)",
                               "corrupt": "cache incomplete (will be rebuilt)", "endpoint": "served by the endpoint",
                               "not downloaded": "not downloaded yet (Download below)",
                               "folder missing": "folder or config.json missing"}.get(
                                   state, f"{state}: {s.install}"),
                     "licence": s.licence})
    return rows


def sidebar() -> None:
    """Device and dtype in use, and the app-wide job queue with Stop for your own runs."""
    me = session_id()
    with st.sidebar:
        try:
            info = settings.device_info()
            st.caption(f"**Device** {info.name} · `{info.device}` · {info.dtype_name}"
                       + (" (set by LLMLAB_DEVICE)" if info.source != "auto" else ""))
        except RuntimeError as exc:
            st.error(str(exc))
        problems = models.user_models().errors
        if problems:
            with st.expander(f"⚠️ Models file: {len(problems)} problem(s)", expanded=False):
                for message in problems:
                    st.caption(message)
        _job_queue(me)


@st.fragment(run_every=2.0)
def _job_queue(me: str) -> None:
    runs = jobs.active()
    st.caption(f"**Job queue** · {len(runs)} active" if runs else "**Job queue** · idle")
    for run in runs:
        where = "running" if run.status == jobs.RUNNING else f"waiting #{run.position}"
        progress = f"{run.step}/{run.total_steps}" if run.total_steps else f"step {run.step}"
        cols = st.columns([3, 1])
        cols[0].caption(f"{run.label} · {where} · {progress}" + (" · yours" if run.owner == me else ""))
        if run.owner == me and cols[1].button("Stop", key=f"sidebar_stop_{run.id}"):
            st.toast(jobs.stop(run.id, owner=me))


def adapter_export(adapter_dir, run_id: str, key: str) -> None:
    """Download button for a saved adapter, and where else it shows up (Arena, Evaluation)."""
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.exists():
        return
    st.download_button("Download the adapter (safetensors + config)", adapters.zip_adapter(adapter_dir),
                       file_name=f"{run_id}-adapter.zip", key=key)
    label = next((a.label for a in adapters.list_adapters() if Path(a.path) == adapter_dir), None)
    if label:
        st.caption(f"Registered as **{label}**: the Arena and Evaluation pages list it.")


def how_it_works(markdown: str, *functions: Callable, paper: str = "") -> None:
    """The 'How it works' section: the equation, the real labs source of the functions, the paper."""
    with st.expander("How it works", expanded=False):
        st.markdown(markdown)
        for fn in functions:
            st.code(inspect.getsource(fn), language="python")
        if paper:
            st.caption(paper)
