"""The speed settings, each shown to do what it says on tiny models and data.

Channels-last and uint8 storage change how tensors are held, never the values; threads are set;
flip averaging averages an image and its mirror, in evaluation only; augmentation changes training
batches but not their labels; the one-cycle schedule climbs to its peak and anneals below the
start; a compiled model trains and keeps its state dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import modelworks
from modelworks.config.schema import ImageFeature, TrainConfig
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import TARGET, InputSchema, image_key
from modelworks.models import build_model
from modelworks.models.cnn_config import CNNConfig
from modelworks.training.distributed import World
from modelworks.training.loop import fit
from modelworks.training.optim import build_optimizer, build_scheduler
from modelworks.training.optim_config import OneCycleConfig, SGDConfig
from modelworks.training.speed import FlipAveraged, compile_model, configure_threads, format_batch, prepare_model
from modelworks.training.speed_config import SpeedConfig

KEY = image_key("img")
SCHEMA = InputSchema(task="multiclass", num_classes=3, class_names=["a", "b", "c"], image={"img": (2, 8, 8)})


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    blocks = [{"filters": 8, "convs": 2}, {"filters": 16, "pool": "avg"}]
    return build_model(CNNConfig(blocks=blocks, hidden=[16]), SCHEMA).eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, 8, 8, generator=torch.Generator().manual_seed(seed))  # (N, C, H, W)


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(n)]
    return pd.DataFrame({"img": pd.Series(images, dtype=object), "label": rng.choice(["x", "y"], n)})


def test_channels_last_gives_the_same_outputs() -> None:
    plain, fast = _cnn(), _cnn()
    cfg = SpeedConfig(channels_last=True)
    assert prepare_model(fast, cfg) is fast
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = {KEY: _images(4)}
    formatted = format_batch(batch, cfg)
    assert formatted[KEY].is_contiguous(memory_format=torch.channels_last)
    assert not batch[KEY].is_contiguous(memory_format=torch.channels_last)  # the caller's batch is left alone
    with torch.no_grad():
        torch.testing.assert_close(fast(formatted), plain(batch), atol=1e-5, rtol=1e-4)
    assert format_batch(batch, SpeedConfig()) is batch


def test_threads_are_set_from_the_config() -> None:
    before = torch.get_num_threads()
    try:
        configure_threads(SpeedConfig(threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_uint8_storage_gives_the_same_normalized_tensors() -> None:
    frame = _frame(20)
    features = {s: [ImageFeature(name="img", storage=s)] for s in ("float32", "uint8")}
    pres = {s: Preprocessor(f, "label", "multiclass").fit(frame) for s, f in features.items()}
    stored = {s: pre.batches(frame) for s, pre in pres.items()}
    assert stored["uint8"].tensors[KEY].dtype == torch.uint8
    assert stored["float32"].tensors[KEY].dtype == torch.float32
    assert stored["uint8"].tensors[KEY].nbytes * 4 == stored["float32"].tensors[KEY].nbytes
    for a, b in zip(stored["uint8"].iterate(7, shuffle=True), stored["float32"].iterate(7, shuffle=True), strict=True):
        assert a[KEY].dtype == torch.float32 and torch.equal(a[KEY], b[KEY]) and torch.equal(a[TARGET], b[TARGET])
    # prediction's transform is the same either way, and so is what baselines read
    assert torch.equal(pres["uint8"].transform(frame)[KEY], pres["float32"].transform(frame)[KEY])
    assert torch.equal(stored["uint8"].decoded()[KEY], stored["float32"].tensors[KEY])


def test_augmentation_changes_training_images_but_not_labels() -> None:
    frame = _frame(32)
    pre = Preprocessor([ImageFeature(name="img", storage="uint8", flip=True, translate=0.2)], "label", "multiclass")
    batch = next(pre.fit(frame).batches(frame).iterate(32))
    out = pre.augment(batch, torch.Generator().manual_seed(0))
    assert out[KEY].shape == batch[KEY].shape and not torch.allclose(out[KEY], batch[KEY])
    assert torch.equal(out[TARGET], batch[TARGET])


def test_flip_averaging_averages_each_image_and_its_mirror() -> None:
    model = _cnn()
    x = _images(5)
    with torch.no_grad():
        expected = (model({KEY: x}) + model({KEY: x.flip(-1)})) / 2
        averaged = FlipAveraged(model, SCHEMA)({KEY: x})
        torch.testing.assert_close(averaged, expected)
        assert not torch.allclose(averaged, model({KEY: x}))
        # a mirror-symmetric image gives the plain output
        symmetric = torch.cat([x[..., :4], x[..., :4].flip(-1)], dim=-1)
        torch.testing.assert_close(FlipAveraged(model, SCHEMA)({KEY: symmetric}), model({KEY: symmetric}))


def test_onecycle_schedule_reaches_its_peak_then_anneals() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer(SGDConfig(momentum=0.9, nesterov=True), params, lr=0.01, weight_decay=0.0)
    sched = build_scheduler(OneCycleConfig(max_lr_factor=10.0, pct_start=0.25), opt, total_steps=40, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = int(np.argmax(lrs))
    assert lrs[peak] == pytest.approx(0.1) and 8 <= peak <= 11
    assert lrs[0] < 0.01 and lrs[-1] < lrs[0]
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=True))
    assert all(a >= b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))


def _image_data(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Class = which half of the image is bright (left, right) or neither."""
    x = _images(n, seed) * 0.2
    y = torch.arange(n) % 3
    x[y == 0, :, :, :4] += 1.0
    x[y == 1, :, :, 4:] += 1.0
    return {KEY: x, TARGET: y}


def _fit(tmp_path: Path, speed: dict, **train):
    from modelworks.data.batches import TensorBatches

    model = _cnn().train()
    cfg = TrainConfig(progress=False, checkpoint={"every_epochs": None}, speed=speed, epochs=3, batch_size=16, **train)
    folder = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    data = TensorBatches(_image_data(96, 0))
    result = fit(model, data, TensorBatches(_image_data(48, 1)), cfg, SCHEMA, device=torch.device("cpu"),
                 world=World(), run_dir=folder)  # fmt: skip
    return model, result


def test_fit_with_channels_last_learns_like_the_plain_loop(tmp_path: Path) -> None:
    _, plain = _fit(tmp_path, {}, lr=0.01)
    model, fast = _fit(tmp_path, {"channels_last": True, "threads": torch.get_num_threads()}, lr=0.01)
    assert fast.history[-1]["val_accuracy"] >= 0.9
    assert fast.history[-1]["train_loss"] == pytest.approx(plain.history[-1]["train_loss"], rel=1e-3)
    assert set(model.state_dict()) == set(_cnn().state_dict())


def test_compile_off_is_the_model_itself() -> None:
    model = _cnn()
    assert compile_model(model, SpeedConfig()) is model


@pytest.mark.slow
def test_compiled_training_learns_and_keeps_the_state_dict(tmp_path: Path) -> None:
    model, result = _fit(tmp_path, {"compile": True, "channels_last": True}, lr=0.01)
    assert result.history[-1]["val_accuracy"] >= 0.9
    assert set(model.state_dict()) == set(_cnn().state_dict())


def test_flip_average_is_an_evaluation_setting_and_augmentation_is_off_at_eval(make_config, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 90
    images = rng.integers(0, 60, (n, 8, 8), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1, :, :3] += 150  # class 1: a bright left edge (its mirror is a right edge)
    folder = tmp_path / "imgs"
    folder.mkdir()
    frame = pd.DataFrame({"img": pd.Series(list(images), dtype=object), "label": labels.astype(str)})
    paths = []
    from PIL import Image

    for i, im in enumerate(images):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(im).save(paths[-1])
    frame["img"] = paths
    frame.to_csv(tmp_path / "imgs.csv", index=False)
    feature = {"name": "img", "type": "image", "storage": "uint8", "flip": True, "translate": 0.1}
    model = {"type": "cnn", "blocks": [{"filters": 4}], "hidden": []}
    data = {"source": str(tmp_path / "imgs.csv"), "target": "label", "features": [feature], "split": {"seed": 0}}
    run = modelworks.train(make_config(data, model, train={"epochs": 2}, evaluate={"baselines": []}))
    plain = run.outputs(run.splits()["test"])
    assert np.array_equal(plain, run.outputs(run.splits()["test"]))  # no random augmentation at evaluation
    flip = run.config.evaluate.model_copy(update={"flip_average": True})
    run.config = run.config.model_copy(update={"evaluate": flip})
    averaged = run.outputs(run.splits()["test"])
    assert averaged.shape == plain.shape and not np.allclose(averaged, plain)
    loaded = modelworks.load_run(run.path, base_dir=tmp_path)
    assert np.allclose(loaded.outputs(loaded.splits()["test"]), plain, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_fast_recipe_runs_on_cuda_with_data_on_the_device(make_config) -> None:
    feature = {"name": "image", "type": "image", "storage": "uint8", "flip": True, "translate": 0.1}
    data = {"source": "builtin:digits", "features": [feature]}
    speed = {"channels_last": True, "data_on_device": True}
    train = {"epochs": 5, "device": "cuda", "precision": "bf16", "batch_size": 64, "speed": speed}
    run = modelworks.train(make_config(data, {"type": "cnn"}, train, evaluate={"flip_average": True}))
    assert run.device.type == "cuda" and run.report["summary"]["accuracy"] > 0.9
    assert all(r.skipped is None for r in run.report.baselines.results)  # they read the data back from the GPU
