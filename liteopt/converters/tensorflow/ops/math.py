"""TF element-wise math (Div on integers truncates, as TF's and ours do), activations, softmax, reductions
and MatMul. Element-wise ops keep their operands' layout (see registry.py); reductions and softmax renumber
their axes instead of transposing."""
from __future__ import annotations

from ..registry import TFValue, inverse, tf_op

UNARY = {"Relu": "relu", "Relu6": "relu6", "Elu": "elu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp",
         "Log": "log", "Abs": "abs", "Rsqrt": "rsqrt", "Sqrt": "sqrt", "Square": "square", "Floor": "floor",
         "Ceil": "ceil", "Softplus": "softplus", "Reciprocal": "reciprocal"}

BINARY = {"Add": "elementwise_add", "AddV2": "elementwise_add", "Sub": "elementwise_sub",
          "Mul": "elementwise_mul", "RealDiv": "elementwise_div",
          "Div": "elementwise_div", "Pow": "elementwise_pow", "Maximum": "elementwise_max",
          "Minimum": "elementwise_min"}

REDUCE = {"Mean": "reduce_mean", "Max": "reduce_max", "Min": "reduce_min", "Sum": "reduce_sum",
          "Prod": "reduce_prod"}


def _unary(ir_op: str):
    def convert(ctx, x):
        return ctx.unary(ir_op, x)
    convert.__doc__ = f"-> {ir_op}, in x's layout"
    return convert


def _binary(ir_op: str):
    def convert(ctx, x, y):
        return ctx.binary(ir_op, x, y)
    convert.__doc__ = f"-> {ir_op} (numpy broadcasting)"
    return convert


def _reduce(ir_op: str):
    def convert(ctx, x, axes, *, keep_dims=False):
        ax = ctx.const_of(axes, "reduction_indices").reshape(-1)
        if ax.size == 0:
            return x  # reducing over no axis is the identity
        ours, out_perm = ctx.reduce_axes(x, ax, keep_dims)
        return TFValue(ctx.emit(ir_op, [x.name], dim=ours, keep_dim=keep_dims), out_perm)
    convert.__doc__ = f"-> {ir_op} over the constant axes (a Mean over H, W is a global average pool)"
    return convert


for _tf, _ir in UNARY.items():
    tf_op(_tf)(_unary(_ir))
for _tf, _ir in BINARY.items():
    tf_op(_tf)(_binary(_ir))
for _tf, _ir in REDUCE.items():
    tf_op(_tf)(_reduce(_ir))


@tf_op("LeakyRelu")
def LeakyRelu(ctx, x, *, alpha=0.2):
    return ctx.unary("leaky_relu", x, alpha=alpha)


@tf_op("AddN")
def AddN(ctx, *xs, N=None):
    """x0 + x1 + ... (same shapes), in the layout of the first input held transposed"""
    perm = next((v.perm for v in xs if v.perm), ())
    return TFValue(ctx.emit("sum", [ctx.in_layout(v, perm) for v in xs]), perm)


@tf_op("Neg")
def Neg(ctx, x):
    return ctx.unary("scale", x, scale=-1.0)


@tf_op("SquaredDifference")
def SquaredDifference(ctx, x, y):
    """(x - y)^2"""
    return ctx.unary("square", ctx.binary("elementwise_sub", x, y))


@tf_op("Softmax")
def Softmax(ctx, logits):
    """softmax over TF's last axis, wherever that axis is in our layout"""
    r = ctx.rank_of(logits)
    axis = inverse(logits.perm)[r - 1] if logits.perm else r - 1
    return ctx.unary("softmax", logits, axis=axis)


@tf_op("MatMul")
def MatMul(ctx, a, b, *, transpose_a=False, transpose_b=False, grad_a=False, grad_b=False):
    """-> matmul_v2 in TF layout (grad_a/grad_b only tag gradient computations)"""
    return ctx.emit("matmul_v2", [ctx.tf(a), ctx.tf(b)], trans_x=transpose_a, trans_y=transpose_b)
