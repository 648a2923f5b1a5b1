# Metrics per model (tables next to the predictions they describe, and a summary), then per
# dataset: the summary table, comparison plots, the gallery of worst frames, keypoint traces and
# labeled videos. Outputs marked report(...) go into `snakemake --report report.html`.
MODEL = model_dir("{dataset}", "{model}")


# One evaluation job per model writes every metric table of that model. The tables a model gets
# depend on its config (the PCA errors) and on its dataset's videos, and a rule's outputs must be
# fixed patterns, so each model has its own rule, without wildcards: Snakemake then finds the
# producer of a file by its whole path, where a shared {model} pattern made every lookup try every
# video's metric file (planning time grew with the square of the videos). Named after the model:
# evaluate_<dataset>_<model id, punctuation as _>.
for _dataset in DATASETS:
    for _model in MODELS[_dataset]:
        _dir = model_dir(_dataset, _model)
        _labeled = model_metric_names(_dataset, _model, True)
        _video = model_metric_names(_dataset, _model, False)

        rule:
            name:
                f"evaluate_{_dataset}_" + re.sub(r"\W", "_", _model)
            input:
                predictions=f"{_dir}/predictions.csv",
                status=f"{_dir}/train_status.json",  # config.yaml and the saved PCAs are complete
                videos=[f"{_dir}/video_preds/{v}.csv" for v in VIDEOS[_dataset]],
            output:
                labeled=[f"{_dir}/predictions_{m}.csv" for m in _labeled],
                videos=[f"{_dir}/video_preds/{v}_{m}.csv" for v in VIDEOS[_dataset] for m in _video],
                summary=f"{_dir}/metrics/summary.json",
            params:
                labeled_metrics=list(_labeled),
                video_metrics=[(v, m) for v in VIDEOS[_dataset] for m in _video],
                video_files=VIDEOS[_dataset],  # each prediction table must have its video's frame count
            conda:
                "../../environment.yml"
            priority: model_priority(_dataset, _model)
            log:
                f"logs/evaluate/{_dataset}/{_model}.log",
            message:
                f"Evaluating {_dataset}/{_model}"
            script:
                "../../scripts/evaluate.py"


rule summarize:
    input:
        summaries=model_evaluations,
        video_metrics=dataset_video_metric_files,
    output:
        table=report(
            "results/{dataset}/summary.csv",
            caption="../report/summary.rst",
            category="{dataset}",
            subcategory="1. model comparison",
            labels={"figure": "summary table (CSV)"},
        ),
        html=report(
            "results/{dataset}/summary.html",
            caption="../report/summary.rst",
            category="{dataset}",
            subcategory="1. model comparison",
            labels={"figure": "summary table"},
        ),
        per_keypoint=report(
            "results/{dataset}/plots/pixel_error_per_keypoint.png",
            caption="../report/pixel_error_per_keypoint.rst",
            category="{dataset}",
            subcategory="1. model comparison",
            labels={"figure": "pixel error per keypoint"},
        ),
        distributions=report(
            "results/{dataset}/plots/video_metrics.png",
            caption="../report/video_metrics.rst",
            category="{dataset}",
            subcategory="1. model comparison",
            labels={"figure": "video metric distributions"},
        ),
    params:
        models=model_table,
        model_ids=lambda wc: list(evaluated(wc.dataset)),
        video_metrics=lambda wc: dataset_video_metric_pairs(wc.dataset),
    conda:
        "../../environment.yml"
    log:
        "logs/summarize/{dataset}.log",
    message:
        "Comparing the models of {wildcards.dataset}"
    script:
        "../../scripts/summarize.py"


rule plot_train_frames:
    input:
        summaries=lambda wc: [f"{model_dir(wc.dataset, m)}/metrics/summary.json" for m in MODELS[wc.dataset]],
    output:
        report(
            "results/{dataset}/plots/pixel_error_vs_train_frames.png",
            caption="../report/pixel_error_vs_train_frames.rst",
            category="{dataset}",
            subcategory="1. model comparison",
            labels={"figure": "pixel error vs training frames"},
        ),
    params:
        models=model_table,
        model_ids=lambda wc: list(MODELS[wc.dataset]),
    conda:
        "../../environment.yml"
    log:
        "logs/plot_train_frames/{dataset}.log",
    message:
        "Plotting pixel error against training frames for {wildcards.dataset}"
    script:
        "../../scripts/summarize.py"


rule plot_trace:
    input:
        predictions=lambda wc: [f"{model_dir(wc.dataset, m)}/video_preds/{wc.video}.csv" for m in compare_models(wc.dataset)],
    output:
        report(
            "results/{dataset}/plots/traces/{video}.png",
            caption="../report/trace.rst",
            category="{dataset}",
            subcategory="2. keypoint traces",
            labels={"video": "{video}"},
        ),
    params:
        models=lambda wc: compare_models(wc.dataset),
        keypoint=DIAGNOSTICS["trace_keypoint"],
    conda:
        "../../environment.yml"
    log:
        "logs/plot_trace/{dataset}/{video}.log",
    message:
        "Plotting a keypoint over time in {wildcards.dataset}/{wildcards.video}"
    script:
        "../../scripts/summarize.py"


rule gallery:
    input:
        predictions=lambda wc: [f"{model_dir(wc.dataset, m)}/predictions.csv" for m in compare_models(wc.dataset)],
        errors=lambda wc: [f"{model_dir(wc.dataset, m)}/predictions_pixel_error.csv" for m in compare_models(wc.dataset)],
    output:
        report(
            "results/{dataset}/plots/gallery_worst_frames.png",
            caption="../report/gallery.rst",
            category="{dataset}",
            subcategory="3. labeled frames",
            labels={"figure": "worst labeled frames"},
        ),
    params:
        models=lambda wc: compare_models(wc.dataset),
        model_dirs=lambda wc: [model_dir(wc.dataset, m) for m in compare_models(wc.dataset)],
        frames=DIAGNOSTICS["gallery_frames"],
    conda:
        "../../environment.yml"
    log:
        "logs/gallery/{dataset}.log",
    message:
        "Drawing the worst labeled frames of {wildcards.dataset}"
    script:
        "../../scripts/gallery.py"


rule labeled_video:
    input:
        video=video_path,
        predictions=f"{MODEL}/video_preds/{{video}}.csv",
        status=f"{MODEL}/train_status.json",
    output:
        report(
            f"{MODEL}/video_preds/labeled_videos/{{video}}_labeled.mp4",
            caption="../report/labeled_video.rst",
            category="{dataset}",
            subcategory="4. labeled videos",
            labels={"model": "{model}", "video": "{video}"},
        ),
    params:
        model_dir=model_dir_wc,
        clip_frames=DIAGNOSTICS["clip_frames"],
    conda:
        "../../environment.yml"
    priority: model_priority_wc
    log:
        "logs/labeled_video/{dataset}/{model}/{video}.log",
    message:
        "Drawing {wildcards.dataset}/{wildcards.model} on {wildcards.video}"
    script:
        "../../scripts/labeled_video.py"
