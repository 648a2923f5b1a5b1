# Exports for other tools, when the config asks for them (export: section): per model and video,
# the predictions as NWB (ndx-pose), next to the CSV and H5.


rule export_nwb:
    input:
        predictions=f"{model_dir('{dataset}', '{model}')}/video_preds/{{video}}.h5",  # full precision
        video=video_path,
    output:
        nwb=f"{model_dir('{dataset}', '{model}')}/video_preds/{{video}}.nwb",
    conda:
        "../../environment.yml"
    log:
        "logs/export_nwb/{dataset}/{model}/{video}.log",
    message:
        "Writing {wildcards.video}.nwb of {wildcards.dataset}/{wildcards.model}"
    script:
        "../../scripts/export_nwb.py"
