# Helpers of the workflow: config validation, the model table (datasets x variants x sweep cells x
# seeds), video lists and input functions. No rule lives here.
import glob
import itertools
import re
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

from lightning_pose_lib.config import load_config, merge
from lightning_pose_lib.errors import InputError


def _with_defaults(schema, value):
    """Fill the schema's defaults in, also inside named entries (datasets, variants), which
    snakemake.utils.validate leaves alone."""
    if not isinstance(value, dict) or schema.get("type") not in ("object", ["object", "null"]):
        return value
    out = dict(value)
    for key, child in schema.get("properties", {}).items():
        if key not in out and "default" in child:
            out[key] = child["default"]
        if key in out:
            out[key] = _with_defaults(child, out[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(out) - set(schema.get("properties", {})):
            out[key] = _with_defaults(extra, out[key])
    return out


validate(config, schema="../schemas/config.schema.yaml", set_default=False)
config.update(_with_defaults(yaml.safe_load((Path(workflow.basedir) / "schemas/config.schema.yaml").read_text()), config))

DATASETS = config["datasets"]


def _value_id(value):
    if isinstance(value, (list, tuple)):
        return "+".join(_value_id(v) for v in value) or "none"
    return str(value)


def _nested(dotted, value):
    node = out = {}
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def _cells(variant_name, variant):
    """(model id, sweep values, seed, model-config overrides) of every sweep cell of a variant."""
    keys = list(variant["sweep"])
    for values in itertools.product(*(variant["sweep"][k] for k in keys)):
        for seed in variant["seeds"]:
            overrides = variant["model_config"]
            parts = [variant_name]
            for key, value in zip(keys, values):
                overrides = merge(overrides, _nested(key, value))
                parts.append(f"{key.split('.')[-1]}={_value_id(value)}")
            overrides = merge(overrides, _nested("training.rng_seed_model_pt", seed))
            parts.append(f"seed={seed}")
            yield "__".join(parts), dict(zip(keys, values)), seed, overrides


def _models_of(dataset):
    names = DATASETS[dataset]["variants"] or list(config["variants"])
    unknown = sorted(set(names) - set(config["variants"]))
    if unknown:
        raise WorkflowError(f"config/config.yaml: dataset {dataset!r} names unknown variants {unknown}")
    models = {}
    for name in names:
        for model_id, sweep, seed, overrides in _cells(name, config["variants"][name]):
            models[model_id] = {"variant": name, "sweep": sweep, "seed": seed, "overrides": overrides}
    return models


MODELS = {dataset: _models_of(dataset) for dataset in DATASETS}


def data_dir(dataset):
    return Path(DATASETS[dataset]["data_dir"])


def dataset_labels(dataset):
    return str(data_dir(dataset) / DATASETS[dataset]["csv_file"])


def labels_csv(wildcards):
    return dataset_labels(wildcards.dataset)


def model_config(dataset, model_id):
    """The resolved model config of one model: base file, dataset, variant, sweep cell, seed."""
    ds = DATASETS[dataset]
    paths = {"data": {"data_dir": str(data_dir(dataset)), "csv_file": ds["csv_file"], "video_dir": ds["video_dir"]}}
    try:
        return load_config(config["model_config"], paths, ds["model_config"], MODELS[dataset][model_id]["overrides"])
    except InputError as err:
        raise WorkflowError(f"model {dataset}/{model_id}: {err}")


def model_config_wc(wildcards):
    return model_config(wildcards.dataset, wildcards.model)


def dataset_videos(dataset):
    """{stem: path} of the videos to predict for a dataset."""
    ds = DATASETS[dataset]
    root = data_dir(dataset)
    if ds["example"] is not None:  # generated: the names are known before the files exist
        return {f"session{i}": str(root / "videos" / f"session{i}.mp4") for i in range(ds["example"]["sessions"])}
    videos = {}
    for entry in ds["predict_videos"]:
        path = root / entry
        if path.suffix == ".txt":
            if not path.is_file():
                raise WorkflowError(f"{path}: video list file not found (datasets.{dataset}.predict_videos)")
            found = [str(root / line.strip()) for line in path.read_text().splitlines() if line.strip()]
        elif glob.has_magic(str(path)):
            found = sorted(glob.glob(str(path)))
        else:
            found = [str(path)]
        for video in found:
            stem = Path(video).stem
            if stem in videos and videos[stem] != video:
                raise WorkflowError(f"{video}: two videos of dataset {dataset!r} share the name {stem!r}")
            videos[stem] = video
    return videos


VIDEOS = {dataset: dataset_videos(dataset) for dataset in DATASETS}


def video_path(wildcards):
    return VIDEOS[wildcards.dataset][wildcards.video]


def model_dir(dataset, model_id):
    return f"results/{dataset}/models/{model_id}"


def video_predictions(wildcards):
    return [f"{model_dir(wildcards.dataset, wildcards.model)}/video_preds/{v}.csv" for v in VIDEOS[wildcards.dataset]]


def model_evaluations(wildcards):
    return [f"{model_dir(wildcards.dataset, m)}/metrics/summary.json" for m in MODELS[wildcards.dataset]]


def model_table(wildcards):
    """Variant, sweep values and seed of each model of a dataset, for the summary table."""
    return {m: {"variant": v["variant"], "seed": v["seed"], **v["sweep"]} for m, v in MODELS[wildcards.dataset].items()}


def dataset_targets(dataset):
    """What a run of one dataset makes: the summary table and plots, and the diagnostics. For
    `snakemake --report`, only those that exist, so that a report shows whatever has been run
    (Snakemake refuses a report when a report item in its job graph is missing)."""
    targets = [f"results/{dataset}/summary.csv", *diagnostics_targets(dataset)]
    return [t for t in targets if Path(t).exists()] if REPORTING else targets


# The Snakefile cannot otherwise know that it is being read for a report.
REPORTING = any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv)


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="[A-Za-z0-9_=+.,-]+",
    # Only the known video stems, so that metric files next to the predictions
    # (video_preds/<video>_temporal_norm.csv) are never taken for a video's predictions.
    video="|".join(sorted({re.escape(v) for videos in VIDEOS.values() for v in videos}, key=len, reverse=True)) or "[^/]+",


def model_priority(dataset, model):
    """Scheduling priority of a model's jobs: the models of a dataset in the config's order, each
    one's predictions and evaluation before the next one's training. With fewer cores than models,
    the first model's results (metrics, labeled videos) come while the others still train."""
    models = list(MODELS[dataset])
    return len(models) - models.index(model)


def model_priority_wc(wildcards):
    return model_priority(wildcards.dataset, wildcards.model)


def model_dir_wc(wildcards):
    return model_dir(wildcards.dataset, wildcards.model)


# --- Diagnostics: metric files, model comparison, visual checks (rules/evaluate.smk) ---------------
import functools

from lightning_pose_lib.metrics import metrics_for

DIAGNOSTICS = config["diagnostics"]


@functools.lru_cache(maxsize=None)
def model_metric_names(dataset, model, labeled):
    """The metrics a model's config asks for (pixel error or temporal norm, plus the PCA errors)."""
    return tuple(metrics_for(model_config(dataset, model), labeled))


def models_by_metrics(dataset):
    """{(labeled metrics, video metrics): [models]} of a dataset (one evaluation rule each)."""
    groups = {}
    for model in MODELS[dataset]:
        key = (model_metric_names(dataset, model, True), model_metric_names(dataset, model, False))
        groups.setdefault(key, []).append(model)
    return groups


def video_metric_pairs(dataset, model):
    """(video, metric) of every video metric file of a model, in a fixed order."""
    return [(v, m) for v in VIDEOS[dataset] for m in model_metric_names(dataset, model, False)]


def dataset_video_metric_pairs(dataset):
    return [(model, m) for model in MODELS[dataset] for _, m in video_metric_pairs(dataset, model)]


def dataset_video_metric_files(wildcards):
    return [
        f"{model_dir(wildcards.dataset, model)}/video_preds/{v}_{m}.csv"
        for model in MODELS[wildcards.dataset]
        for v, m in video_metric_pairs(wildcards.dataset, model)
    ]


def compare_models(dataset):
    """Models shown side by side (galleries, traces) and drawn in labeled videos."""
    wanted = DIAGNOSTICS["compare_models"]
    if wanted is None:
        return list(MODELS[dataset])[:6]
    unknown = sorted(set(wanted) - {m for models in MODELS.values() for m in models})
    if unknown:
        raise WorkflowError(f"config/config.yaml: diagnostics.compare_models names unknown models {unknown}")
    return [m for m in wanted if m in MODELS[dataset]] or list(MODELS[dataset])[:6]


def diagnostic_videos(dataset):
    wanted = DIAGNOSTICS["videos"]
    if wanted is None:
        return list(VIDEOS[dataset])
    unknown = sorted(set(wanted) - {v for videos in VIDEOS.values() for v in videos})
    if unknown:
        raise WorkflowError(f"config/config.yaml: diagnostics.videos names unknown videos {unknown}")
    return [v for v in wanted if v in VIDEOS[dataset]]


def sweeps_train_frames(dataset):
    return any("training.train_frames" in m["sweep"] for m in MODELS[dataset].values())


def diagnostics_targets(dataset):
    out = [
        f"results/{dataset}/plots/gallery_worst_frames.png",
        *(f"results/{dataset}/plots/traces/{v}.png" for v in diagnostic_videos(dataset)),
    ]
    if sweeps_train_frames(dataset):
        out.append(f"results/{dataset}/plots/pixel_error_vs_train_frames.png")
    if DIAGNOSTICS["labeled_videos"]:
        out += [
            f"{model_dir(dataset, m)}/video_preds/labeled_videos/{v}_labeled.mp4"
            for m in compare_models(dataset)
            for v in diagnostic_videos(dataset)
        ]
    return out


# --- Batch prediction: videos in chunks, one model load per chunk (rules/predict.smk) ------------


def _video_chunks(dataset):
    """{chunk id: [video stems]}: the dataset's videos in name order, predict.videos_per_job each."""
    stems = sorted(VIDEOS[dataset])
    size = config["predict"]["videos_per_job"]
    return {f"chunk{i // size:04d}": stems[i : i + size] for i in range(0, len(stems), size)}


CHUNKS = {dataset: _video_chunks(dataset) for dataset in DATASETS}
CHUNK_OF = {dataset: {stem: chunk for chunk, stems in CHUNKS[dataset].items() for stem in stems} for dataset in DATASETS}


def prediction_store(dataset, model_id):
    """Where prediction jobs write; Snakemake never deletes it (it is no rule's declared output)."""
    return f"{model_dir(dataset, model_id)}/video_preds/.store"


def chunk_videos(wildcards):
    return [VIDEOS[wildcards.dataset][stem] for stem in CHUNKS[wildcards.dataset][wildcards.chunk]]


def chunk_manifest(wildcards):
    chunk = CHUNK_OF[wildcards.dataset][wildcards.video]
    return f"{prediction_store(wildcards.dataset, wildcards.model)}/{chunk}.json"


def prediction_store_wc(wildcards):
    return prediction_store(wildcards.dataset, wildcards.model)


# --- Throughput benchmark: an explicit target, never part of `all` (rules/benchmark.smk) ---------
from lightning_pose_lib.data.unlabeled import list_videos

BENCHMARK = config["benchmark"]
# Resolved from the workflow's own folder, so that any working directory (--directory) works.
BENCHMARK_SCRIPT = str(Path(workflow.basedir).parent / "benchmarks" / "throughput.py")


def benchmark_datasets():
    wanted = BENCHMARK["datasets"]
    if wanted is None:
        return list(DATASETS)
    unknown = sorted(set(wanted) - set(DATASETS))
    if unknown:
        raise WorkflowError(f"config/config.yaml: benchmark.datasets names unknown datasets {unknown}")
    return list(wanted)


def benchmark_targets():
    return [f"results/benchmarks/{d}/throughput_{kind}.json" for d in benchmark_datasets() for kind in BENCHMARK["kinds"]]


def benchmark_video(wildcards):
    """The video benchmarks/throughput.py copies: the first (by name) of <data_dir>/videos/. The
    script reads the label CSV and the videos by those fixed names, whatever the dataset's
    csv_file and video_dir say."""
    dataset = wildcards.dataset
    ds = DATASETS[dataset]
    if ds["csv_file"] != "CollectedData.csv":
        raise WorkflowError(
            f"benchmark of dataset {dataset!r}: benchmarks/throughput.py reads <data_dir>/CollectedData.csv, "
            f"but datasets.{dataset}.csv_file is {ds['csv_file']!r}"
        )
    folder = data_dir(dataset) / "videos"
    if ds["example"] is not None:  # generated into <data_dir>/videos/ by make_example_<dataset>
        return sorted(VIDEOS[dataset].values())[0]
    videos = list_videos(folder) if folder.is_dir() else []
    if not videos:
        raise WorkflowError(
            f"{folder}: {'no video in this folder' if folder.is_dir() else 'video folder not found'}; the benchmark of "
            f"dataset {dataset!r} (benchmarks/throughput.py) predicts copies of the first video of <data_dir>/videos/"
        )
    return videos[0]


def benchmark_args(wildcards):
    """benchmarks/throughput.py's arguments (all but --out) from the config's benchmark: section."""
    b = BENCHMARK
    args = [
        "--data", str(data_dir(wildcards.dataset)),
        "--copies", b["copies"], "--backbone", b["backbone"], "--size", b["size"], "--batch", b["batch"],
        "--decoders", b["decoders"], "--train-epochs", b["train_epochs"], "--train-steps", b["train_steps"],
        "--backend", config["predict"]["backend"],
    ]
    if wildcards.model_kind == "context":
        args.append("--context")
    if b["compile"]:
        args.append("--compile")
    return [str(a) for a in args]
