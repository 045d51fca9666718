"""`from liteopt.lite import *` mirrors `from paddlelite.lite import *`."""
from .opt.api import Opt
from .runtime import MobileConfig, create_paddle_predictor

__all__ = ["MobileConfig", "Opt", "create_paddle_predictor"]
