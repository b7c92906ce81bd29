"""model: the keyboard's next-word language model and its two references.

- :class:`ModelConfig` and its size presets (``tiny``, ``small``, ``gboard``);
- :func:`build_model`, a word-level CIFG/LSTM with tied input and output
  embeddings (Hard et al. 2018), and :class:`MaskedCrossEntropy`;
- :func:`keyboard_metrics`: word-level recall@1/@3 (with and without
  out-of-vocabulary targets), perplexity and counts, usable in Keras and TFF;
- :func:`make_sequences`: users' messages to fixed-size next-word rows;
- checkpoints (:func:`save_model`, :func:`restore_model`);
- the centrally trained reference (:func:`train_central`) and the
  Kneser-Ney n-gram reference (:class:`KneserNeyLM`).

Imports TensorFlow and numpy only; never the project's other packages.
"""

from model.central import CentralConfig, evaluate_model, train_central
from model.checkpoint import CheckpointError, assign_weights, load_checkpoint, restore_model, save_model
from model.cifg import CIFGCell
from model.config import PRESETS, ModelConfig
from model.keras_model import MaskedCrossEntropy, TiedEmbedding, build_model
from model.metrics import keyboard_metrics, top_k_words
from model.ngram import KneserNeyLM, NgramConfig
from model.sequences import make_sequences
from model.tflite_convert import QUANTIZATIONS, ConversionError, convert_inference_model, convert_training_model
from model.tflite_training import (
    SIGNATURES,
    KeyboardInferenceModule,
    KeyboardTrainingModule,
    TrainingShape,
    WeightSpec,
    weight_specs,
)

__all__ = [
    "PRESETS",
    "QUANTIZATIONS",
    "SIGNATURES",
    "CIFGCell",
    "CentralConfig",
    "CheckpointError",
    "ConversionError",
    "KeyboardInferenceModule",
    "KeyboardTrainingModule",
    "KneserNeyLM",
    "MaskedCrossEntropy",
    "ModelConfig",
    "NgramConfig",
    "TiedEmbedding",
    "TrainingShape",
    "WeightSpec",
    "assign_weights",
    "build_model",
    "convert_inference_model",
    "convert_training_model",
    "evaluate_model",
    "keyboard_metrics",
    "load_checkpoint",
    "make_sequences",
    "restore_model",
    "save_model",
    "top_k_words",
    "train_central",
    "weight_specs",
]
