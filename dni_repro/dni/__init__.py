"""The DNI core: wrap any activation of your own model in an interface.

    from dni_repro.dni import DNI, MLPSyntheticGradient, GradientMessage

    dni = DNI(MLPSyntheticGradient(activation_dim=256, hidden_layers=2, hidden_width=1024))
    message = dni.send(h)                        # h gets its synthetic gradient now
    x = message.activation.requires_grad_()      # the receiver's input
    ... receiver forward + backward ...
    dni.receive(GradientMessage(x.grad, bootstrapped=True))   # regress the SG model
"""
from dni_repro.dni.interfaces import DNI, BackpropInterface, CutInterface, Interface, StaleGradientInterface
from dni_repro.dni.feedback_alignment import DirectFeedbackAlignment, FeedbackAlignmentLinear, Kickback
from dni_repro.dni.messages import ActivationMessage, GradientMessage, OutputErrorMessage
from dni_repro.dni.synthetic_input import SyntheticInputModel
from dni_repro.dni.synthetic_gradient import (
    ConvSyntheticGradient,
    MLPSyntheticGradient,
    build_synthetic_gradient_model,
    one_hot,
)

__all__ = [
    "ActivationMessage",
    "BackpropInterface",
    "ConvSyntheticGradient",
    "CutInterface",
    "DNI",
    "DirectFeedbackAlignment",
    "FeedbackAlignmentLinear",
    "GradientMessage",
    "Interface",
    "Kickback",
    "MLPSyntheticGradient",
    "OutputErrorMessage",
    "StaleGradientInterface",
    "SyntheticInputModel",
    "build_synthetic_gradient_model",
    "one_hot",
]
