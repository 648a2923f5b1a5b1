# The FiftyOne dataset of a project dataset, to browse labeled frames and every compared model's
# keypoints in the FiftyOne App (optional extra: pip install -e '.[fiftyone]'). An explicit target,
# never part of `all`: `snakemake --profile profiles/default fiftyone_<dataset>`; then
# `python scripts/fiftyone_app.py <dataset>` serves the App (see README.md). Rebuilt from scratch
# whenever its inputs change; the database lives in fiftyone.database_dir.


rule fiftyone:
    input:
        fiftyone_inputs,
    output:
        "results/{dataset}/fiftyone/dataset.json",
    params:
        model_dirs=lambda wc: [model_dir(wc.dataset, m) for m in compare_models(wc.dataset)],
        database_dir=FIFTYONE["database_dir"],
        videos=fiftyone_videos,
        video_frames=FIFTYONE["video_frames"],
        frames_dir="results/{dataset}/fiftyone/frames",
    # The database server runs where the dataset is opened: this short job runs there too.
    localrule: True
    conda:
        "../../environment.yml"
    log:
        "logs/fiftyone/{dataset}.log",
    message:
        "Building the FiftyOne dataset of {wildcards.dataset}"
    script:
        "../../scripts/fiftyone_dataset.py"


for _name in DATASETS:

    rule:
        name:
            f"fiftyone_{_name}"
        localrule: True
        input:
            f"results/{_name}/fiftyone/dataset.json",
