"""Background runs: queue, progress, Stop, persistence, and what a finished run means.

    jobs        the bounded worker pool, run contexts, metrics, the run store under LLMLAB_HOME/runs
    shared      the same queue in the database (LLMLAB_DB_URL) for every replica and worker: rows, Stop, heartbeats
    worker      a worker of that queue: claims with SKIP LOCKED, beats, records each end once (`python -m labs.worker`)
    provenance  what a stored run was made with (code, model files, artifact sizes): replayed only while current
    compare     two runs' configs side by side, a run's metrics as CSV
    results     a finished run's typed result through the reader its lab registered
    lessons     each lecture claim, its criterion, and the verdict computed from a run's figures
"""
from labs.runs import shared, worker  # noqa: F401,E402 - registers the database queue and the app's worker with jobs
