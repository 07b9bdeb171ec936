"""Streamlit glue shared by app.py and every page: sidebar, cached models, run viewer, error boundary.

Pages import from here and from labs; labs never imports this (pages -> labs, one way).
"""
from ui.common import (  # noqa: F401
    adapter_export,
    cached_embedder,
    cached_model,
    cached_target,
    display_name,
    generator_picker,
    friendly_errors,
    how_it_works,
    init_state,
    model_picker,
    model_status_table,
    models_file_problems,
    page_header,
    session_id,
    sidebar,
)
from ui.runs import last_time, run_panel  # noqa: F401
