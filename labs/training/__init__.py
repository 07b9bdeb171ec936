"""Training: the one loop every lab plugs its loss into.

    loop    the training loop (optimiser, schedule, accumulation, NaN guard, metrics, Stop), LoRA setup, tokenising
    prefix  the frozen prefix: blocks below the first trained one run once per row, their states replayed after
    kernels while a copy trains: eager attention on a CPU, frozen block weights held in bf16 under autocast
"""
