"""Tables and figures from the runs' outputs (predictions.csv, metrics.json, logs)."""
