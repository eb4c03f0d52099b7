"""Distillation: the student learns, and learns the teacher better than labels alone teach it."""

from __future__ import annotations

import numpy as np
import torch

import modelworks
from modelworks.api import compress
from modelworks.compression.distill import kd_loss

from .conftest import outputs, reopened_matches


def kl_to(teacher: np.ndarray, student: np.ndarray) -> float:
    """Mean KL(teacher || student) between two (N, K) probability arrays."""
    eps = 1e-7
    return float(np.mean(np.sum(teacher * (np.log(teacher + eps) - np.log(student + eps)), axis=1)))


def test_kd_student_learns_and_follows_the_teacher_closer_than_hard_labels(digits_mlp):
    student = {"type": "mlp", "hidden": [16]}
    kd = compress(digits_mlp, "distill", student=student, temperature=4.0, alpha=0.9, epochs=4, lr=0.003)
    hard = compress(digits_mlp, "distill", student=student, alpha=0.0, epochs=4, lr=0.003)
    assert kd.config.model.type == "mlp" and kd.config.model.hidden == [16]
    assert kd.config.compression.options["epochs"] == 4 and kd.config.train.epochs == 4
    assert kd.report["summary"]["accuracy"] > 0.85  # ten classes: chance is 0.1
    losses = [r["train_loss"] for r in kd.history]
    assert losses[-1] < losses[0]
    teacher = outputs(modelworks.load_run(digits_mlp.path))
    assert kl_to(teacher, outputs(kd)) < kl_to(teacher, outputs(hard))
    reopened_matches(kd)


def test_kd_loss_is_zero_for_the_teacher_itself_and_grows_with_disagreement():
    t = torch.tensor([[2.0, 0.0, -1.0]])
    assert kd_loss(t, t, "multiclass", 4.0).item() < 1e-6
    assert kd_loss(t.flip(1), t, "multiclass", 4.0) > kd_loss(t * 0.5, t, "multiclass", 4.0) > 0
    z = torch.tensor([[1.5]])
    assert kd_loss(z, z, "binary", 2.0).item() < 1e-6 and kd_loss(-z, z, "binary", 2.0) > 0
    assert kd_loss(z, z + 1, "regression", 2.0).item() == 1.0  # plain MSE to the teacher
