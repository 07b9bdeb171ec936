"""LLM Lab engine: plain Python + torch. Never imports streamlit (pages -> labs, one way)."""
