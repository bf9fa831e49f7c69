"""Distillation: training a policy on a dataset of corrections, one module a job.

- `stage`: the pipeline stage (`run_distill`) and `train_adapter`, the whole job as one call
- `data`: the dataset format, tokenizing with loss masks, length-grouped batches
- `training`: the training loop (LoRA or every weight) under accelerate
- `shared_prefix`: examples that share a prompt trained as one row, the prompt once
- `dropout`: LoRA dropout masks drawn as integers
- `adapters`: adapters and datasets as a user names them, and recording a trained adapter
- `output`: where an adapter may be saved, and the card beside its weights
- `plan`: what a launch of several processes shares about one distillation
- `launch`: the batch command under `accelerate launch` with several processes
- `job`: what the distill screen shows and trains, in one call
- `__main__`: `python -m workbench.distill`, a distillation outside any run

Nothing is imported here, so that the TUI and the config checks can use `adapters` and
`job` without loading torch, and so that `plan` is imported by the stage and by `launch`
without either importing the other.
"""
