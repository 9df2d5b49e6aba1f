"""Training: one loop for every model (AMP, EMA, DDP via torchrun, checkpoints, resume).

``train(load_config("configs/vae-demo-64.yaml"))`` trains and returns the final model's
folder; ``radsynth train CONFIG.yaml`` is the same from the shell.
"""

from radsynth.train.config import DataConfig, TrainConfig, config_from_dict, load_config
from radsynth.train.loop import train
from radsynth.train.tasks import TASKS

__all__ = ["TASKS", "DataConfig", "TrainConfig", "config_from_dict", "load_config", "train"]
