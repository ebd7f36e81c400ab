"""The recurrent network of the Copy and language-model loops, built from the config."""
from dni_repro.models.recurrent import RecurrentNetwork


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
        sg_loss_weight=cfg.interface.sg_loss_weight,
    )
