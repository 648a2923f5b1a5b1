# Metrics per model, then one summary table and plot per dataset.


rule evaluate:
    input:
        predictions=f"{model_dir('{dataset}', '{model}')}/predictions.csv",
        videos=video_predictions,
    output:
        pixel_error=f"{model_dir('{dataset}', '{model}')}/metrics/pixel_error.csv",
        summary=f"{model_dir('{dataset}', '{model}')}/metrics/summary.json",
    params:
        model_dir=model_dir_wc,
    conda:
        "../../environment.yml"
    log:
        "logs/evaluate/{dataset}/{model}.log",
    message:
        "Evaluating {wildcards.dataset}/{wildcards.model}"
    script:
        "../../scripts/evaluate.py"


rule summarize:
    input:
        model_evaluations,
    output:
        table="results/{dataset}/summary.csv",
        plot="results/{dataset}/pixel_error_per_keypoint.png",
    params:
        models=model_table,
    conda:
        "../../environment.yml"
    log:
        "logs/summarize/{dataset}.log",
    message:
        "Summarising the models of {wildcards.dataset}"
    script:
        "../../scripts/summarize.py"
