# Video prediction in two steps, so that a job loads the model once for many videos and finished
# predictions survive any failure:
#
# 1. predict_videos (GPU job): one per model x chunk of `predict.videos_per_job` videos (with several
#    cameras, whole sessions: every view of a session in one job). It predicts
#    each video of its chunk into the model's prediction store video_preds/.store/ and skips the
#    videos the store already holds from the current checkpoint. The store is no rule's declared
#    output, so Snakemake never deletes it -- not before a rerun and not after a failure. The job's
#    declared output is only the chunk's manifest (written last).
# 2. video_prediction (local, instant): hard-links one video's files from the store to
#    video_preds/<video>.csv/.h5, the per-video outputs that evaluation and users read. A deleted
#    output is redone by this step alone, without loading a model.


localrules:
    video_prediction,


rule predict_videos:
    input:
        best=f"{model_dir('{dataset}', '{model}')}/checkpoints/best.ckpt",
        videos=chunk_videos,
    output:
        manifest=f"{model_dir('{dataset}', '{model}')}/video_preds/.store/{{chunk}}.json",
    params:
        store=prediction_store("{dataset}", "{model}"),
        batch_size=config["predict"]["batch_size"],
        backend=config["predict"]["backend"],
    wildcard_constraints:
        chunk="chunk[0-9]+",
    conda:
        "../../environment.yml"
    priority: model_priority_wc
    log:
        "logs/predict_videos/{dataset}/{model}/{chunk}.log",
    message:
        "Predicting the videos of {wildcards.chunk} with {wildcards.dataset}/{wildcards.model}"
    script:
        "../../scripts/predict.py"


rule video_prediction:
    input:
        manifest=chunk_manifest,
    output:
        csv=f"{model_dir('{dataset}', '{model}')}/video_preds/{{video}}.csv",
        h5=f"{model_dir('{dataset}', '{model}')}/video_preds/{{video}}.h5",
    params:
        store=prediction_store("{dataset}", "{model}"),
        heads=f"{model_dir('{dataset}', '{model}')}/video_preds/heads",
    conda:
        "../../environment.yml"
    priority: model_priority_wc
    log:
        "logs/video_prediction/{dataset}/{model}/{video}.log",
    # A shell job, not run: or script: -- those start Python (a run: job even parses the whole
    # workflow again), 15 s for what takes milliseconds. Hard links (no copy: same file system),
    # a copy where there are none; the context model's per-head predictions come along.
    shell:
        """
        exec 2> {log:q}
        link() {{ mkdir -p "$(dirname "$2")"; ln -f "$1" "$2" 2> /dev/null || cp -f "$1" "$2"; echo "$1 -> $2" >&2; }}
        link {params.store:q}/{wildcards.video:q}.csv {output.csv:q}
        link {params.store:q}/{wildcards.video:q}.h5 {output.h5:q}
        for head in static context; do
            stored={params.store:q}/heads/{wildcards.video:q}_$head.csv
            if [ -e "$stored" ]; then link "$stored" {params.heads:q}/{wildcards.video:q}_$head.csv; fi
        done
        """
