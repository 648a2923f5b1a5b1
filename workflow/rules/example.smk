# The bundled example: a synthetic animal rendered by the project's own generator, one rule per
# dataset that sets `example:` in the config.
for _name, _dataset in DATASETS.items():
    if _dataset["example"] is None:
        continue

    rule:
        name:
            f"make_example_{_name}"
        output:
            labels=dataset_labels(_name),
            videos=list(VIDEOS[_name].values()),
            truth=[str(truth_path(v)) for v in VIDEOS[_name].values()],  # every frame's keypoints (the truth error)
        params:
            settings=_dataset["example"],
        conda:
            "../../environment.yml"
        log:
            f"logs/make_example/{_name}.log",
        message:
            f"Generating the synthetic example dataset {_name}"
        script:
            "../../scripts/make_example.py"
