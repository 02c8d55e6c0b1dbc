"""glyphlab's Optuna sweeper (Optuna ≥ 4, pruning): see optuna_sweeper.py."""
