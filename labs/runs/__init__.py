"""Background runs: queue, progress, Stop, persistence, and what a finished run means.

    jobs     the bounded worker pool, run contexts, metrics, the run store under LLMLAB_HOME/runs
    results  a finished run's typed result through the reader its lab registered
    lessons  each lecture claim, its criterion, and the verdict computed from a run's figures
"""
