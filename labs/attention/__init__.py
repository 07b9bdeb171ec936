"""Linear vs full attention: the mechanisms, their cost, their memory, and what a fixed-size state can recall.

    softmax.py  causal softmax and sliding-window attention (parallel, KV-cache and blocked forms)
    linear.py   linear attention (elu+1) and power attention (symmetric power embedding)
    delta.py    DeltaNet, Gated DeltaNet and KDA: one delta-rule recurrence, recurrent and chunked forms
    mixers.py   one nn.Module interface over all of them (swap by MixerConfig.name)
    tasks.py    synthetic tasks: MQAR, state tracking (parity, permutations), copy / palindrome
    model.py    a tiny language model with a swappable mixer, trained live through labs.runs.jobs
    sweep.py    size sweeps: accuracy against MQAR pairs, palindrome length and parity length per mixer
    cost.py     wall time and peak memory vs sequence length; log-log slopes and the crossover
    memory.py   KV cache vs recurrent state for real configurations (Llama-like, Kimi Linear's 3:1 hybrid)
    probe.py    look inside: attention maps, state norms, how much of an early key is still retrievable
    figures.py  the charts of the cost, memory and task runs
    runs.py     stored runs read back: a task run's config, one table row per finished run

Shapes follow the legend in `labs` (B batch, T time, H heads, K key dim, V value dim, M model width = H·K,
E feature-map width, C chunk length, N chunks).
"""
from labs.attention.mixers import LINEAR_FAMILY, VARIANTS, MixerConfig, build_mixer, state_numbers  # noqa: F401
