"""The Model vs system evals tab of the evaluation page: what model evals and system evals each measure, and links to
the arena, RAG and preference pages where they are installed."""
from __future__ import annotations

import streamlit as st

from labs.data import ASSETS


def model_vs_system() -> None:
    """Model evals vs system evals, with pointers to the pages that do the system-level ones."""
    st.markdown(
        "**Model evals** score the model alone on fixed inputs: the benchmark and Q&A tabs here. **System evals** "
        "score the whole application — prompt, retrieval, tools, guardrails — on the task users bring.\n\n"
        "- **Human preference** (system-level, crowd-sourced): the *Arena* page lets people vote between two "
        "anonymous answers and turns the votes into Elo ratings, like LMSYS Chatbot Arena (Chiang et al. 2024).\n"
        "- **RAG triad** (system-level): the *RAG* page scores context relevance, groundedness and answer "
        "relevance — a good model can still fail if retrieval brings the wrong passages.\n"
        "- **Leaderboards saturate**: when every model scores near the top of a benchmark it stops separating "
        "them, and the Open LLM Leaderboard (Hugging Face) moved to harder tasks in 2024 for that reason and for "
        "contamination; see the Contamination tab.\n"
        "- Pick a benchmark that matches the task (HellaSwag for common-sense completion, MMLU for knowledge, "
        "GSM8K for arithmetic word problems, TruthfulQA for resisting popular misconceptions) and add your own "
        "prompt/answer pairs: they are the closest thing to your users.")


def related_labs() -> None:
    """Links to the arena, RAG and preference pages, where installed."""
    links = []
    for pattern in ("60_*.py", "50_*.py", "30_*.py"):  # arena, RAG, DPO (preference data), where installed
        for path in sorted((ASSETS.parent / "pages").glob(pattern)):
            stem = path.stem.split("_", 1)[1]
            links.append(f"[{stem.replace('_', ' ')}](/{stem})")
    if links:
        st.markdown("Related labs: " + " · ".join(links))


def tab() -> None:
    """The system tab: model vs system evaluation and the related labs."""
    model_vs_system()
    related_labs()
