"""LLM Lab engine: plain Python + torch. Never imports streamlit (pages -> labs, one way).

Shape legend, one meaning per letter in every module (shape comments read `# [B, T, M]` or `# (B, T, V)`):

    B  batch: sequences processed together
    T  time: sequence length, or position along it
    H  heads
    D  head width in ordinary multi-head attention (M = H·D)
    K  key / query width per head in the attention lab's operators (their state S is [K, V])
    V  value width per head in those operators; vocabulary size for logits ([B, T, V]); where a tensor could
       mean either, the comment says `vocab`
    M  model width: d_model, n_embd, hidden_size (the residual stream); an embedding vector's width
    E  features of a kernel feature map (power attention: E = C(K+p−1, p), the number of degree-p multisets)
    C  chunk length in chunked attention (T is cut into N chunks of C)
    N  a count of items that is not the batch: chunks, answer choices, examples, documents
    L  layers
    P  players: the models on a leaderboard (arena)
    W  sliding-window length
    S  (not a size) the recurrent state matrix, as in the papers

Sizes in docstrings are in the unit named (tokens, bytes, numbers, seconds); times are wall-clock seconds.
"""
import os as _os


# Nothing in this app may talk to a model hub: set before any labs module imports transformers, chromadb or torch.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma's telemetry
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
