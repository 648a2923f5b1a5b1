# Pretrained backbone weights, fetched once into config["weights_dir"] before any training needs
# them. Local rules: they run where Snakemake itself runs (the login node of a cluster, which has
# network), so compute nodes without network train from the cached files.


localrules:
    fetch_weights,
    download_weights,


rule fetch_weights:
    input:
        pretrained_weights_files(),


rule download_weights:
    output:
        f"{WEIGHTS_DIR}/{{weights_file}}",
    params:
        backbone=lambda wildcards: WEIGHTS_FILES[wildcards.weights_file],
    wildcard_constraints:
        weights_file="|".join(re.escape(name) for name in WEIGHTS_FILES) or "(?!)",
    conda:
        "../../environment.yml"
    log:
        "logs/fetch_weights/{weights_file}.log",
    message:
        "Downloading the ImageNet weights of {params.backbone} into {output}"
    script:
        "../../scripts/fetch_weights.py"
