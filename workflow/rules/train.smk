# One training job per dataset x model (variant, sweep cell, seed).


rule train:
    input:
        labels=labels_csv,
        base_config=config["model_config"],
        weights=train_weights,  # cached ImageNet weights (rules/weights.smk), when the config asks for them
    output:
        status=f"{model_dir('{dataset}', '{model}')}/train_status.json",
        config=f"{model_dir('{dataset}', '{model}')}/config.yaml",
        best=f"{model_dir('{dataset}', '{model}')}/checkpoints/best.ckpt",
        predictions=f"{model_dir('{dataset}', '{model}')}/predictions.csv",
    params:
        model_settings=train_settings_wc,
        model_dir=model_dir_wc,
    conda:
        "../../environment.yml"
    priority: model_priority_wc
    log:
        "logs/train/{dataset}/{model}.log",
    message:
        "Training {wildcards.dataset}/{wildcards.model}"
    script:
        "../../scripts/train.py"
