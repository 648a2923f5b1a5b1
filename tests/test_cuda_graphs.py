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
        graph = TrainingGraph(lambda x: {"features": graphed(x)}, [inputs[0]], graphed.parameters(), state=list(graphed.buffers()))
    assert graph.fits([inputs[1]]) and not graph.fits([inputs[0][:2]])
    for model, run in ((eager, eager), (graphed, lambda x: graph(x)["features"])):
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


def _semi_supervised_model(model_type, **overrides):
    context = model_type == "heatmap_mhcrnn"
    semi = {} if model_type == "regression" else {"model.losses_to_use": "[temporal,pca_singleview]", "data.columns_for_singleview_pca": "[0,1]"}
    cfg = tiny_cfg(**{"model.model_type": model_type, "model.do_context": str(context).lower(), **semi, **overrides})
    model = PoseModel(cfg, num_keypoints=2)
    model.use_unsupervised_losses({"singleview": _line_pca()})
    model.log = lambda *a, **k: None
    model.unsupervised_importance = lambda: 0.5
    return model.cuda().train()


def _batch(generator, context):
    labeled = {"image": torch.randint(0, 256, (3, *((5,) if context else ()), 3, 64, 96), dtype=torch.uint8, generator=generator),
               "keypoints": torch.rand(3, 2, 2, generator=generator) * 50, "orig_hw": torch.full((3, 2), 64.0)}
    clips = {"frames": torch.randint(0, 256, (2, 8, 3, 64, 96), dtype=torch.uint8, generator=generator), "orig_hw": torch.tensor([[64.0, 96.0]] * 2)}
    return {k: {n: t.cuda() for n, t in part.items()} for k, part in {"labeled": labeled, "unlabeled": clips}.items()}


@pytest.mark.parametrize("model_type", ["heatmap", "regression", "heatmap_mhcrnn"])
def test_pose_model_training_steps_with_and_without_graphs(model_type):
    """Training steps (supervised and unsupervised losses, backward, optimizer) of each model type
    give the same losses and weights with ``training.cuda_graphs`` on as off: the whole step is
    captured once; validation (no gradients) then runs eagerly."""
    _deterministic()
    context = model_type == "heatmap_mhcrnn"
    losses, weights = {}, {}
    for graphs in (False, True):
        torch.manual_seed(0)
        model = _semi_supervised_model(model_type, **{"training.imgaug": "none", "training.cuda_graphs": str(graphs).lower()})
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(1)
        losses[graphs] = []
        for _ in range(3):
            batch = _batch(generator, context)
            optimizer.zero_grad(set_to_none=True)
            loss = model.training_step(batch, 0)
            loss.backward()
            optimizer.step()
            losses[graphs].append(loss.item())
        assert isinstance(model.step_graph, TrainingGraph) == graphs
        weights[graphs] = [p.detach().clone() for p in model.parameters()]
        with torch.no_grad():
            model.validation_step(batch["labeled"], 0)  # another shape, no gradients: eager
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weights[True], weights[False], rtol=1e-3, atol=1e-4)


def test_replayed_steps_draw_new_augmentations():
    """The augmentation's random numbers are drawn anew at each replay, not frozen at capture: the
    same batch gives a different loss each step (and the same two steps again from the same seed)."""
    model = _semi_supervised_model("heatmap", **{"training.imgaug": "dlc"})
    batch = _batch(torch.Generator().manual_seed(1), context=False)
    model.training_step(batch, 0)  # captures (no optimizer: only the augmentation changes the loss)
    runs = []
    for _ in range(2):
        torch.cuda.manual_seed(5)
        runs.append([model.training_step(batch, 0).item() for _ in range(2)])
    assert isinstance(model.step_graph, TrainingGraph)
    assert runs[0][0] != runs[0][1] and runs[0] == runs[1]
