"""Playing episodes: the lock-step rollout engine that exploration, backtracking and
evaluation share, one module a job.

- `walkers`: one live line of play (an episode, or a branch of one) and the environment
  in its state, restored from a snapshot or rebuilt by replay
- `engine`: `roll_out`, which advances every live walker together, one batched generate
  call per step, and `execute`, one action through an environment
- `record`: `store_step`, one step into the store and the walker moved on

The chat a walker's policy sees is built in `workbench/prompts.py`, and its answer made
storable in `workbench/storable_text.py`. Nothing is imported here.
"""
