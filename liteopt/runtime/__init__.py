"""The liteopt runtime: loads a .nb and runs it with numba kernels (imports numpy, numba, flatbuffers,
`format` and `ir` only)."""
from .predictor import (LightPredictor, MobileConfig, PredictorError, Predictor, Program, Tensor,
                        create_paddle_predictor, load, set_threads)

__all__ = ["LightPredictor", "MobileConfig", "PredictorError", "Predictor", "Program", "Tensor",
           "create_paddle_predictor", "load", "set_threads"]
