"""Labeled data: label CSVs, images, the train/validation/test split, augmentation, heatmaps."""
