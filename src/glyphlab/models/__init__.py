"""Models: torch ``nn.Module`` nets (dense, cnn), their LightningModule (lit), and the sklearn path."""
