"""Running the parts of a model as concurrent workers over torch.distributed.

This package knows processes and messages, not models: `process_group` joins a
worker to its job (spawned by train.py, or started by torchrun), `spawn` starts
and supervises K workers on one machine, `peer` moves detached tensors between
neighbouring ranks, and `split` cuts a chain of layers into K contiguous groups.
"""
