"""Training: batches and augmentation on the device, targets, losses, and the one trainer."""
