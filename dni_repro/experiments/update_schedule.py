"""Which layers update in a step, for sparse updates and complete unlock (Fig. 5).

Each layer is drawn independently with probability p_update, from a generator of
its own whose state goes into the checkpoint, so a resumed run draws the same
masks and the model's own random streams are left untouched.

The paper also lets the selected layers update "in random order". Here every
layer reads the same forward pass and the optimizer applies all updates at the
end of the step, so the order of their backward passes cannot change any
number; it is therefore not drawn (README, fidelity).
"""
import torch


class LayerUpdateSampler:
    def __init__(self, num_layers: int, p_update: float, seed: int):
        if not 0 < p_update <= 1:
            raise ValueError(f"p_update must be in (0, 1], got {p_update}")
        self.num_layers = num_layers
        self.p_update = p_update
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self) -> list[bool]:
        return (torch.rand(self.num_layers, generator=self.generator) < self.p_update).tolist()

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
