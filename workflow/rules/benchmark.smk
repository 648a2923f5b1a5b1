# The throughput benchmark of benchmarks/throughput.py (model-only and end-to-end prediction
# frames/s, training steps/s with real vs synthetic data, on whatever GPU the job gets) as a target
# of its own: never part of `all`. Ask for it by name, `snakemake benchmark_all` (every kind of the
# config's benchmark: section for its datasets), or for one file,
# results/benchmarks/<dataset>/throughput_<heatmap|context>.json. Each job trains its own model
# (benchmark.train_epochs) in a work folder that is emptied first and removed when it succeeds;
# the figures, the GPU name and the versions are in the JSON and the job's log.


rule benchmark_all:
    input:
        benchmark_targets(),


rule benchmark:
    input:
        labels=labels_csv,
        video=benchmark_video,
    output:
        json="results/benchmarks/{dataset}/throughput_{model_kind}.json",
    params:
        args=benchmark_args,
        work_dir="results/benchmarks/{dataset}/work_{model_kind}",
    wildcard_constraints:
        model_kind="heatmap|context",
    conda:
        "../../environment.yml"
    log:
        "logs/benchmark/{dataset}/{model_kind}.log",
    message:
        "Throughput benchmark of the {wildcards.model_kind} model on {wildcards.dataset}"
    script:
        "../../scripts/benchmark.py"
