"""Start the app: `python run_app.py [streamlit options]` (what `make run` does).

Streamlit treats a folder named pages/ next to the entry script as an old-style multipage app until app.py has
called st.navigation once. Until then, a deep link such as /Arena (the arena's join link) would run the page
without app.py: no home page, a different sidebar. We use st.navigation only, so switch that old mode off before
the server starts.
"""
import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

PagesManager.uses_pages_directory = False

if __name__ == "__main__":
    sys.argv = ["streamlit", "run", str(Path(__file__).with_name("app.py")), *sys.argv[1:]]
    sys.exit(cli.main())
