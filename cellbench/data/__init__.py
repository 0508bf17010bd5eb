"""Datasets: definitions, raw readers, fetching and verification, preprocessing, splits, statistics."""
