"""Drawing helpers for the linear-vs-full attention page (pages/70_Linear_vs_full_attention.py), one module per tab;
the page imports the modules.

- mechanisms: the Mechanisms tab: each variant's equation, source and paper, the state table, recurrent = chunked.
- cost: the Cost on this machine tab: the live cost run's charts, slopes and the C10 box.
- memory: the Memory at long context tab: cache size vs context and the published Kimi Linear figures.
- tasks: the Synthetic tasks tab: task settings, the task, pairs-sweep and length-sweep views, the honest reading.
- inside: the Look inside tab: a stored run's trained model and what it does with one held-out sequence.

The operators, cost, memory and tasks live in labs/attention.
"""
