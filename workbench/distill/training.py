"""The SFT loop behind `distill` and the SFT-based baselines: LoRA, or every weight.

`distill.method = "lora"` (the default) trains a peft adapter on the frozen base;
`"full"` trains all weights, as the paper does at a low learning rate, and saves a whole
model folder (weights, config and tokenizer) that loads wherever a model folder does.

A plain loop driven by accelerate's `Accelerator`, so the same code trains on one CPU, on
one GPU, or under `accelerate launch` with DDP, FSDP or DeepSpeed: the model, optimiser
and data loader go through `accelerator.prepare`, the loss is reduced across processes
for logging, and only the main process writes the adapter (the state dict is gathered
collectively, as sharded engines require).

Why not transformers' Trainer: on a CPU most of the time goes into tokens that carry no
loss. This loop batches examples of similar length (little padding) and projects onto
the vocabulary only at the positions that predict a target token (`logits_to_keep`), so
the lm_head, a fifth of a small model's compute, runs on targets alone. Examples that
share most of their prompt are trained as one row, the prompt once (`shared_prefix.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import DistillConfig, ModelConfig
from workbench.context import Progress, SilentProgress
from workbench.distill.data import (
    IGNORE_INDEX,
    LengthGroupedBatches,
    TokenizedExample,
    collate,
    micro_batches,
    tokenize_examples,
)
from workbench.distill.shared_prefix import (
    PrefixGroupedBatches,
    attention_mask_4d,
    collate_shared,
    prefix_clusters,
)
from workbench.errors import Cancelled, LeafeError
from workbench.memory import GrowthTrimmer

MAX_GRAD_NORM = 1.0


@dataclass
class TrainResult:
    """What a training run measured; only the main process's copy is complete."""

    losses: list[dict[str, float]] = field(default_factory=list)  # step, epoch, loss, learning_rate
    steps: int = 0
    tokens: int = 0  # every non-padding token through the model, all epochs, all processes
    target_tokens: int = 0
    n_examples: int = 0
    skipped: int = 0  # examples whose targets alone exceed max_length
    train_seconds: float = 0.0
    load_seconds: float = 0.0
    processes: int = 1

    @property
    def final_loss(self) -> float:
        return self.losses[-1]["loss"] if self.losses else math.nan

    @property
    def first_loss(self) -> float:
        return self.losses[0]["loss"] if self.losses else math.nan

    @property
    def epoch_losses(self) -> list[float]:
        """The mean step loss of each epoch. Steps of one epoch see different batches (long
        prose targets cost more per token than one action word), so first against last step
        can rise while every epoch's mean falls; the means are the curve to read."""
        by_epoch: dict[int, list[float]] = {}
        for record in self.losses:
            by_epoch.setdefault(max(0, math.ceil(record["epoch"] - 1e-9) - 1), []).append(record["loss"])
        return [sum(values) / len(values) for _, values in sorted(by_epoch.items())]

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds > 0 else 0.0


StepCallback = Callable[[dict[str, float]], None]


def on_cpu(model_config: ModelConfig) -> bool:
    """Train on the CPU when asked to, or when there is no GPU. Accelerate needs to know
    before its first use: only then does a multi-process launch on CPUs join a gloo group
    instead of each process training alone."""
    import torch

    return model_config.device == "cpu" or not torch.cuda.is_available()


def make_accelerator(model_config: ModelConfig):
    """An Accelerator for this machine; `accelerate launch` settings (FSDP, DeepSpeed,
    mixed precision, process count) arrive through the environment and take effect here."""
    from accelerate import Accelerator

    return Accelerator(cpu=on_cpu(model_config))


def load_for_training(model_config: ModelConfig, accelerator: Any, *, full: bool = False):
    """Base model and tokenizer on the CPU (prepare moves them), frozen.

    With accelerate mixed precision the base loads in float32 and autocast lowers it;
    otherwise it keeps `[model] dtype`, and peft keeps the LoRA weights in float32 either way.
    A full fine-tune (`full`) always holds its weights in float32: at the paper's learning
    rates (1e-6 .. 1e-5) most bfloat16 updates would round away to nothing.
    """
    from workbench.models.hf import load_model_and_tokenizer

    dtype = "float32" if accelerator.mixed_precision != "no" or full else model_config.dtype
    config = dataclasses.replace(model_config, device="cpu", dtype=dtype, adapter="")
    model, tokenizer, source = load_model_and_tokenizer(config)
    tokenizer.padding_side = "right"
    return model, tokenizer, source


def add_lora(model: Any, settings: DistillConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as error:
        raise LeafeError(f"distill: LoRA target_modules {settings.target_modules}: {error}") from None


def make_trainable(model: Any, settings: DistillConfig):
    """The model the loop trains: a LoRA wrapper, or the model itself with every weight free."""
    if settings.method == "full":
        model.requires_grad_(True)
        return model
    model = add_lora(model, settings)
    if settings.dropout_masks == "integer":
        from workbench.distill.dropout import use_integer_masks

        use_integer_masks(model)
    return model


def lora_precision(model: Any, settings: DistillConfig, accelerator: Any) -> bool:
    """Whether LoRA's products run in bfloat16: asked for, a LoRA run, a base held in
    bfloat16, and no accelerate mixed precision (which autocasts by itself).

    peft casts each adapted layer's input to its float32 LoRA weights and the product back,
    so on a bfloat16 base every one of the 7 adapted layers of each block copies its input
    twice in float32 (11% of a step on the embedded model, README "Distillation against
    trl"). Here peft's casts are switched off and the forward runs under bfloat16 autocast:
    the LoRA weights and the optimiser stay float32 (autocast lowers a copy of each r x d
    weight, not the inputs), as in any mixed-precision training. Returns True when set up.
    """
    import torch

    if settings.method != "lora" or settings.lora_precision != "bfloat16" or accelerator.mixed_precision != "no":
        return False
    if not any(p.dtype == torch.bfloat16 for p in model.parameters() if not p.requires_grad):
        return False
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
    return True


def target_count(batch: dict[str, Any]) -> int:
    """How many tokens of the batch carry a loss (the next token is a target)."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def attention_inputs(model: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """What the model reads about attention: the padding mask of plain rows, or for rows
    packed on a shared prefix (`shared_prefix.collate_shared`) a 4-D mask and position ids.
    SDPA takes the boolean mask as it is; the eager implementation adds a float one."""
    import torch

    if "segments" not in batch:
        return {"attention_mask": batch["attention_mask"]}
    implementation = attention_implementation(model)
    if implementation not in ("sdpa", "eager"):
        raise LeafeError(
            f"distill.share_prefixes needs the sdpa or eager attention implementation, and the model "
            f"uses {implementation}: set distill.share_prefixes = false"
        )
    mask = attention_mask_4d(batch["groups"], batch["segments"])
    if implementation == "eager":
        mask = torch.zeros(mask.shape, dtype=torch.float32).masked_fill(~mask, torch.finfo(torch.float32).min)
    return {"attention_mask": mask, "position_ids": batch["position_ids"]}


@functools.cache
def reads_row_masks() -> bool:
    """Whether this transformers release takes `logits_to_keep` as a 2-D boolean mask (one
    set of positions per row); the releases that do have `slice_logits_to_keep`. Asked at
    every forward pass, so answered once."""
    from transformers import modeling_utils

    return hasattr(modeling_utils, "slice_logits_to_keep")


def attention_implementation(model: Any) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "sdpa")


def weighted_target_loss(model: Any, batch: dict[str, Any], targets_in_batch: int | None = None):
    """Mean cross-entropy over target tokens, each weighted by its example's weight.
    `targets_in_batch`: the whole batch's target count when `batch` is one part of it, so
    that the parts' losses (and gradients) add up to the whole batch's.

    Logits are computed only at positions where some row's next token is a target,
    which saves the vocabulary projection on the prompt. The positions go in as a 1-D
    `logits_to_keep` tensor: every transformers release we support reads that form,
    while a 2-D boolean mask is read only by recent ones (older ones raise IndexError).
    """
    import torch
    import torch.nn.functional as F

    labels = batch["labels"]
    next_is_target = labels[:, 1:] != IGNORE_INDEX
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = next_is_target
    if "segments" in batch and reads_row_masks():
        # Packed rows hold targets all along them, so the positions of all rows together
        # would be most of the row: keep each row's own instead.
        output = model(input_ids=batch["input_ids"], logits_to_keep=keep, use_cache=False,
                       **attention_inputs(model, batch))
        logits = output.logits.float()  # (targets, vocabulary), row-major like the targets below
    else:
        positions = keep.any(dim=0).nonzero().flatten()
        output = model(input_ids=batch["input_ids"], logits_to_keep=positions, use_cache=False,
                       **attention_inputs(model, batch))
        # Row-major over (row, position), the same order as the targets below.
        logits = output.logits[keep[:, positions]].float()
    targets = labels[:, 1:][next_is_target]
    weights = batch["weights"][:, 1:][next_is_target]
    per_token = F.cross_entropy(logits, targets, reduction="none")
    # Divided by the token count, not the weight sum, so a rehearsal-only batch really
    # weighs beta, rather than being renormalised back to full weight.
    divisor = int(next_is_target.sum()) if targets_in_batch is None else targets_in_batch
    return (per_token * weights).sum() / max(1, divisor)


def linear_decay(total_steps: int):
    return lambda step: max(0.0, 1.0 - step / max(1, total_steps))


@dataclass
class Training:
    """What the loop works on once everything is loaded and prepared by accelerate."""

    accelerator: Any
    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    loader: Any
    sampler: LengthGroupedBatches
    total_steps: int
    max_batch_tokens: int = 0
    """Padded tokens per forward pass (`distill.max_batch_tokens`; 0: whole batches)."""
    trim: GrowthTrimmer = field(default_factory=GrowthTrimmer)
    lora_in_bfloat16: bool = False
    """LoRA products run under bfloat16 autocast (`distill.lora_precision`); see `lora_precision`."""

    def forward_precision(self):
        """The context a forward pass runs in: bfloat16 autocast for the LoRA products, or none."""
        import contextlib

        import torch

        if not self.lora_in_bfloat16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.accelerator.device.type, dtype=torch.bfloat16)


def tokenize_for_training(
    tokenizer: Any, examples: Sequence[dict[str, Any]], settings: DistillConfig, result: TrainResult,
    progress: Progress, *, main: bool,
) -> list[TokenizedExample]:
    """The examples as token ids and labels; refused when none fits in max_length, with a
    warning (main process) naming how many were left out."""
    tokenized, result.skipped = tokenize_examples(
        tokenizer, examples, max_length=settings.max_length, beta=settings.beta
    )
    if not tokenized:
        raise LeafeError(
            f"distill: none of the {len(examples)} examples has a target that fits in "
            f"max_length = {settings.max_length} tokens"
        )
    result.n_examples = len(tokenized)
    if result.skipped and main:
        progress.event(
            "message",
            text=f"warning: distill: {result.skipped} of {len(examples)} examples left out: their first "
            f"answer does not fit in distill.max_length = {settings.max_length} tokens",
        )
    return tokenized


def batches_of(tokenized: list[TokenizedExample], tokenizer: Any, settings: DistillConfig):
    """A data loader of length-grouped, right-padded batches, and its sampler (whose epoch
    the loop sets)."""
    from torch.utils.data import DataLoader

    pad_id = tokenizer.pad_token_id
    if settings.share_prefixes:
        sampler = PrefixGroupedBatches(prefix_clusters(tokenized), [len(e.input_ids) for e in tokenized],
                                       settings.batch_size, settings.seed, grouped=settings.group_by_length)
        pack = collate_shared
    else:
        sampler = LengthGroupedBatches(
            [len(e.input_ids) for e in tokenized], settings.batch_size, settings.seed,
            grouped=settings.group_by_length,
        )
        pack = collate

    def collate_batch(items: list[TokenizedExample]) -> dict[str, Any]:
        return pack(items, pad_id)

    return DataLoader(tokenized, batch_sampler=sampler, collate_fn=collate_batch), sampler


def prepare_training(
    model_config: ModelConfig, settings: DistillConfig, examples: Sequence[dict[str, Any]], accelerator: Any,
    result: TrainResult, progress: Progress,
) -> Training:
    """Load the model, tokenize the examples, and hand model, optimiser and data loader to
    accelerate (which places or shards them)."""
    import torch

    model, tokenizer, _ = load_for_training(model_config, accelerator, full=settings.method == "full")
    tokenized = tokenize_for_training(tokenizer, examples, settings, result, progress,
                                      main=accelerator.is_main_process)
    model = make_trainable(model, settings)
    lora_in_bfloat16 = lora_precision(model, settings, accelerator)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    loader, sampler = batches_of(tokenized, tokenizer, settings)
    deepspeed = getattr(accelerator.state, "deepspeed_plugin", None)
    if deepspeed is not None:
        # DeepSpeed reads the micro-batch from the loader, which a batch sampler hides.
        deepspeed.deepspeed_config["train_micro_batch_size_per_gpu"] = settings.batch_size
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    total_steps = len(loader) * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_decay(total_steps))
    # DeepSpeed's engine steps on every backward it is given, so it gets whole batches.
    max_batch_tokens = 0 if deepspeed is not None else settings.max_batch_tokens
    return Training(accelerator, model, tokenizer, optimizer, scheduler, loader, sampler, total_steps,
                    max_batch_tokens, lora_in_bfloat16=lora_in_bfloat16)


def loss_writer(tensorboard_dir: Path | None, accelerator: Any):
    """A TensorBoard writer on the main process when asked for one, else None."""
    if tensorboard_dir is None or not accelerator.is_main_process:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(tensorboard_dir))


def train_step(training: Training, batch: dict[str, Any]) -> tuple[float, float, int, int]:
    """One optimiser step on a batch: (loss averaged over processes, the learning rate it
    used, tokens and target tokens of the batch summed over processes)."""
    import torch

    accelerator, model = training.accelerator, training.model
    # A batch too large for memory is trained in parts; each part's loss is divided by the
    # whole batch's target count, so their gradients sum to the whole batch's gradient.
    targets = target_count(batch)
    loss = 0.0
    for part in micro_batches(batch, training.max_batch_tokens):
        with training.forward_precision():  # backward runs outside autocast, as torch asks
            part_loss = weighted_target_loss(model, part, targets)
        accelerator.backward(part_loss)
        loss = loss + part_loss.detach()
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
    learning_rate = training.scheduler.get_last_lr()[0]
    training.optimizer.step()
    training.scheduler.step()
    training.optimizer.zero_grad(set_to_none=True)
    counts = torch.tensor(
        [int(batch["attention_mask"].sum()), int((batch["labels"] != IGNORE_INDEX).sum())],
        device=accelerator.device,
    )
    counts = accelerator.reduce(counts, "sum")
    mean_loss = float(accelerator.reduce(loss.detach(), "mean"))
    return mean_loss, learning_rate, int(counts[0]), int(counts[1])


def train_epoch(
    training: Training, epoch: int, result: TrainResult, *, progress: Progress, cancel: threading.Event,
    on_step: StepCallback | None, writer: Any,
) -> None:
    """Every batch of one epoch; each step's loss is recorded in `result`, and on the main
    process reported (TensorBoard, `on_step`, progress). Cancelled between steps."""
    main = training.accelerator.is_main_process
    training.sampler.epoch = epoch
    for index, batch in enumerate(training.loader):
        if cancel.is_set():
            raise Cancelled()
        mean_loss, learning_rate, tokens, target_tokens = train_step(training, batch)
        training.trim()  # else batches of varying shape grow the heap step after step
        result.steps += 1
        result.tokens += tokens
        result.target_tokens += target_tokens
        record = {
            "step": result.steps,
            "epoch": epoch + (index + 1) / len(training.loader),
            "loss": mean_loss,
            "learning_rate": learning_rate,
        }
        result.losses.append(record)
        if main:
            if writer is not None:
                writer.add_scalar("train/loss", mean_loss, result.steps)
                writer.add_scalar("train/learning_rate", learning_rate, result.steps)
            if on_step:
                on_step(record)
            progress.advance(1, loss=mean_loss, epoch=round(record["epoch"], 2))


def save_trained(training: Training, save_to: Path | None, *, full: bool) -> None:
    """Write the adapter (or, `full`, the whole model folder) from the main process; every
    process takes part in gathering the weights."""
    accelerator = training.accelerator
    # Collective: sharded engines (FSDP, ZeRO-3) gather the full weights here.
    state = accelerator.get_state_dict(training.model)
    if accelerator.is_main_process and save_to is not None:
        accelerator.unwrap_model(training.model).save_pretrained(
            str(save_to), state_dict=state, safe_serialization=True
        )
        if full:
            # A whole model folder: it must load on its own, tokenizer included.
            training.tokenizer.padding_side = "left"
            training.tokenizer.save_pretrained(str(save_to))
    accelerator.wait_for_everyone()


def train_lora(
    model_config: ModelConfig,
    settings: DistillConfig,
    examples: Sequence[dict[str, Any]],
    *,
    save_to: Path | None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    on_step: StepCallback | None = None,
    tensorboard_dir: Path | None = None,
    description: str = "distill",
) -> TrainResult:
    """Train on `examples` (dataset rows) and save to `save_to` (main process only): a LoRA
    adapter in PEFT's format, or with `method = "full"` a whole model folder. Every process
    of a launch calls this with the same data."""
    from accelerate.utils import set_seed

    progress = progress or SilentProgress()
    cancel = cancel or threading.Event()
    accelerator = make_accelerator(model_config)
    result = TrainResult(processes=accelerator.num_processes)
    set_seed(settings.seed)

    started = time.monotonic()
    training = prepare_training(model_config, settings, examples, accelerator, result, progress)
    result.load_seconds = time.monotonic() - started
    writer = loss_writer(tensorboard_dir, accelerator)

    progress.start(description, training.total_steps,
                   f"{description}: {result.n_examples} examples, {settings.epochs} epochs")
    clock = time.monotonic()
    try:
        for epoch in range(settings.epochs):
            train_epoch(training, epoch, result, progress=progress, cancel=cancel, on_step=on_step, writer=writer)
        result.train_seconds = time.monotonic() - clock
        save_trained(training, save_to, full=settings.method == "full")
    finally:
        if writer is not None:
            writer.close()
        progress.finish()
        accelerator.free_memory()
        del training
    return result
