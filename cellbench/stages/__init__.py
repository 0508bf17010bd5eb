"""The workflow's stages as functions; each reads its inputs and writes its outputs atomically.

The Snakemake rules call them through the command line (``python -m cellbench <stage> ...``).
"""
