"""Lightning-Pose-style animal pose estimation, built to run as a Snakemake workflow on clusters."""

__version__ = "0.1.0"
