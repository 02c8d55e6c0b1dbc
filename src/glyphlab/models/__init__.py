"""Models: torch ``nn.Module`` nets (dense, cnn), their LightningModule (lit), and the sklearn path."""

# `model.scheduler` values of the torch models (lit.GlyphClassifier); here, free of torch, so the
# config check before a run can use them too.
SCHEDULERS = (None, "cosine")


def check_scheduler(scheduler) -> None:
    from glyphlab.errors import ConfigError

    if scheduler not in SCHEDULERS:
        raise ConfigError(f"model.scheduler must be null or cosine, got {scheduler!r}")
