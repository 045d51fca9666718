"""liteopt: a Python re-creation of Paddle Lite's model optimizer `opt` and a small numba runtime.

Deploy-side API (numpy, numba and flatbuffers only):

    from liteopt import MobileConfig, create_paddle_predictor     # Paddle Lite's API
    from liteopt.runtime import load                               # the Pythonic one
"""
__version__ = "0.1.0"


def __getattr__(name):  # lazy, so that `import liteopt.ir` does not pull in numba
    if name in ("MobileConfig", "create_paddle_predictor", "load", "Predictor"):
        from . import runtime
        return getattr(runtime, name)
    raise AttributeError(name)
