"""Training with the backbone replayed as CUDA graphs equals training eagerly (GPU only)."""

import copy

import pytest
import torch

from lightning_pose_lib.models.backbones import create_backbone
from lightning_pose_lib.models.cuda_graphs import TrainingGraph
from lightning_pose_lib.models.pose_model import PoseModel
from test_models import _line_pca, tiny_cfg

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def _deterministic():
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False


@pytest.mark.parametrize("autocast", [False, True])
def test_replayed_steps_equal_eager_steps(autocast):
    """Three SGD steps on new inputs each: the same parameters, gradients and batch-norm
    statistics as eager steps (which also shows the capture's warm-up left the statistics alone);
    an input of another shape does not fit the graph."""
    _deterministic()
    torch.manual_seed(0)
    eager = create_backbone("resnet18").cuda().train()
    graphed = copy.deepcopy(eager)
    inputs = [torch.rand(4, 3, 64, 96, device="cuda") for _ in range(3)]
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast)
    with amp:
        graph = TrainingGraph(graphed, inputs[0])
    assert not graph.fits(inputs[0][:2])
    for model, run in ((eager, eager), (graphed, graph)):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in inputs:
            optimizer.zero_grad(set_to_none=True)
            with amp:
                loss = run(x).float().square().mean()
            loss.backward()
            optimizer.step()
    for (name, a), b in zip(eager.state_dict().items(), graphed.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4, msg=lambda m: f"{name}: {m}")
    for a, b in zip(eager.parameters(), graphed.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("model_type", ["heatmap", "heatmap_mhcrnn"])
def test_pose_model_training_steps_with_and_without_graphs(model_type):
    """A semi-supervised model's training steps give the same losses with ``training.cuda_graphs``
    on as off; the graph is captured once, and validation (no gradients) runs eagerly."""
    _deterministic()
    context = model_type == "heatmap_mhcrnn"
    losses = {}
    for graphs in (False, True):
        torch.manual_seed(0)
        cfg = tiny_cfg(**{"model.model_type": model_type, "model.do_context": str(context).lower(), "training.imgaug": "none",
                          "model.losses_to_use": "[temporal,pca_singleview]", "data.columns_for_singleview_pca": "[0,1]",
                          "training.cuda_graphs": str(graphs).lower()})
        model = PoseModel(cfg, num_keypoints=2)
        model.use_unsupervised_losses({"singleview": _line_pca()})
        model.log = lambda *a, **k: None
        model.unsupervised_importance = lambda: 1.0
        model.cuda().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        generator = torch.Generator().manual_seed(1)
        losses[graphs] = []
        for _ in range(3):
            labeled = {"image": torch.rand(3, *((5,) if context else ()), 3, 64, 96, generator=generator),
                       "keypoints": torch.rand(3, 2, 2, generator=generator) * 50, "orig_hw": torch.full((3, 2), 64.0)}
            clips = {"frames": torch.randint(0, 256, (2, 8, 3, 64, 96), dtype=torch.uint8, generator=generator), "orig_hw": torch.tensor([[64.0, 96.0]] * 2)}
            batch = {"labeled": labeled, "unlabeled": clips}
            batch = {k: {n: t.cuda() for n, t in part.items()} for k, part in batch.items()}
            optimizer.zero_grad(set_to_none=True)
            loss = model.training_step(batch, 0)
            loss.backward()
            optimizer.step()
            losses[graphs].append(loss.item())
        assert (model.backbone_graph is not None) == graphs
        with torch.no_grad():
            model(labeled["image"].cuda())  # another shape, no gradients: eager
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-5)
