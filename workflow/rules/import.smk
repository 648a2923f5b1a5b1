# Datasets imported from another tool's project (datasets.<name>.import): a DeepLabCut project, SLEAP
# labels or a Lightning Pose config. One rule per such dataset writes results/<dataset>/data/ (the
# label CSV, links to the project's images and videos, or frames extracted from SLEAP's); it runs
# again only when the files it read change.
for _name, _dataset in DATASETS.items():
    if _dataset["import"] is None:
        continue

    rule:
        name:
            f"import_{_name}"
        input:
            import_inputs(_name),
        output:
            labels=dataset_labels(_name),
        params:
            source=_dataset["import"],
        conda:
            "../../environment.yml"
        log:
            f"logs/import/{_name}.log",
        message:
            f"Importing dataset {_name} from {_dataset['import']}"
        script:
            "../../scripts/import_dataset.py"
