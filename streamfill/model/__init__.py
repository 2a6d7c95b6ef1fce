"""DeepFill v2 in PyTorch: gated convolutions, contextual attention, generator, SN-PatchGAN discriminator,
weights files, the importer for the official (TF-named) checkpoints and export helpers.

Data contract: N x C x H x W float tensors, RGB in [-1, 1], masks N x 1 x H x W with 1 = hole, H and W
multiples of 8.
"""

from streamfill.config import ModelConfig
from streamfill.model.attention import ContextualAttention
from streamfill.model.discriminator import Discriminator, discriminator_input
from streamfill.model.export import export_onnx, export_program
from streamfill.model.gated import GatedConv2d, GatedUpConv2d
from streamfill.model.generator import Generator, composite
from streamfill.model.importer import import_official
from streamfill.model.weights import load_generator, read_metadata, save_generator

__all__ = [
    "ContextualAttention",
    "Discriminator",
    "GatedConv2d",
    "GatedUpConv2d",
    "Generator",
    "ModelConfig",
    "composite",
    "discriminator_input",
    "export_onnx",
    "export_program",
    "import_official",
    "load_generator",
    "read_metadata",
    "save_generator",
]
