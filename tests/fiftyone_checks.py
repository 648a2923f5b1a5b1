"""Checks of the FiftyOne dataset the workflow builds (target fiftyone_<dataset>) and of the App
serving it, against the prediction and metric CSVs; used by test_workflow.py on its finished run."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT
from lightning_pose_lib.data.labels import read_labels, read_pose_table
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.viz.fiftyone_view import import_fiftyone, open_app

MODELS = ("supervised__seed=0", "regression__seed=0")
KEYPOINTS = 12


def load_fiftyone_dataset(workdir: Path, name: str):
    summary = json.loads((workdir / f"results/{name}/fiftyone/dataset.json").read_text())
    fo = import_fiftyone(summary["database_dir"])
    return fo.load_dataset(name), summary


def check_fiftyone_dataset(workdir: Path) -> None:
    dataset, summary = load_fiftyone_dataset(workdir, "example")
    labels = read_labels(workdir / "resources/example/CollectedData.csv")
    assert summary["labeled_frames"] == len(labels) == 40 and summary["video_frames"] == 2 * 3
    assert len(dataset) == 46 and dataset.persistent
    # The database is the workflow's (fiftyone.database_dir), not one in the home folder.
    assert summary["database_dir"] == str(workdir / "results/fiftyone_db") and (workdir / "results/fiftyone_db/log/mongo.log").is_file()
    assert dataset.default_skeleton.labels == labels.keypoint_names
    fields = summary["models"]
    assert fields == {m: m.replace("=", "_") for m in MODELS}
    height, width = 128, 256  # the example's frames
    per_frame_error = {}
    for model, field in fields.items():
        folder = workdir / "results/example/models" / model
        predictions = read_pose_table(folder / "predictions.csv")
        errors = pd.read_csv(folder / "predictions_pixel_error.csv", index_col=0)
        xy = predictions.drop(columns=[("set", "", "")]).to_numpy(dtype=float).reshape(40, KEYPOINTS, 3)
        for i, image in enumerate(labels.image_paths):
            sample = dataset.match({"frame_path": image}).first()
            assert sample.filepath == str(workdir / "resources/example" / image)
            assert sample.set == predictions.loc[image, ("set", "", "")] and sample.set in sample.tags
            truth = np.array(sample.ground_truth.keypoints[0].points, dtype=float) * [width, height]
            np.testing.assert_allclose(truth, labels.keypoints[i], atol=1e-9)
            keypoint = sample[field].keypoints[0]
            assert keypoint.label == model
            np.testing.assert_allclose(np.array(keypoint.points, dtype=float) * [width, height], xy[i, :, :2], atol=1e-9)
            np.testing.assert_allclose(keypoint.confidence, xy[i, :, 2])
            np.testing.assert_allclose(keypoint.pixel_error, errors.loc[image, labels.keypoint_names].to_numpy(dtype=float))
            assert sample[f"{field}_pixel_error"] == pytest.approx(errors.loc[image, labels.keypoint_names].astype(float).mean())
            per_frame_error.setdefault(image, []).append(sample[f"{field}_pixel_error"])
        for video in ("session0", "session1"):
            table = read_pose_table(folder / "video_preds" / f"{video}.csv")
            temporal = pd.read_csv(folder / "video_preds" / f"{video}_temporal_norm.csv", index_col=0)
            frames = dataset.match({"video": video}).sort_by("frame")
            assert frames.values("frame") == [0, 20, 39]  # 3 frames evenly over the 40
            for sample in frames:
                keypoint = sample[field].keypoints[0]
                row = table.loc[sample.frame].to_numpy(dtype=float).reshape(KEYPOINTS, 3)
                np.testing.assert_allclose(np.array(keypoint.points, dtype=float) * [width, height], row[:, :2], atol=1e-9)
                np.testing.assert_allclose(keypoint.confidence, row[:, 2])
                np.testing.assert_allclose(keypoint.temporal_norm, temporal.loc[sample.frame].to_numpy(dtype=float), equal_nan=True)
                assert Path(sample.filepath).is_file() and sample.metadata.width == width
    # The saved view: labeled frames, the largest pixel error (mean over keypoints and models) first.
    worst = dataset.load_saved_view("worst_labeled_frames")
    expected = sorted(per_frame_error, key=lambda image: -np.mean(per_frame_error[image]))
    assert worst.values("frame_path") == expected
    assert set(dataset.list_saved_views()) == {"worst_labeled_frames", "jumpiest_video_frames"}
    # The App of a dataset not built: one clear line, before any server starts.
    with pytest.raises(InputError, match=r"no FiftyOne dataset 'nope' in this database \(it has \[.*'example'.*\]\); build it with the target fiftyone_nope"):
        open_app("nope", summary["database_dir"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Chromium (Debian package chromium) on a page, with time for the App's scripts."""
    command = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,900", "--virtual-time-budget=20000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def profile_without_the_enterprise_popover(port: int, profile: Path) -> None:
    """A Chromium profile in which the App at localhost:<port> does not open its "Explore
    Enterprise" pop-over over the figure: the App skips it once its origin's localStorage holds
    `fiftyone-enterprise-tooltip-seen` (what its Dismiss button sets). A page served on the same
    port, before the App starts there, sets that key in the profile."""
    import http.server
    import threading

    page = b"<html><body><script>localStorage.setItem('fiftyone-enterprise-tooltip-seen', 'true')</script>set</body></html>"

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("localhost", port), Page) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        chromium(f"--user-data-dir={profile}", "--dump-dom", f"http://localhost:{port}/")
        server.shutdown()


def check_fiftyone_app(workdir: Path, tmp_path: Path, name: str = "example") -> None:
    """The App serves the dataset's worst labeled frames and Chromium shows them; its screenshot
    becomes the README's figure with LP_FIFTYONE_SCREENSHOT=docs/fiftyone.png."""
    if shutil.which("chromium") is None:
        pytest.skip("no chromium on PATH (Debian package chromium; .ci/run installs it)")
    port = free_port()
    if os.environ.get("LP_FIFTYONE_SCREENSHOT"):
        profile_without_the_enterprise_popover(port, tmp_path / "chromium-profile")
    log = open(tmp_path / "app.log", "w")
    app = subprocess.Popen([sys.executable, str(ROOT / "scripts/fiftyone_app.py"), name, "--port", str(port)], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert app.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://localhost:{port}/", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the App did not answer in 180 s"
                time.sleep(1)
        labeled = json.loads((workdir / f"results/{name}/fiftyone/dataset.json").read_text())["labeled_frames"]
        url = f"http://localhost:{port}/datasets/{name}?view=worst-labeled-frames"
        # The grid's sample count, the saved view and its fields, and drawn samples (canvases); a
        # page that is still loading (a busy machine) is read again, at most three times.
        for _ in range(3):
            dom = chromium("--dump-dom", url).stdout
            text = re.sub(r"\s*(<[^>]*>\s*)+", "|", re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S))
            if f"|{labeled}|samples|" in text and dom.count('canvas-loaded="true"') >= 3:
                break
        assert f"|{labeled}|samples|" in text, text[:3000]
        assert "|worst_labeled_frames|" in text and "|supervised__seed_0|" in text and "|ground_truth|" in text, text[:3000]
        assert dom.count('canvas-loaded="true"') >= 3, text[:3000]
        if os.environ.get("LP_FIFTYONE_SCREENSHOT"):  # in 256 colours: small enough for the repository
            screenshot = tmp_path / "fiftyone.png"
            chromium(f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={screenshot}", url)
            Image.open(screenshot).convert("RGB").quantize(256).save(os.environ["LP_FIFTYONE_SCREENSHOT"], optimize=True)
    finally:
        app.terminate()  # the script stops the App server and database it started
        app.wait(timeout=60)
        log.close()


if __name__ == "__main__":
    # The README's figure from a finished run: python tests/fiftyone_checks.py WORKDIR DATASET OUT.png
    import tempfile

    workdir, name, out = sys.argv[1:4]
    os.environ["LP_FIFTYONE_SCREENSHOT"] = str(Path(out).absolute())
    with tempfile.TemporaryDirectory() as scratch:
        check_fiftyone_app(Path(workdir).absolute(), Path(scratch), name)
    print(f"{out}: the App on {name}'s worst labeled frames")
