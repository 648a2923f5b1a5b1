# Helpers of the workflow: config validation, the model table (datasets x variants x sweep cells x
# seeds), video lists and input functions. No rule lives here.
import glob
import itertools
import re
import sys
from pathlib import Path

import yaml

from lightning_pose_lib.config import first_error, load_config, merge, read_yaml
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


def _validate_config(schema):
    """One line naming the config file and the key (Snakemake's validate prints the whole schema)."""
    found = first_error(config, schema)
    if found is None:
        return
    path, problem = found
    print(f"error: {_config_source(path)}: {problem}", file=sys.stderr)
    sys.exit(2)


def _config_source(path):
    """The last config file that sets the key ``path`` (they apply in order), or --config."""
    for configfile in reversed(workflow.configfiles):
        node = yaml.safe_load(Path(configfile).read_text()) if Path(configfile).is_file() else None
        for key in path:
            node = node.get(key) if isinstance(node, dict) and key in node else None
            if node is None:
                break
        if node is not None:
            return configfile
    return "--config" if path else (workflow.configfiles or ["config"])[-1]


CONFIG_SCHEMA = yaml.safe_load((Path(workflow.basedir) / "schemas/config.schema.yaml").read_text())
_validate_config(CONFIG_SCHEMA)
config.update(_with_defaults(CONFIG_SCHEMA, config))

DATASETS = config["datasets"]


# --- Imported datasets: a DeepLabCut project, SLEAP labels, a Lightning Pose config (rules/import.smk) ---
import logging

from lightning_pose_lib import formats

if not workflow.is_main_process:  # jobs read the config again; their warnings were said by the main process
    logging.getLogger(formats.__name__).setLevel(logging.ERROR)


def _imported(function, dataset):
    try:
        return function(DATASETS[dataset]["import"])
    except InputError as err:
        raise WorkflowError(f"datasets.{dataset}.import: {err}")


def imported_videos(dataset):
    """The project's videos, predicted as they are (the import links them for training only)."""
    return [str(Path(v).absolute()) for v in _imported(formats.videos, dataset)]


def imported_model_config(dataset):
    """The model config keys an imported project sets (a Lightning Pose config's), else none."""
    return {} if DATASETS[dataset]["import"] is None else _imported(formats.model_config, dataset)


def import_inputs(dataset):
    return _imported(formats.inputs, dataset)


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
    if DATASETS[dataset]["import"] is not None:  # written by rule import_<dataset>
        return Path(f"results/{dataset}/data")
    return Path(DATASETS[dataset]["data_dir"])


def example_cameras(dataset):
    """The camera names of a generated multi-camera example (none for other datasets)."""
    example = DATASETS[dataset]["example"]
    if example is None or not example["cameras"]:
        return []
    from lightning_pose_lib.example import CAMERA_NAMES

    return list(CAMERA_NAMES[: example["cameras"]])


def dataset_csv_file(dataset):
    """The label CSV(s), relative to data_dir: a generated multi-camera example's are known."""
    cameras = example_cameras(dataset)
    return [f"CollectedData_{c}.csv" for c in cameras] if cameras else DATASETS[dataset]["csv_file"]


def dataset_labels(dataset):
    """The label CSV, or with several cameras the list of the views' CSVs."""
    csv_file = dataset_csv_file(dataset)
    return [str(data_dir(dataset) / f) for f in csv_file] if isinstance(csv_file, list) else str(data_dir(dataset) / csv_file)


def labels_csv(wildcards):
    return dataset_labels(wildcards.dataset)


def model_config_layers(dataset, model_id):
    """What a model's config is made of, over the library's defaults: base file, imported
    project, the dataset's paths and model_config, variant, sweep cell, seed."""
    ds = DATASETS[dataset]
    paths = {"data": {"data_dir": str(data_dir(dataset)), "csv_file": dataset_csv_file(dataset), "video_dir": ds["video_dir"]}}
    if example_cameras(dataset):
        paths["data"]["view_names"] = example_cameras(dataset)
    return [config["model_config"], imported_model_config(dataset), paths, ds["model_config"], MODELS[dataset][model_id]["overrides"]]


def model_config(dataset, model_id):
    """The resolved model config of one model (the library's defaults and its layers), validated."""
    try:
        return load_config(*model_config_layers(dataset, model_id))
    except InputError as err:
        raise WorkflowError(f"model {dataset}/{model_id}: {err}")


def model_settings(dataset, model_id):
    """The keys a model's layers set, merged, without the library's defaults: what its training
    job is given (and Snakemake compares to rerun it), so that a key the library adds later with
    its default retrains no existing model. The model's config.yaml keeps the full config."""
    model_config(dataset, model_id)  # validated as a whole
    settings = {}
    for layer in model_config_layers(dataset, model_id):
        settings = merge(settings, read_yaml(layer) if isinstance(layer, (str, Path)) else layer)
    return settings


def dataset_videos(dataset):
    """{stem: path} of the videos to predict for a dataset."""
    ds = DATASETS[dataset]
    root = data_dir(dataset)
    if ds["example"] is not None:  # generated: the names are known before the files exist
        names = [f"session{i}{view}" for i in range(ds["example"]["sessions"]) for view in ([f"_{c}" for c in example_cameras(dataset)] or [""])]
        return {name: str(root / "videos" / f"{name}.mp4") for name in names}
    videos = {}
    for entry in ds["predict_videos"] if ds["import"] is None else imported_videos(dataset):
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
    """The metric summaries of a dataset's models, then of its ensembles (rules/ensemble.smk)."""
    return [f"{folder}/metrics/summary.json" for folder in evaluated(wildcards.dataset).values()]


def model_table(wildcards):
    """Variant, sweep values and seed of each model of a dataset, then its ensembles (variant
    "ensemble"), for the summary table."""
    models = {m: {"variant": v["variant"], "seed": v["seed"], **v["sweep"]} for m, v in MODELS[wildcards.dataset].items()}
    return {**models, **{e: {"variant": "ensemble"} for e in ENSEMBLES[wildcards.dataset]}}


def dataset_targets(dataset):
    """What a run of one dataset makes: the summary table and plots, the diagnostics and the
    export. For `snakemake --report`, only those that exist, so that a report shows whatever has
    been run (Snakemake refuses a report when a report item in its job graph is missing)."""
    targets = [f"results/{dataset}/summary.csv", *diagnostics_targets(dataset), *export_targets(dataset), *ensemble_targets(dataset)]
    return [t for t in targets if Path(t).exists()] if REPORTING else targets


# The Snakefile cannot otherwise know that it is being read for a report.
REPORTING = any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv)


def export_targets(dataset):
    """The files of the export: section (rules/export.smk)."""
    if not config["export"]["nwb"]:
        return []
    return [f"{model_dir(dataset, m)}/video_preds/{v}.nwb" for m in MODELS[dataset] for v in VIDEOS[dataset]]


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

from lightning_pose_lib.metrics import metrics_for, truth_path

DIAGNOSTICS = config["diagnostics"]


@functools.lru_cache(maxsize=None)
def model_metric_names(dataset, model, labeled):
    """The metrics a model's config asks for (pixel error or temporal norm, plus the PCA errors),
    and on videos of the generated example, whose every frame has its truth, the error from it."""
    truth = ("truth_error",) if not labeled and DATASETS[dataset]["example"] is not None else ()
    return tuple(metrics_for(model_config(dataset, model), labeled)) + truth


def video_metric_pairs(dataset, model):
    """(video, metric) of every video metric file of a model or ensemble, in a fixed order."""
    if model in ENSEMBLES[dataset]:
        return [(v, m) for v in VIDEOS[dataset] for m in ensemble_metric_names(dataset, model, False)]
    return [(v, m) for v in VIDEOS[dataset] for m in model_metric_names(dataset, model, False)]


def dataset_video_metric_pairs(dataset):
    return [(model, m) for model in evaluated(dataset) for _, m in video_metric_pairs(dataset, model)]


def dataset_video_metric_files(wildcards):
    return [
        f"{folder}/video_preds/{v}_{m}.csv"
        for model, folder in evaluated(wildcards.dataset).items()
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
    if isinstance(wanted, int):
        return sorted(VIDEOS[dataset])[:wanted]
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
from lightning_pose_lib.data.sessions import group_sessions


def _video_chunks(dataset):
    """{chunk id: [video stems]}: the dataset's videos in name order, predict.videos_per_job each;
    with several cameras whole sessions (all views of one session in one job, at least one
    session per job)."""
    size = config["predict"]["videos_per_job"]
    views = dataset_view_names(dataset)
    if not views:
        stems = sorted(VIDEOS[dataset])
        return {f"chunk{i // size:04d}": stems[i : i + size] for i in range(0, len(stems), size)}
    try:
        sessions = [[Path(v).stem for v in videos] for videos in group_sessions(list(VIDEOS[dataset].values()), views).values()]
    except InputError as err:
        raise WorkflowError(f"dataset {dataset}: {err}")
    per_job = max(1, size // len(views))
    return {f"chunk{i // per_job:04d}": [s for session in sessions[i : i + per_job] for s in session] for i in range(0, len(sessions), per_job)}


def dataset_view_names(dataset):
    """data.view_names of a dataset's models (a property of the data: the same for all of them)."""
    models = list(MODELS[dataset])
    return model_config(dataset, models[0])["data"]["view_names"] if models else None


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


# --- Throughput benchmark: an explicit target, never part of `all` (rules/benchmark.smk) ---------
from lightning_pose_lib.video import list_videos

BENCHMARK = config["benchmark"]


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


# --- Pretrained weights: fetched by local rules, read offline by training (rules/weights.smk) ------
from lightning_pose_lib.models.weights import weights_of

WEIGHTS_DIR = str(Path(config["weights_dir"]))


def _pretrained_backbone(dataset, model_id):
    """The backbone whose ImageNet weights a model's config asks for (backbone_pretrained: true;
    false or a weights file ask for nothing), or None."""
    model_cfg = model_config(dataset, model_id)["model"]
    if model_cfg["backbone_pretrained"] is not True:
        return None
    try:
        weights_of(model_cfg["backbone"])
    except InputError as err:
        raise WorkflowError(f"model {dataset}/{model_id}: {err}")
    return model_cfg["backbone"]


# {file name: backbone} of every ImageNet weights file some model needs
WEIGHTS_FILES = {
    weights_of(backbone).file_name: backbone
    for dataset in DATASETS
    for model_id in MODELS[dataset]
    if (backbone := _pretrained_backbone(dataset, model_id))
}


def pretrained_weights_files():
    return [f"{WEIGHTS_DIR}/{name}" for name in WEIGHTS_FILES]


def train_weights(wildcards):
    """The cached weights file a training reads (an input of its job), when its config asks for one."""
    backbone = _pretrained_backbone(wildcards.dataset, wildcards.model)
    return [f"{WEIGHTS_DIR}/{weights_of(backbone).file_name}"] if backbone else []


def train_settings_wc(wildcards):
    """The model settings a training job trains (model_settings): backbone_pretrained true
    becomes the cached file, so that the job never needs the network."""
    weights = train_weights(wildcards)
    settings = model_settings(wildcards.dataset, wildcards.model)
    return merge(settings, {"model": {"backbone_pretrained": weights[0]}}) if weights else settings


# --- The FiftyOne dataset: an explicit target, never part of `all` (rules/fiftyone.smk) ----------
FIFTYONE = config["fiftyone"]


def fiftyone_videos(wildcards):
    """{stem: video file} sampled into the FiftyOne dataset (none when fiftyone.video_frames is 0)."""
    if not FIFTYONE["video_frames"]:
        return {}
    return {v: VIDEOS[wildcards.dataset][v] for v in diagnostic_videos(wildcards.dataset)}


def fiftyone_inputs(wildcards):
    """Each compared model's labeled-frame predictions and errors, and for the sampled videos the
    video, each model's predictions and video metric tables."""
    dataset = wildcards.dataset
    videos = fiftyone_videos(wildcards)
    files = list(videos.values())
    for model in compare_models(dataset):
        folder = model_dir(dataset, model)
        files += [f"{folder}/predictions.csv", f"{folder}/predictions_pixel_error.csv"]
        for video in videos:
            files.append(f"{folder}/video_preds/{video}.csv")
            files += [f"{folder}/video_preds/{video}_{m}.csv" for m in model_metric_names(dataset, model, False)]
    return files


# --- Ensembles: several models of a dataset fused per video by the Ensemble Kalman Smoother (rules/ensemble.smk) ---


def _ensembles_of(dataset):
    """{name: settings with "members" (model ids)} of a dataset's ensembles: a variant's models
    (every seed) or the models named."""
    out = {}
    for name, settings in DATASETS[dataset]["ensembles"].items():
        where = f"config/config.yaml: datasets.{dataset}.ensembles.{name}"
        if bool(settings["variant"]) == bool(settings["models"]):
            raise WorkflowError(f"{where}: give its members as a variant or as models, one of the two")
        if settings["variant"]:
            members = [m for m, v in MODELS[dataset].items() if v["variant"] == settings["variant"]]
            if not members:
                raise WorkflowError(f"{where}: variant {settings['variant']!r} has no model on this dataset")
        else:
            members = list(settings["models"])
            unknown = sorted(set(members) - set(MODELS[dataset]))
            if unknown:
                raise WorkflowError(f"{where}: unknown models {unknown} (models of this dataset: {sorted(MODELS[dataset])})")
        if name in MODELS[dataset]:
            raise WorkflowError(f"{where}: a model of this dataset has the same name")
        out[name] = {**settings, "members": members}
    return out


ENSEMBLES = {dataset: _ensembles_of(dataset) for dataset in DATASETS}


def ensemble_dir(dataset, name):
    return f"results/{dataset}/ensembles/{name}"


def ensemble_member_predictions(wildcards):
    members = ENSEMBLES[wildcards.dataset][wildcards.ensemble]["members"]
    return [f"{model_dir(wildcards.dataset, m)}/video_preds/{wildcards.video}.csv" for m in members]


def ensemble_first_member(wildcards):
    return model_dir(wildcards.dataset, ENSEMBLES[wildcards.dataset][wildcards.ensemble]["members"][0])


def ensemble_views(wildcards):
    """The view groups the smoother fuses (the first member's data.mirrored_column_matches, when
    a list per view and the ensemble's multiview is on), or None."""
    ensemble = ENSEMBLES[wildcards.dataset][wildcards.ensemble]
    matches = model_config(wildcards.dataset, ensemble["members"][0])["data"]["mirrored_column_matches"]
    if ensemble["multiview"] and matches and len(matches) > 1 and all(isinstance(view, list) for view in matches):
        return matches
    return None


def ensemble_metric_names(dataset, name, labeled):
    """An ensemble is evaluated with its first member's metrics (and that member's PCAs)."""
    return model_metric_names(dataset, ENSEMBLES[dataset][name]["members"][0], labeled)


def evaluated(dataset):
    """{id: directory} of everything a dataset's summary compares: its models, then its ensembles."""
    return {**{m: model_dir(dataset, m) for m in MODELS[dataset]}, **{e: ensemble_dir(dataset, e) for e in ENSEMBLES[dataset]}}


def ensemble_targets(dataset):
    """Per ensemble: a trace of members, average and smoothed keypoint per diagnostic video, and
    its labeled videos (its summary row comes with summary.csv)."""
    out = []
    for name in ENSEMBLES[dataset]:
        out += [f"results/{dataset}/plots/traces/{v}_ensemble_{name}.png" for v in diagnostic_videos(dataset)]
        if DIAGNOSTICS["labeled_videos"]:
            out += [f"{ensemble_dir(dataset, name)}/video_preds/labeled_videos/{v}_labeled.mp4" for v in diagnostic_videos(dataset)]
    return out
