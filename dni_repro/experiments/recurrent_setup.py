"""What the Copy and language-model loops share: the network from the config, and the run's logging."""
import torch
from omegaconf import OmegaConf

from dni_repro.dni.recurrent import RecurrentNetwork
from dni_repro.provenance import run_labels, run_provenance
from dni_repro.run_record import RunRecord
from dni_repro.runtime import device_description
from dni_repro.wandb_sink import WandbSink


def build_recurrent_network(cfg, input_vocab: int, output_vocab: int) -> RecurrentNetwork:
    return RecurrentNetwork(
        input_vocab,
        output_vocab,
        units=cfg.model.width,
        interface=cfg.interface.name,
        peepholes=cfg.model.peepholes,
        sg_hidden_layers=cfg.interface.sg.hidden_layers,
        sg_hidden_width=cfg.interface.sg.hidden_width,
        sg_scale=cfg.interface.sg_scale,
        sg_loss_into_core=cfg.interface.sg_loss_into_core,
    )


def open_run_logging(cfg, run_dir, device: torch.device, step: int, resume: bool, wandb_id):
    """(plain config, provenance, record): taken before training, so the commit is the one imported."""
    provenance = {**run_provenance(cfg), "device": device_description(device)}
    names = run_labels(cfg)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    wandb_sink = (
        WandbSink.start(cfg.logger, run_dir, config, names["group"], names["name"], names["tags"], wandb_id)
        if cfg.logger.name.value == "wandb"
        else None
    )
    record = RunRecord(run_dir, wandb_sink, resume_step=step if resume else None)
    return config, provenance, record
