"""Drawing helpers for the data-mixtures page: the mixture editor, its result table, the next-token grid, the weight
sliders and a finished run's per-domain table. The arithmetic lives in labs.mixtures."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

import ui

from labs.core import charts
from labs.data import corpora
from labs.mixtures import calculator
from labs.mixtures import charts as mixture_charts
from labs.mixtures import comparison, filtering, pretrain
from labs.runs import jobs, results
from ui.lessons import claim_box, pending, run_claim


def _num(value) -> float:
    return float("nan") if value is None or pd.isna(value) else float(value)


def sources_from_editor(edited: pd.DataFrame) -> list[calculator.Source]:
    """The editor's rows as Sources; blank rows the editor adds are skipped, blank numbers become NaN (and are
    refused with a message by calculator.mixture_table)."""
    sources = []
    for _, r in edited.iterrows():
        if pd.isna(r["source"]) and pd.isna(r["size (B tokens)"]) and pd.isna(r["weight (%)"]):
            continue
        pub = r.get("published epochs")
        sources.append(calculator.Source(str(r["source"]) if not pd.isna(r["source"]) else "unnamed",
                                         _num(r["size (B tokens)"]), _num(r["weight (%)"]),
                                         None if pub is None or pd.isna(pub) else float(pub)))
    return sources


def mixture_editor(preset: calculator.Preset, pkey: str) -> pd.DataFrame:
    """An editable table of the preset's sources (a fresh editor per preset)."""
    table = pd.DataFrame([{"source": s.name, "size (B tokens)": s.tokens_b, "weight (%)": s.weight,
                           "published epochs": s.published_epochs, "disk": s.disk} for s in preset.sources])
    return st.data_editor(
        table, num_rows="dynamic", width="stretch", key=f"mix_table_{pkey}",
        column_config={
            "size (B tokens)": st.column_config.NumberColumn(help="Tokens the source holds, in billions.",
                                                             format="%.1f"),
            "weight (%)": st.column_config.NumberColumn(help="Sampling weight; renormalised if it does not sum "
                                                             "to 100."),
            "published epochs": st.column_config.NumberColumn(help="As printed in the paper.", disabled=True),
            "disk": st.column_config.TextColumn(disabled=True),
        })


def mixture_rows(rows: list[dict], threshold: float, note: str | None) -> None:
    """The computed table, three totals, the published-vs-computed note and the two charts.
    note: the preset's note (None when the table was edited into a custom mixture)."""
    differ = [r["source"] for r in rows if calculator.epochs_differ(r)]
    out = pd.DataFrame([{
        "source": r["source"], "size (B)": r["size (B tokens)"], "weight": f"{100 * r['weight']:.1f}%",
        "share of data": f"{100 * r['share of data']:.1f}%", "tokens drawn (B)": round(r["tokens drawn (B)"], 1),
        "epochs": round(r["epochs"], 2), "published": r["published epochs"],
        "implied weight": None if r["implied weight"] is None else f"{100 * r['implied weight']:.1f}%",
        "": ("⚠ repeated " if r["repeated"] else "") + ("≠ published" if r["source"] in differ else ""),
    } for r in rows])
    st.dataframe(out, hide_index=True, width="stretch", key="mix_result_table")
    m1, m2, m3 = st.columns(3)
    m1.metric("Tokens drawn", f"{sum(r['tokens drawn (B)'] for r in rows):,.0f}B")
    m2.metric("Unique tokens available", f"{sum(r['size (B tokens)'] for r in rows):,.0f}B")
    m3.metric("Repeated sources", sum(r["repeated"] for r in rows))
    if differ:
        st.info(f"Computed epochs differ from the published ones for **{', '.join(differ)}**. "
                + (note if note is not None else "You edited the table: the published column belongs to the "
                   "original rows."))
    elif note:
        st.caption(note)
    g1, g2 = st.columns(2)
    g1.plotly_chart(mixture_charts.shares_chart(rows), key="mix_shares_chart")
    g2.plotly_chart(mixture_charts.epochs_chart(rows, threshold), key="mix_epochs_chart")


def next_token_grid(nrows: list[dict]) -> None:
    """Inputs, labels (= next inputs), loss and the model's guess per position; mean loss, perplexity, a bar chart."""
    grid = pd.DataFrame({f"t={r['position']}": [r["input"], r["label"], f"{r['loss']:.2f}", f"{r['p(label)']:.3f}",
                                                 r["model's top guess"]] for r in nrows},
                        index=["input", "label (= next input)", "loss", "p(label)", "model's top guess"])
    st.dataframe(grid, width="stretch", key="mix_next_grid")
    mean = sum(r["loss"] for r in nrows) / len(nrows)
    k1, k2, k3 = st.columns(3)
    k1.metric("Tokens scored", len(nrows))
    k2.metric("Mean loss (nats)", f"{mean:.2f}", help="What training minimises: the average over positions.")
    k3.metric("Perplexity", f"{math.exp(mean):.1f}", help="exp(mean loss): the effective number of "
              "equally likely choices per token.")
    st.plotly_chart(charts.bars([f"{r['position']}:{r['label']}" for r in nrows], [r["loss"] for r in nrows],
                                title="Loss at each position (−ln p(label))", y="nats"), key="mix_next_chart")


def uploaded_domains(uploaded) -> dict[str, list[str]]:
    """Each uploaded file as a domain (name -> documents); a file that cannot be read is named in an error."""
    current = {}
    for f in uploaded or []:
        name = corpora.domain_slug(f.name)
        if name in corpora.BUILTIN_DOMAINS:
            name = f"{name}_upload"
        try:
            current[name] = _parse_upload(f.name, f.getvalue())
        except ValueError as exc:
            st.error(str(exc))
    return current


@st.cache_data(max_entries=8, show_spinner="Reading the upload…")
def _parse_upload(name: str, data: bytes) -> list[str]:
    """An upload's documents, parsed once per file content (not on every rerun; files go up to 20 MB)."""
    return corpora.parse_upload(name, data)


def weight_sliders(domains: list[str], defaults: dict[str, int], uploads: dict[str, list]) -> list[int]:
    """One 0-100 slider per domain (key mix_w_<domain>) and the normalised shares under them."""
    st.markdown("**Mixture weights** (relative; they are normalised to 100%)")
    wcols = st.columns(min(len(domains), 4))
    raw = [wcols[i % len(wcols)].slider(d, 0, 100, defaults.get(d, 25), key=f"mix_w_{d}",
                                        help=corpora.DOMAIN_HELP.get(d, f"Your upload: {len(uploads.get(d, []))} "
                                                                        "documents."))
           for i, d in enumerate(domains)]
    if sum(raw) > 0:
        shares, msg = calculator.normalise_weights(raw)
        st.caption("Shares of the training batches: " + " · ".join(f"{d} {100 * s:.0f}%" for d, s in
                                                                    zip(domains, shares))
                   + ("  (normalised: the sliders add up to " + f"{sum(raw)})" if msg else ""))
    else:
        st.warning("All weights are zero: give at least one domain a positive weight.")
    return raw


def final_losses(result: results.MixtureResult, run_id: str) -> None:
    """A finished run's per-domain losses in bits per byte, and its text samples by step and domain."""
    final = [{"domain": f["domain"], "validation (bits/byte)": round(pretrain.bits(f["validation"]), 3),
              "train windows (bits/byte)": round(pretrain.bits(f["train windows"]), 3),
              "epochs": round(f["epochs"], 2)} for f in result.final]
    st.markdown("**Final per-domain loss** (bits per byte: 8 = random bytes, gzip gets ~2-3 on text)")
    st.dataframe(pd.DataFrame(final), hide_index=True, key=f"mix_final_{run_id}")
    if result.samples:
        st.markdown("**Samples** (the first bytes are a prompt from that domain's held-out text)")
        grid = pd.DataFrame(result.samples).pivot(index="step", columns="domain", values="text")
        st.dataframe(grid, key=f"mix_samples_{run_id}")


def run_label(r) -> str:
    """A mixture run in one line: id tail, domain shares, filter / repeat flags, status."""
    ws = r.config.get("weights", [])
    total = sum(ws) or 1
    mix = "/".join(f"{d[:5]} {100 * w / total:.0f}" for d, w in zip(r.config.get("domains", []), ws))
    flags = (" filtered" if r.config.get("quality_filter") else "") + \
            (f" repeat {r.config['repeat_domain']}" if r.config.get("repeat_domain") else "")
    return f"{r.id[-6:]} · {mix}{flags} · {r.status}"


# -- quality beats quantity (claim M4) ------------------------------------------------------------------------------
QUALITY_CURVES = [("Loss on clean held-out text (nats/byte)", ["val_unfiltered", "val_filtered"]),
                  ("Training loss (own batches)", ["loss_unfiltered", "loss_filtered"])]


@st.cache_data(show_spinner="Filtering the web domain…")
def _web_filter_check() -> tuple[list[dict], dict]:
    return filtering.filter_vs_labels(list(corpora.web_pages()))


def builtin_filter_table(uploads: dict[str, list[str]]) -> None:
    """What the quality filter removes from each built-in domain and each upload, by reason."""
    rows = _builtin_filter_report() + _filter_report(tuple((n, tuple(d)) for n, d in uploads.items()))
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="mix_filter_table")
    st.caption("The standard library is already clean text, so expect a small effect there; the *web* domain is "
               "built noisy on purpose: see the *Quality vs quantity* tab.")


@st.cache_data(max_entries=8, show_spinner="Checking the uploads…")
def _filter_report(uploads: tuple[tuple[str, tuple[str, ...]], ...]) -> list[dict]:
    return filtering.filter_report({name: list(docs) for name, docs in uploads})


@st.cache_data(show_spinner="Checking the built-in domains…")
def _builtin_filter_report() -> list[dict]:
    return filtering.filter_report({d: corpora.builtin_documents(d) for d in corpora.BUILTIN_DOMAINS})


def noisy_domain_table() -> None:
    """The web domain's documents by kind (its labels) against what the filter removes, and the filter's precision
    and recall against those labels (training split, as in a run)."""
    rows, scores = _web_filter_check()
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="mix_q_kinds")
    c1, c2, c3 = st.columns(3)
    c1.metric("Noise share of the training bytes", f"{100 * scores['noise_bytes_share']:.0f}%",
              help="Boilerplate, near-duplicate and junk documents, by their labels.")
    c2.metric("Filter precision", f"{100 * scores['precision']:.1f}%",
              help="Of the documents the filter removes, the share that really is noise (by the labels).")
    c3.metric("Filter recall", f"{100 * scores['recall']:.1f}%",
              help="Of the noise documents, the share the filter removes.")


def quality_controls() -> dict:
    """Steps, model size and seed of the comparison, as QualityComparisonConfig keyword arguments."""
    default = comparison.QualityComparisonConfig()
    q1, q2, q3 = st.columns(3)
    steps = q1.number_input("Steps (each run)", 10, 5000, default.steps, step=50, key="mix_q_steps",
                            help="Both runs train this many steps, side by side (two models per step).")
    size = q2.selectbox("Model size", list(pretrain.SIZES), index=list(pretrain.SIZES).index(default.size),
                        key="mix_q_size", help="The same GPT for both runs.")
    seed = q3.number_input("Seed", 0, 10_000, default.seed, key="mix_q_seed",
                           help="Both runs start from the same weights and draw batches in the same order.")
    return dict(steps=int(steps), size=size, seed=int(seed))


def quality_outcome(run) -> None:
    """Under the finished comparison's curves: both clean-text losses and the claim box computed from them."""
    if pending("M4", run, ""):
        return
    result = results.load_result(run)
    if result is not None:
        m1, m2, m3 = st.columns(3)
        m1.metric("Clean-text loss, unfiltered", f"{pretrain.bits(result.val_unfiltered):.3f} bits/byte")
        m2.metric("Clean-text loss, filtered", f"{pretrain.bits(result.val_filtered):.3f} bits/byte",
                  delta=f"{pretrain.bits(result.val_filtered - result.val_unfiltered):+.3f}", delta_color="inverse")
        m3.metric("Steps each · time", f"{result.steps} · {result.seconds:.0f} s")
        st.caption("The training losses are not comparable: the unfiltered run's batches mix clean text with "
                   "boilerplate that is easy to predict and junk that is not. The clean held-out text scores both.")
    claim_box(comparison.quality_verdict(result),
              note="Equal steps = equal compute: the filtered run reads fewer distinct bytes, all of them clean.")


def live_run(run_id: str, domains: list[str]) -> None:
    """The training run's live panel: per-domain validation curves, the repeated domain's train vs validation, and
    when it ends the C3 verdict and the final losses."""
    run = jobs.get(run_id)
    run_domains = list(run.config.get("domains", domains)) if run else domains
    groups = [("Validation loss per domain (nats per byte)", [f"val_{d}" for d in run_domains]),
              ("Training loss (mixed batches)", ["loss"])]
    rep = run.config.get("repeat_domain") if run else ""
    if rep:
        groups.append((f"Repeated domain '{rep}': train vs validation", [f"train_{rep}", f"val_{rep}"]))
        groups.append(("Epochs per domain", [f"epochs_{d}" for d in run_domains]))

    def _results(r: jobs.Run) -> None:
        if r.active:
            return
        run_claim("C3", r, lambda r: pretrain.overfitting_verdict(r.metrics, r.config.get("repeat_domain", "")), "")
        result = results.load_result(r)
        if result is not None:
            final_losses(result, r.id)

    ui.run_panel(run_id, groups, prefix="mix", smoothing=0.0, extra=_results)
