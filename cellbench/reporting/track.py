"""What experiment a run's settings make: the paper's protocol, or a named track (CPU, smoke) whose
numbers must not be read beside the paper's. Every table and figure caption says which."""

from __future__ import annotations

PAPER = "paper"


def follows_paper(config: dict) -> bool:
    """The paper's protocol: track paper, full width, whole 256x256 patches, every image."""
    t = config["train"]
    return (config["track"] == PAPER and t["width"] == 1 and not t["crop_size"]
            and not any(t["max_images"].values()))


def track_caption(config: dict) -> str | None:
    """None for the paper's protocol; else one line naming the track and how it differs."""
    if follows_paper(config):
        return None
    t = config["train"]
    name = config["track"] if config["track"] != PAPER else "custom settings"
    parts = [f"width {t['width']:g}"]
    parts.append(f"{t['crop_size']}x{t['crop_size']} training crops" if t["crop_size"] else "whole 256x256 patches")
    parts.append(f"{t['epochs']} epochs")
    limits = {k: v for k, v in t["max_images"].items() if v}
    if limits:
        parts.append("at most " + ", ".join(f"{v} {k}" for k, v in limits.items()) + " images")
    parts.append("random initialisation" if t["pretrained"] == "none" else f"pretrained: {t['pretrained']}")
    label = f"{name} track" if name != "custom settings" else name
    own = " (a method's own crop, epochs and learning rate for this track: its method.yaml, tracks)" \
        if name != "custom settings" else ""
    return f"{label}: {', '.join(parts)}{own}; not the paper's protocol"
