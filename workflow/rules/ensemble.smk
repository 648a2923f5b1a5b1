# Ensembles (datasets.<name>.ensembles): several models of a dataset fused per video by the
# Ensemble Kalman Smoother, then evaluated and summarised like a model. Members predict each video
# once (rules/predict.smk); adding a member re-runs only the fusion and what follows it.
ENSEMBLE = ensemble_dir("{dataset}", "{ensemble}")


wildcard_constraints:
    ensemble="|".join(sorted({re.escape(e) for ensembles in ENSEMBLES.values() for e in ensembles}, key=len, reverse=True)) or "[^/]+",


rule ensemble_video:
    input:
        members=ensemble_member_predictions,
    output:
        csv=f"{ENSEMBLE}/video_preds/{{video}}.csv",
        h5=f"{ENSEMBLE}/video_preds/{{video}}.h5",
    params:
        settings=lambda wc: ENSEMBLES[wc.dataset][wc.ensemble],
        views=ensemble_views,
    conda:
        "../../environment.yml"
    log:
        "logs/ensemble_video/{dataset}/{ensemble}/{video}.log",
    message:
        "Fusing the predictions of {wildcards.video} by ensemble {wildcards.dataset}/{wildcards.ensemble}"
    script:
        "../../scripts/ensemble.py"


# The ensemble's predictions on the labeled frames cut from its videos, its config and PCAs (the
# first member's), which evaluate.py reads as it reads a model's.
rule ensemble_labeled:
    input:
        videos=lambda wc: [f"{ensemble_dir(wc.dataset, wc.ensemble)}/video_preds/{v}.csv" for v in VIDEOS[wc.dataset]],
        member=lambda wc: f"{ensemble_first_member(wc)}/train_status.json",
    output:
        predictions=f"{ENSEMBLE}/predictions.csv",
        config=f"{ENSEMBLE}/config.yaml",
    params:
        first_member=ensemble_first_member,
        videos=lambda wc: list(VIDEOS[wc.dataset]),
    conda:
        "../../environment.yml"
    log:
        "logs/ensemble_labeled/{dataset}/{ensemble}.log",
    message:
        "Collecting the labeled frames of ensemble {wildcards.dataset}/{wildcards.ensemble}"
    script:
        "../../scripts/ensemble.py"


# One evaluation rule per ensemble (its metrics are its first member's), as evaluate.smk has one per model.
for _dataset in DATASETS:
    for _name in ENSEMBLES[_dataset]:
        _dir = ensemble_dir(_dataset, _name)
        _labeled = ensemble_metric_names(_dataset, _name, True)
        _video = ensemble_metric_names(_dataset, _name, False)

        rule:
            name:
                f"evaluate_ensemble_{_dataset}_{_name}"
            input:
                predictions=f"{_dir}/predictions.csv",
                status=f"{_dir}/config.yaml",
                videos=[f"{_dir}/video_preds/{v}.csv" for v in VIDEOS[_dataset]],
            output:
                labeled=[f"{_dir}/predictions_{m}.csv" for m in _labeled],
                videos=[f"{_dir}/video_preds/{v}_{m}.csv" for v in VIDEOS[_dataset] for m in _video],
                summary=f"{_dir}/metrics/summary.json",
            params:
                labeled_metrics=list(_labeled),
                video_metrics=[(v, m) for v in VIDEOS[_dataset] for m in _video],
                video_files=VIDEOS[_dataset],
            conda:
                "../../environment.yml"
            log:
                f"logs/evaluate/{_dataset}/ensemble_{_name}.log",
            message:
                f"Evaluating ensemble {_dataset}/{_name}"
            script:
                "../../scripts/evaluate.py"


rule plot_ensemble_trace:
    input:
        members=ensemble_member_predictions,
        ensemble=f"{ENSEMBLE}/video_preds/{{video}}.csv",
    output:
        report(
            "results/{dataset}/plots/traces/{video}_ensemble_{ensemble}.png",
            caption="../report/ensemble_trace.rst",
            category="{dataset}",
            subcategory="2. keypoint traces",
            labels={"video": "{video}", "ensemble": "{ensemble}"},
        ),
    params:
        members=lambda wc: ENSEMBLES[wc.dataset][wc.ensemble]["members"],
        keypoint=DIAGNOSTICS["trace_keypoint"],
    conda:
        "../../environment.yml"
    log:
        "logs/plot_ensemble_trace/{dataset}/{ensemble}/{video}.log",
    message:
        "Plotting members, average and smoothed keypoint of ensemble {wildcards.dataset}/{wildcards.ensemble} in {wildcards.video}"
    script:
        "../../scripts/summarize.py"


rule ensemble_labeled_video:
    input:
        video=video_path,
        predictions=f"{ENSEMBLE}/video_preds/{{video}}.csv",
        member=lambda wc: f"{ensemble_first_member(wc)}/train_status.json",  # its config's eval settings
    output:
        report(
            f"{ENSEMBLE}/video_preds/labeled_videos/{{video}}_labeled.mp4",
            caption="../report/labeled_video.rst",
            category="{dataset}",
            subcategory="4. labeled videos",
            labels={"model": "ensemble {ensemble}", "video": "{video}"},
        ),
    params:
        model_dir=ensemble_first_member,
        clip_frames=DIAGNOSTICS["clip_frames"],
    conda:
        "../../environment.yml"
    log:
        "logs/labeled_video/{dataset}/ensemble_{ensemble}/{video}.log",
    message:
        "Drawing ensemble {wildcards.dataset}/{wildcards.ensemble} on {wildcards.video}"
    script:
        "../../scripts/labeled_video.py"
