"""Pretrained weights: the download into the cache (checksum checked, written atomically), training
from the cache offline, and the error when neither the cache nor the network has them. A web
server on the loopback interface stands in for download.pytorch.org, serving a generated file."""

import functools
import hashlib
import http.server
import importlib.util
import threading

import pytest
import torch
import yaml

from conftest import ROOT, tiny_overrides
from lightning_pose_lib.config import load_config
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.models import backbones
from lightning_pose_lib.models.backbones import Weights, create_backbone, fetch_weights, load_pretrained
from lightning_pose_lib.predict import load_model
from lightning_pose_lib.train import train

spec = importlib.util.spec_from_file_location("fetch_weights_script", ROOT / "scripts/fetch_weights.py")
fetch_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_script)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    stated_sha256 = {}  # file name -> what the server says its SHA-256 is, as Hugging Face does

    def end_headers(self):
        if self.path.lstrip("/") in self.stated_sha256:
            self.send_header("X-Linked-Etag", f'"{self.stated_sha256[self.path.lstrip("/")]}"')
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A generated resnet18 weights file (torchvision's layout, classifier included) served at
    http://127.0.0.1:<port>/; yields (Weights for it, its state dict, a function stopping the server)."""
    torch.manual_seed(1)
    source = create_backbone("resnet18")
    trunk = {k.removeprefix("net."): v for k, v in source.state_dict().items()}
    state = {**trunk, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    served = tmp_path / "served"
    served.mkdir()
    staged = served / "weights.pth"
    torch.save(state, staged)
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    name = f"resnet18-{digest[:8]}.pth"  # torchvision's naming
    staged.rename(served / name)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop():
        if thread.is_alive():
            httpd.shutdown()
            httpd.server_close()
            thread.join()

    yield Weights(f"http://127.0.0.1:{httpd.server_address[1]}/{name}", digest), source.state_dict(), stop
    stop()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def assert_same_weights(found, state):
    for key, value in state.items():
        assert torch.equal(found[key], value), key


def test_download_is_checked_and_then_used_offline(server, torch_home, monkeypatch):
    weights, state, stop = server
    monkeypatch.setitem(backbones.PRETRAINED, "resnet18", weights)
    fetch_script.cli_main(["resnet18"])  # into $TORCH_HOME/hub/checkpoints, the default
    path = torch_home / weights.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == weights.sha256
    assert sorted(p.name for p in torch_home.iterdir()) == [weights.file_name]  # no temporary left
    stop()  # offline from here on
    assert fetch_weights(weights, torch_home) == path  # verified in the cache: no download
    assert_same_weights(create_backbone("resnet18", pretrained=True).state_dict(), state)


def test_wrong_checksum_is_refused_and_nothing_is_kept(server, tmp_path):
    weights, _, _ = server
    wrong = Weights(weights.url, "0" * 64)
    with pytest.raises(InputError) as err:
        fetch_weights(wrong, tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message and f"expected {'0' * 64}" in message and weights.sha256 in message
    assert list((tmp_path / "cache").iterdir()) == []
    # A corrupted cached file is replaced by a good download.
    (tmp_path / "cache" / weights.file_name).write_bytes(b"truncated")
    fetch_weights(weights, tmp_path / "cache")
    assert hashlib.sha256((tmp_path / "cache" / weights.file_name).read_bytes()).hexdigest() == weights.sha256


def test_offline_without_cache_is_an_error_naming_the_fix_unless_random_init_is_allowed(server, torch_home, monkeypatch):
    weights, _, stop = server
    stop()  # nothing listens at the URL: as on a compute node without network
    monkeypatch.setitem(backbones.PRETRAINED, "resnet18", weights)
    with pytest.raises(InputError) as err:
        create_backbone("resnet18", pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{torch_home / weights.file_name}: no verified pretrained weights for resnet18 here and the download failed")
    assert f"python scripts/fetch_weights.py --dir {torch_home} resnet18" in message and "weights file" in message
    with pytest.warns(UserWarning, match="random initialisation"):
        create_backbone("resnet18", pretrained=True, allow_random_init=True)
    with pytest.raises(InputError, match="download failed"):  # the script says the same in one line
        fetch_script.cli_main(["--dir", str(torch_home), "resnet18"])


def test_training_reads_the_cache_offline_and_prediction_needs_no_weights(server, torch_home, monkeypatch, example_dir, tmp_path):
    weights, state, stop = server
    monkeypatch.setitem(backbones.PRETRAINED, "resnet18", weights)
    fetch_weights(weights, torch_home)
    stop()
    cfg = load_config(overrides=tiny_overrides(example_dir, **{"model.backbone_pretrained": "true", "training.max_epochs": 1}))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="fetch_weights.py"):  # offline, nothing cached: stops before training
        train(cfg, tmp_path / "no_weights")
    assert not (tmp_path / "no_weights" / "checkpoints" / "last.ckpt").exists()

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    loaded = {}

    def spy(model, *args, **kwargs):  # the real loading, then a look at the weights it left
        load_pretrained(model, *args, **kwargs)
        loaded.update({k: v.clone() for k, v in model.state_dict().items()})

    monkeypatch.setattr("lightning_pose_lib.models.pose_model.load_pretrained", spy)
    assert train(cfg, tmp_path / "model") is not None
    assert_same_weights(loaded, state)

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # prediction: no cache, no network
    load_model(tmp_path / "model")


def test_workflow_fetches_the_weights_before_the_trainings_that_need_them(tmp_path):
    from test_workflow import EXAMPLE_CONFIG, dry_run_jobs, snakemake, workdir_with

    config = {
        **EXAMPLE_CONFIG,
        "variants": {
            "pretrained": {"model_config": {"model": {"backbone_pretrained": True}}},
            "scratch": {"model_config": {"model": {"model_type": "heatmap"}}},
        },
    }
    workdir = workdir_with(tmp_path, config)
    models = "results/example/models"
    jobs = dry_run_jobs(workdir, f"{models}/pretrained__seed=0/train_status.json")
    assert jobs["download_weights"] == "1" and jobs["train"] == "1"
    assert "download_weights" not in dry_run_jobs(workdir, f"{models}/scratch__seed=0/train_status.json")
    out = snakemake(workdir, "-n", "fetch_weights")  # the documented target on the login node
    assert out.returncode == 0 and "resources/weights/resnet18-f37072fd.pth" in out.stdout, out.stdout + out.stderr

    # With the file cached, the training job reads it (no network needed) and its resolved config
    # names it. (A generated file stands in for torchvision's: the job does not check the checksum
    # of a file the workflow itself fetched and checked.)
    torch.manual_seed(2)
    source = {k.removeprefix("net."): v for k, v in create_backbone("resnet18").state_dict().items()}  # torchvision's layout
    cached = workdir / "resources/weights/resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(source, cached)
    assert "download_weights" not in dry_run_jobs(workdir, "fetch_weights")
    out = snakemake(workdir, f"{models}/pretrained__seed=0/train_status.json")
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    resolved = yaml.safe_load((workdir / models / "pretrained__seed=0/config.yaml").read_text())
    assert resolved["model"]["backbone_pretrained"] == "resources/weights/resnet18-f37072fd.pth"


def test_hugging_face_file_checked_against_the_stated_checksum_and_loaded(tmp_path, monkeypatch):
    """timm's weights (safetensors, no pinned checksum): a download is kept only when its SHA-256 is
    the one the server states; the file, classifier included, loads into the backbone."""
    from safetensors.torch import save_file

    torch.manual_seed(2)
    source = create_backbone("convnext_tiny")
    served = tmp_path / "served"
    served.mkdir()
    trunk = {k.removeprefix("net."): v.contiguous() for k, v in source.state_dict().items()}
    save_file({**trunk, "head.fc.weight": torch.zeros(1000, 768), "head.fc.bias": torch.zeros(1000)}, served / "model.safetensors")
    digest = hashlib.sha256((served / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setattr(_Quiet, "stated_sha256", {"model.safetensors": "f" * 64})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        weights = Weights(f"http://127.0.0.1:{httpd.server_address[1]}/model.safetensors", file_name="convnext_tiny.test.safetensors")
        with pytest.raises(InputError, match=f"expected {'f' * 64}"):
            fetch_weights(weights, tmp_path / "cache")
        assert list((tmp_path / "cache").iterdir()) == []
        _Quiet.stated_sha256 = {"model.safetensors": digest}
        path = fetch_weights(weights, tmp_path / "cache")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert path.name == "convnext_tiny.test.safetensors"
    assert_same_weights(create_backbone("convnext_tiny", pretrained=str(path)).state_dict(), source.state_dict())


def test_every_pretrained_file_name_is_distinct_and_timm_names_its_default_weights():
    import timm

    names = [w.file_name for w in backbones.PRETRAINED.values()]
    assert len(set(names)) == len(names) == len(backbones.BACKBONES)
    for name in ("convnext_tiny", "efficientnet_b0"):  # registered with timm's default weights
        assert timm.models.get_pretrained_cfg(name).hf_hub_id in backbones.PRETRAINED[name].url
