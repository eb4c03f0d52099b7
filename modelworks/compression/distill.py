"""Knowledge distillation: a student with its own model config learns from a teacher run.

The student trains with the teacher's train config (epochs and learning rate overridable) on the
same rows and preprocessing, through the ordinary `fit` loop with its loss replaced by

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * hard-label loss

(Hinton et al., 2015), the teacher's outputs computed batch by batch with the teacher in eval
mode and no gradients. A binary model's single logit z is read as the two logits (0, z). For
regression there are no class probabilities to soften: the soft term is the mean squared error
to the teacher's outputs and `temperature` is unused. Validation reports the hard-label loss.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from modelworks.compression.method import Compressed, Job, Method, class_counts, load_float, train_config
from modelworks.compression.methods import DistillConfig
from modelworks.models import build_model
from modelworks.models.pretrained import PretrainedConfig, resolve_pretrained
from modelworks.training.distributed import World
from modelworks.training.loop import fit
from modelworks.training.losses import TaskLoss, resolve_loss
from modelworks.training.runtime import resolve_device, seed_everything


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, task: str, temperature: float) -> torch.Tensor:
    """The soft term: T^2-scaled KL divergence to the teacher's softened probabilities (MSE for regression)."""
    student, teacher = student.float(), teacher.float()
    if task == "regression":
        return F.mse_loss(student, teacher)
    if task == "binary":  # one logit z <=> two logits (0, z)
        student = torch.cat([torch.zeros_like(student), student], dim=1)  # (batch, 2)
        teacher = torch.cat([torch.zeros_like(teacher), teacher], dim=1)  # (batch, 2)
    log_s = F.log_softmax(student / temperature, dim=1)  # (batch, classes)
    log_t = F.log_softmax(teacher / temperature, dim=1)  # (batch, classes)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature**2


def _apply(job: Job, cfg: DistillConfig) -> Compressed:
    parent, schema = job.parent, job.parent.schema
    student_cfg = resolve_pretrained(cfg.student) if isinstance(cfg.student, PretrainedConfig) else cfg.student
    cfg = cfg.model_copy(
        update={
            "student": student_cfg,
            "epochs": cfg.epochs or parent.config.train.epochs,
            "lr": cfg.lr or parent.config.train.lr,
        }
    )
    train_cfg = train_config(job, cfg.epochs, cfg.lr)
    teacher_quantized = parent.config.compression is not None and parent.config.compression.method.startswith(
        "quantize"
    )
    device = torch.device("cpu") if teacher_quantized else resolve_device(train_cfg.device)
    seed_everything(train_cfg.seed, train_cfg.deterministic)
    student = build_model(student_cfg, schema).to(device)
    teacher = parent.model.to(device).eval()
    counts = class_counts(job)
    hard = TaskLoss(resolve_loss(train_cfg.loss, schema.task), schema.num_classes, counts).to(device)

    def loss_fn(outputs: torch.Tensor, target: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            soft_target = teacher(inputs)  # (batch, out_dim)
        soft = kd_loss(outputs, soft_target, schema.task, cfg.temperature)
        return cfg.alpha * soft + (1 - cfg.alpha) * hard(outputs, target)

    try:
        fit(
            student,
            job.splits["train"],
            job.splits.get("validation"),
            train_cfg,
            schema,
            device=device,
            world=World(),
            run_dir=job.run_dir,
            class_counts=counts,
            augment=parent.preprocessor.augment,
            callbacks=job.callbacks,
            loss_fn=loss_fn,
        )
    finally:
        teacher.cpu()
    student = student.cpu().eval()
    return Compressed(
        student,
        student.state_dict(),
        cfg,
        model_config=student_cfg,
        train={"epochs": cfg.epochs, "lr": cfg.lr},
        notes={"teacher": str(parent.path)},
    )


METHOD = Method(_apply, load_float)  # declared in modelworks.compression.methods
