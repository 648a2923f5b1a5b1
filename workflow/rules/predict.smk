# One prediction job per trained model x video.


rule predict_video:
    input:
        best=f"{model_dir('{dataset}', '{model}')}/checkpoints/best.ckpt",
        video=video_path,
    output:
        csv=f"{model_dir('{dataset}', '{model}')}/video_preds/{{video}}.csv",
        h5=f"{model_dir('{dataset}', '{model}')}/video_preds/{{video}}.h5",
    params:
        batch_size=config["predict"]["batch_size"],
        backend=config["predict"]["backend"],
    conda:
        "../../environment.yml"
    log:
        "logs/predict/{dataset}/{model}/{video}.log",
    message:
        "Predicting {wildcards.video} with {wildcards.dataset}/{wildcards.model}"
    script:
        "../../scripts/predict.py"
