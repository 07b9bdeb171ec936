"""Fine-tuning labs: each module owns its Config, run function, Result and reader.

    sft         instruction tuning with a prompt template and loss masking (LoRA), before/after answers
    classifier  classifier fine-tuning: a new output layer, frozen layers
    dpo         direct preference optimisation on chosen/rejected pairs, with the reward curves
    lora        the LoRA rank explorer: rank, targets, trainable parameters, update spectra, the merge check
"""
