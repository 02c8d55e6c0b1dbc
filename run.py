"""glyphlab's entry point: `python run.py model=cnn data=runes` (see README.md)."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from glyphlab.experiment import main as run_experiment  # imported here so --cfg/--help stay fast

    return run_experiment(cfg)


if __name__ == "__main__":
    main()
