"""What every lab stands on; imports nothing else of labs.

    settings  environment settings (LLMLAB_*), the one table the README shows; sets HF_HUB_OFFLINE on import
    compute   the CPU budget: training, decoding and embedding share the cores without oversubscribing them
    hardware  the device, its dtype and a measured matmul / memory-bandwidth figure
    errors    LabError: a problem the user can fix, whose message is the text a page shows
    charts    Plotly defaults and the few chart helpers every lab shares
    db        SQL engines for the shared tables (votes, run queue, limits) from LLMLAB_DB_URL; reachability check
"""
