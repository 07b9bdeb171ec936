"""The Home page's "Ready for class?" panel: which demos are prepared (and when), which are stale and why, and a
"Prepare for class" button that starts `python -m ui.prepare` in the background (instructor-only once the arena
password is set)."""
from __future__ import annotations

import subprocess
import sys

import streamlit as st

from labs.core import settings
from ui import prepare
from ui.arena.shared import secret_password
from ui.common import friendly_errors


def _start() -> None:
    """Start a prepare in its own process (it survives this page; a second one joins the first)."""
    if prepare.running_pid():
        st.toast("A prepare is already going: its progress is below.")
        return
    log = open(settings.home() / "prepare.log", "w")
    subprocess.Popen([sys.executable, "-m", "ui.prepare"], cwd=prepare.ROOT, stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True)
    st.toast("Preparing every demo in the background: this takes a while on a laptop.")


def panel() -> None:
    """Readiness at a glance, refreshed while a prepare is going."""
    with st.expander("🔔 Ready for class? Prepared demos", expanded=bool(prepare.running_pid())):
        st.caption("`make prepare` (or the button) runs every page's default experiment ahead of class; pressing "
                   "that page's button then replays the stored result at once, and offers to run it live instead. "
                   "A prepared run made by another version of the code or another model file is stale: it runs "
                   "live again when pressed.")
        allowed = not secret_password() or st.session_state.get("arena_instructor")
        going = prepare.running_pid()
        if allowed:
            if st.button("Stop preparing" if going else "Prepare for class", key="home_prepare",
                         help="Stopping keeps every demo that finished." if going else
                         "Converts the models and runs every page's default experiment (minutes per page)."):
                with friendly_errors("Preparing"):
                    if going:
                        prepare.stop()
                    else:
                        _start()
                st.rerun()
        else:
            st.caption("Unlock the instructor controls (Arena page, Classroom tab) to prepare from here.")
        _table()


def _table() -> None:
    def draw() -> None:
        rows = prepare.readiness()
        ready = sum(r["state"] == "ready" for r in rows)
        st.caption(f"{ready} of {len(rows)} demos replay at once" + (" · preparing now…" if prepare.running_pid()
                                                                       else ""))
        st.dataframe(rows, hide_index=True, width="stretch")

    if prepare.running_pid():
        st.fragment(run_every=3.0)(draw)()
    else:
        draw()
