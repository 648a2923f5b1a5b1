import math
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_pose_lib.config import load_config
from lightning_pose_lib.losses import LOSSES, build_loss
from lightning_pose_lib.models.backbones import BACKBONES, create_backbone, list_backbones
from lightning_pose_lib.pca import fit_pca
from lightning_pose_lib.models.network import PoseNetwork
from lightning_pose_lib.models.pose_model import PoseModel
from lightning_pose_lib.models.schedules import BackboneWarmup, StepSchedule


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_gives_features_at_its_stride(name):
    torch.manual_seed(0)
    model = create_backbone(name).eval()
    assert model.stride in (16, 32)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96))
    assert out.shape == (1, model.out_channels, 64 // model.stride, 96 // model.stride)


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_trains_the_context_model_with_unsupervised_losses_and_round_trips(name, tmp_path):
    """Heatmaps at stride 4 whatever the backbone's stride; a semi-supervised step of the context
    model gives gradients to the backbone; a saved checkpoint loads into a new model unchanged."""
    from lightning_pose_lib import checkpoints

    torch.manual_seed(0)
    cfg = tiny_cfg(**{"model.backbone": name, "model.model_type": "heatmap_mhcrnn", "model.do_context": "true", "training.imgaug": "none",
                      "model.losses_to_use": "[temporal,pca_singleview]", "data.columns_for_singleview_pca": "[0,1]"})
    model = PoseModel(cfg, num_keypoints=2)
    model.use_unsupervised_losses({"singleview": _line_pca()})
    model.log = lambda *a, **k: None
    model.unsupervised_importance = lambda: 1.0
    labeled = {"image": torch.rand(2, 5, 3, 64, 96), "keypoints": torch.rand(2, 2, 2) * 50, "orig_hw": torch.full((2, 2), 64.0)}
    clips = {"frames": torch.randint(0, 256, (1, 6, 3, 64, 96), dtype=torch.uint8), "orig_hw": torch.tensor([[64.0, 96.0]])}
    loss = model.training_step({"labeled": labeled, "unlabeled": clips}, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.backbone.parameters() if p.requires_grad)

    model.eval()
    checkpoints.save({"state_dict": model.state_dict()}, tmp_path / "model.ckpt")
    again = PoseNetwork(cfg, num_keypoints=2).eval()  # as prediction loads it
    again.load_state_dict(checkpoints.load(tmp_path / "model.ckpt")["state_dict"])
    frames = torch.rand(7, 3, 64, 96)
    with torch.no_grad():
        out, out_again = model.forward_sequence(frames), again.forward_sequence(frames)
    assert out["heatmaps"].shape[-2:] == (16, 24)
    torch.testing.assert_close(out["keypoints"], out_again["keypoints"])


def test_checkpoints_from_before_timm_backbones_still_load():
    """Those named the ResNet's parameters ``backbone.layer1...``; now they sit under ``backbone.net.``."""
    torch.manual_seed(0)
    model = PoseModel(tiny_cfg(), num_keypoints=2).eval()
    older = {k.replace("backbone.net.", "backbone."): v for k, v in model.state_dict().items()}
    assert any(k.startswith("backbone.layer4.") for k in older)
    again = PoseModel(tiny_cfg(), num_keypoints=2).eval()
    again.load_state_dict(older)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])


def test_checkpoints_naming_the_schedules_former_module_still_load(tmp_path, monkeypatch):
    """The learning-rate schedules were defined in models/pose_model.py; full checkpoints written
    then (every best.ckpt of that time) name them there, and must still load, as the allow-list's
    types under that name."""
    from lightning_pose_lib import checkpoints

    model = PoseModel(tiny_cfg(), num_keypoints=2)
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    for kind in (BackboneWarmup, StepSchedule):
        monkeypatch.setattr(kind, "__module__", "lightning_pose_lib.models.pose_model")
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "lr_schedulers": [scheduler.state_dict()]}, path)
    monkeypatch.undo()
    assert b"lightning_pose_lib.models.pose_model" in path.read_bytes()
    backbone_factor = checkpoints.load(path)["lr_schedulers"][0]["lr_lambdas"][0]  # LambdaLR keeps the product's attributes
    assert isinstance(backbone_factor["a"], BackboneWarmup) and isinstance(backbone_factor["b"], StepSchedule)
    network = checkpoints.load_pose_model(path)
    assert type(network) is PoseNetwork and network.num_keypoints == 2


@pytest.mark.parametrize("device", ["meta", "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU"))])
def test_a_checkpoint_loads_into_a_network_built_on_the_device(tmp_path, device):
    """Prediction builds the network where it runs (no CPU initialisation to throw away): every
    tensor is made there (meta shows it: nothing is copied onto it), and on a real device holds the
    checkpoint's values, the normalisation constants included."""
    import warnings

    from lightning_pose_lib import checkpoints

    model = PoseModel(tiny_cfg(), num_keypoints=2)
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # copying into meta tensors does nothing, and says so
        network = checkpoints.load_pose_model(path, device)
    tensors = dict(network.state_dict(keep_vars=True)) | dict(network.named_buffers())
    assert {t.device.type for t in tensors.values()} == {device}
    if device != "meta":
        for key, value in model.state_dict().items():
            assert torch.equal(value, network.state_dict()[key].cpu()), key
        assert torch.equal(network.mean.cpu(), model.mean) and torch.equal(network.std.cpu(), model.std)


def test_pretrained_weights_from_a_file(tmp_path):
    source = create_backbone("resnet18")
    path = tmp_path / "weights.pth"
    trunk = {k.removeprefix("net."): v for k, v in source.state_dict().items()}
    torch.save({**trunk, "fc.weight": torch.zeros(1000, 512)}, path)  # torchvision's layout
    target = create_backbone("resnet18", pretrained=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key])


def test_resnet_matches_torchvision():
    """torchvision's ImageNet files (the ResNets' pretrained weights) load into our ResNets and
    give torchvision's features."""
    import torchvision as tv

    for name in ("resnet18", "resnet50"):
        reference = getattr(tv.models, name)().eval()
        ours = create_backbone(name).eval()
        ours.net.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
        x = torch.rand(2, 3, 64, 64)
        trunk = torch.nn.Sequential(*list(reference.children())[:-2])
        with torch.no_grad():
            assert torch.allclose(ours(x), trunk(x), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_resnets_are_timms_to_the_bit(name):
    """Our ResNets replaced timm's (zero_init_last=False): same parameter names, so checkpoints of
    either load into the other; from the same seed the same weights, and the same random stream after
    them (the heads drawn next are the same too, so earlier trainings' figures hold); same features."""
    import timm

    torch.manual_seed(3)
    ours = create_backbone(name)
    ours_rng = torch.get_rng_state()
    torch.manual_seed(3)
    theirs = timm.create_model(name, pretrained=False, num_classes=0, global_pool="", zero_init_last=False)
    assert torch.equal(ours_rng, torch.get_rng_state())
    assert list(ours.net.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.net.state_dict()[key], value), key
    ours.net.train(), theirs.train()
    x = torch.rand(2, 3, 64, 96)
    torch.testing.assert_close(ours(x), theirs.forward_features(x), rtol=0, atol=0)  # batch statistics
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.forward_features(x), rtol=0, atol=0)


def _line_pca():
    # Poses of 2 keypoints where keypoint 1 = keypoint 0 + (10, 2): one component (along x and y of both).
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 50, (40, 1, 2))
    return fit_pca("singleview", np.concatenate([base, base + [10.0, 2.0]], axis=1), [[0, 1]], components_to_keep=2, epsilon=1.0)


NAN = float("nan")
HAND = {
    # name: (constructor params, inputs, expected), computed by hand
    "heatmap_mse": (
        {},
        {
            "heatmaps": torch.tensor([[[[0.5, 0.5]], [[1.0, 0.0]]]]),
            "target_heatmaps": torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]]),  # second keypoint unlabeled
        },
        0.5,  # (0.5^2 + 0.5^2) summed over pixels, averaged over the one labeled map
    ),
    "heatmap_kl": (
        {},
        {
            "heatmaps": torch.tensor([[[[0.5, 0.5]], [[1.0, 0.0]]]]),
            "target_heatmaps": torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]]),
        },
        math.log(2.0),  # 1 * log(1 / 0.5); the zero target pixel adds nothing
    ),
    "heatmap_js": (
        {},
        {
            "heatmaps": torch.tensor([[[[0.5, 0.5]], [[1.0, 0.0]]]]),
            "target_heatmaps": torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]]),
        },
        # middle (0.75, 0.25): (1 log(1/0.75) + 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25)) / 2
        (math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2.0)) / 2,
    ),
    "regression_mse": (
        {},
        {
            "normalized_keypoints": torch.tensor([[[0.1, 0.2], [0.5, 0.5]]]),
            "target_normalized_keypoints": torch.tensor([[[0.4, 0.6], [NAN, NAN]]]),
        },
        0.25,  # 0.3^2 + 0.4^2, the NaN keypoint skipped
    ),
    "temporal": (
        {"epsilon": 1.0, "prob_threshold": 0.5},
        {
            # one clip, 3 frames, 2 keypoints; keypoint 0 jumps 5 px then 0.5 px; keypoint 1 jumps 3 px
            # into a frame where it is not confident (likelihood 0.1), then 4 px out of it
            "keypoints": torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[3.0, 4.0], [3.0, 0.0]], [[3.0, 4.5], [7.0, 0.0]]]]),
            "likelihood": torch.tensor([[[0.9, 0.9], [0.9, 0.1], [0.9, 0.9]]]),
        },
        (4.0 + 0.0 + 0.0 + 0.0) / 4,  # ReLU(5 - 1), ReLU(0.5 - 1); both pairs of keypoint 1 masked
    ),
    "pca_singleview": (
        {"pca": "line"},
        {"keypoints": torch.tensor([[[[0.0, 0.0], [10.0, 2.0]], [[0.0, 0.0], [10.0, 5.0]]]], dtype=torch.float64)},
        None,  # computed in the test from the PCA
    ),
}
HAND["pca_multiview"] = HAND["pca_singleview"]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_matches_a_hand_computation(name):
    assert name in HAND, f"add a hand computation for loss {name!r}"
    params, inputs, expected = HAND[name]
    if params.get("pca") == "line":
        pca = _line_pca()
        params = {"pca": pca}
        # Frame 0 lies on the model (error 0). In frame 1 keypoint 1 is 3 px too low: with 2
        # components (the x and y translations), the residual splits evenly: 1.5 px per keypoint.
        assert np.allclose(pca.reconstruction_error(inputs["keypoints"][0].numpy()), [[0, 0], [1.5, 1.5]], atol=1e-6)
        expected = (0 + 0 + 0.5 + 0.5) / 4  # ReLU(error - epsilon 1.0), mean over 4 entries
    assert torch.isclose(build_loss(name, **params)(inputs).double(), torch.tensor(expected, dtype=torch.float64))


def tiny_cfg(**overrides):
    items = [f"{k}={v}" for k, v in overrides.items()]
    return load_config(
        overrides=["model.backbone=resnet18", "model.backbone_pretrained=false", "data.image_resize_dims.height=64", "data.image_resize_dims.width=96", *items]
    )


@pytest.mark.parametrize("model_type", ["heatmap", "regression"])
def test_pose_model_forward_and_training_step(model_type):
    torch.manual_seed(0)
    model = PoseModel(tiny_cfg(**{"model.model_type": model_type}), num_keypoints=3)
    images = torch.rand(2, 3, 64, 96)
    out = model(images)
    assert out["keypoints"].shape == (2, 3, 2) and out["likelihood"].shape == (2, 3)
    assert ((out["likelihood"] >= 0) & (out["likelihood"] <= 1)).all()
    if model_type == "heatmap":
        assert out["heatmaps"].shape == (2, 3, 16, 24)
    keypoints = torch.tensor([[[10.0, 20.0], [50.0, 30.0], [float("nan"), float("nan")]]] * 2)
    model.log = lambda *a, **k: None  # no trainer attached
    loss = model.training_step({"image": images, "keypoints": keypoints, "orig_hw": torch.tensor([[64.0, 96.0]] * 2)}, 0)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.head.parameters().__next__().grad is not None
    assert model.step_graph is None  # CUDA graphs only on GPUs


def test_schedules():
    step = StepSchedule([2, 4], 0.5)
    assert [step(e) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    warm = BackboneWarmup(2)
    assert [warm(e) for e in range(4)] == [0.0, 0.0, 0.1, pytest.approx(0.15)]
    assert BackboneWarmup(0)(0) == 1.0


@pytest.mark.parametrize("model_type", ["heatmap", "regression", "heatmap_mhcrnn"])
def test_batches_of_several_runs_equal_each_run_alone(model_type, monkeypatch):
    """What prediction does: pieces of several videos in one padded batch (on a GPU replayed as
    CUDA graphs) give each piece's own predictions."""
    from lightning_pose_lib.predict import _Network

    context = model_type == "heatmap_mhcrnn"
    cfg = tiny_cfg(**{"model.model_type": model_type, "model.do_context": str(context).lower()})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = PoseModel(cfg, 3).to(device).eval()
    runs = [torch.rand(n, 3, 64, 96, device=device) for n in (9, 14)]
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # exact fp32: only the summation order differs
    network = _Network(model, batch_size=28, precision="fp32", compile=False)
    for _ in range(2):  # the second call replays the captured graphs on a GPU
        together = network(runs)
    with torch.inference_mode():
        alone = [model.forward_sequence(run) for run in runs]
    for key in ("keypoints", "likelihood"):
        expected = torch.cat([a[key] for a in alone])
        assert together[key].shape == expected.shape == (23 - (8 if context else 0), *expected.shape[1:])
        torch.testing.assert_close(together[key], expected, atol=1e-3, rtol=1e-3)


class HostRoundTrips(TorchDispatchMode):
    """Records the operations that, on a GPU, would make the CPU wait for it or could not be
    captured in a CUDA graph: copies from the host, asynchronous or not, and operations mixing host
    tensors with device ones. (Values read back, such as ``.item()`` or selecting by a mask, raise
    on the meta device by themselves.)"""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        host = [t for t in tensors if t.device.type == "cpu"]
        to_device = any(t.device.type == "meta" for t in tensors) or kwargs.get("device") not in (None, torch.device("cpu"))
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default) and host and to_device:
            self.seen.append(f"copy from the host in {func}")
        elif any(t.dim() > 0 for t in host) and any(t.device.type == "meta" for t in tensors):
            self.seen.append(f"host tensor used with device tensors in {func}")
        return func(*args, **kwargs)


@pytest.mark.parametrize("model_type", ["heatmap", "regression", "heatmap_mhcrnn"])
def test_training_step_reads_nothing_back_and_copies_nothing_in(model_type):
    """A training step (augmentation, supervised and unsupervised losses, backward) runs on the
    meta device, where nothing can be read back, and copies nothing from the host: on a GPU the CPU
    then queues the next step while this one runs (data loading overlaps), and the step can be
    captured as a CUDA graph (which cannot hold a copy from host memory)."""
    context = model_type == "heatmap_mhcrnn"
    semi = {} if model_type == "regression" else {"model.losses_to_use": "[temporal,pca_singleview]", "data.columns_for_singleview_pca": "[0,1]"}
    model = PoseModel(tiny_cfg(**{"model.model_type": model_type, "model.do_context": str(context).lower(), **semi}), num_keypoints=2)
    model.use_unsupervised_losses({"singleview": _line_pca()})
    model.log = lambda *a, **k: None  # no trainer attached
    model.unsupervised_importance = lambda: 1.0
    model = model.to("meta")
    images = torch.rand(2, *((5,) if context else ()), 3, 64, 96, device="meta")
    batch = {
        "labeled": {"image": images, "keypoints": torch.rand(2, 2, 2, device="meta"), "orig_hw": torch.rand(2, 2, device="meta")},
        "unlabeled": {"frames": torch.zeros(1, 8, 3, 64, 96, dtype=torch.uint8, device="meta"), "orig_hw": torch.rand(1, 2, device="meta")},
    }
    with HostRoundTrips() as mode:
        model.training_step(batch, 0).backward()
    assert mode.seen == []


@pytest.mark.parametrize("model_type", ["heatmap", "heatmap_mhcrnn"])
def test_one_backbone_pass_over_labeled_and_unlabeled_frames_equals_two(model_type):
    """Training runs the backbone once over the labeled frames and the clips together; with batch
    norm on its running statistics (eval mode) that is exactly two separate passes."""
    torch.manual_seed(0)
    context = model_type == "heatmap_mhcrnn"
    cfg = tiny_cfg(**{"model.model_type": model_type, "model.do_context": str(context).lower(), "training.imgaug": "none",
                      "model.losses_to_use": "[temporal,pca_singleview]", "data.columns_for_singleview_pca": "[0,1]"})
    model = PoseModel(cfg, num_keypoints=2).eval()
    model.use_unsupervised_losses({"singleview": _line_pca()})
    model.log = lambda *a, **k: None
    model.unsupervised_importance = lambda: 1.0
    labeled = {"image": torch.rand(3, *((5,) if context else ()), 3, 64, 96), "keypoints": torch.rand(3, 2, 2) * 50, "orig_hw": torch.full((3, 2), 64.0)}
    clips = {"frames": torch.randint(0, 256, (2, 8, 3, 64, 96), dtype=torch.uint8), "orig_hw": torch.tensor([[64.0, 96.0], [128.0, 192.0]])}
    seen = []
    unsupervised = model._unsupervised
    model._unsupervised = lambda features, orig_hw: seen.append(features) or unsupervised(features, orig_hw)
    with torch.no_grad():
        together = model.training_step({"labeled": labeled, "unlabeled": clips}, 0)
        supervised = model._supervised_loss(model(labeled["image"]), labeled["keypoints"])
        alone = model.features(clips["frames"].float() / 255)
    torch.testing.assert_close(seen[0], alone, rtol=1e-4, atol=1e-5)  # each clip frame's own features
    torch.testing.assert_close(together, supervised + unsupervised(alone, clips["orig_hw"])["total"], rtol=1e-4, atol=1e-5)


def test_training_values_are_logged_only_on_the_steps_lightning_writes(tmp_path):
    """self.log costs CPU time in every step; training values are logged on the steps whose values
    Lightning writes (every log_every_n_steps), and those steps have all of them."""
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    torch.manual_seed(0)
    model = PoseModel(tiny_cfg(**{"training.imgaug": "none"}), num_keypoints=2)
    batches = [{"image": torch.rand(2, 3, 64, 96), "keypoints": torch.rand(2, 2, 2) * 50, "orig_hw": torch.full((2, 2), 64.0)} for _ in range(6)]
    calls = []
    log = model.log
    model.log = lambda name, *a, **k: calls.append(name) or log(name, *a, **k)
    trainer = pl.Trainer(max_steps=6, log_every_n_steps=3, logger=CSVLogger(tmp_path, name="", version=0), limit_val_batches=0,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, torch.utils.data.DataLoader(batches, batch_size=None))
    assert calls.count("train_total_loss") == 2 and calls.count("train_heatmap_kl_loss") == 2
    import pandas as pd

    logged = pd.read_csv(tmp_path / "version_0" / "metrics.csv")
    assert sorted(logged.dropna(subset=["train_total_loss"])["step"]) == [2, 5]
