"""Models: torch ``nn.Module`` nets (dense, cnn), their LightningModule (lit), and the sklearn path."""

# `model.scheduler` values of the torch models (lit.GlyphClassifier); here, free of torch, so the
# config check before a run can use them too.
SCHEDULERS = (None, "cosine")
