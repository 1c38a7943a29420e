#!/usr/bin/python3
"""Makes the models tests/engine/test-onnx.c checks ONNX import's constant
folding with (engine/tp-onnx-fold.c).

Run from this folder, after make-torch-models.py, with Debian's python3-onnx:
    /usr/bin/python3 make-fold-models.py
Both models are torch-view-dynamic.onnx with the shape its Reshape reads
computed another way:
  fold-chain.onnx: [batch, 144] through a chain of every fold (Shape,
    Slice with a negative step, Gather, Squeeze, Concat, Cast both ways,
    broadcasting Mul, Add, integer Div, Sub, ConstantOfShape, Unsqueeze); a
    fold that computes anything else makes the Reshape refuse, and the model
    must give torch-view-dynamic.output.bin.
  fold-batch.onnx: [batch * 1, -1], arithmetic on the batch size, which is
    not known at import: refused naming the Mul node.
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper


def const(name, value, dtype=np.int64):
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.array(value, dtype=dtype), name))


def node(op, inputs, output, **attrs):
    return helper.make_node(op, inputs, [output], name=output, **attrs)


CHAIN = [
    node("Shape", ["relu"], "a"),  # [batch, 4, 6, 6]
    const("st", [-1]), const("en", [0]), const("ax", [0]), const("sp", [-1]),
    node("Slice", ["a", "st", "en", "ax", "sp"], "b"),  # [6, 6, 4]
    const("idx", [[0], [2]]),
    node("Gather", ["b", "idx"], "c", axis=0),  # [[6], [4]]
    const("one", [1]),
    node("Squeeze", ["c", "one"], "d"),  # [6, 4]
    const("seven", [7]),
    node("Concat", ["d", "seven"], "e", axis=0),  # [6, 4, 7]
    node("Cast", ["e"], "f", to=onnx.TensorProto.FLOAT),
    const("scale", [[2.0], [1.0]], np.float32),
    node("Mul", ["f", "scale"], "g"),  # [[12, 8, 14], [6, 4, 7]]
    node("Cast", ["g"], "h", to=onnx.TensorProto.INT64),
    const("s2", [0, 0]), const("e2", [1, 2]), const("a2", [0, 1]),
    node("Slice", ["h", "s2", "e2", "a2"], "i"),  # [[12, 8]]
    const("zero", [0]),
    node("Squeeze", ["i", "zero"], "j"),  # [12, 8]
    const("i0", 0), const("i1", 1),
    node("Gather", ["j", "i0"], "k"),  # 12
    node("Gather", ["j", "i1"], "l"),  # 8
    const("c29", [29]), const("c3", [3]),
    node("Add", ["l", "c29"], "l2"),  # [37]
    node("Div", ["l2", "c3"], "m"),  # [12]
    node("Mul", ["k", "m"], "km"),  # [144]
    node("Sub", ["km", "zero"], "n"),  # [144]
    helper.make_node("ConstantOfShape", ["n"], ["o"], name="o",
                     value=numpy_helper.from_array(np.array([1], dtype=np.int64))),
    node("Shape", ["o"], "p"),  # [144]
    node("Gather", ["a", "i0"], "batch"),
    node("Unsqueeze", ["batch", "zero"], "batch1"),
    node("Concat", ["batch1", "p"], "shape", axis=0),  # [batch, 144]
]

BATCH = [
    node("Shape", ["relu"], "a"),
    const("i0", 0), const("zero", [0]), const("one", [1]), const("minus", [-1]),
    node("Gather", ["a", "i0"], "batch"),
    node("Unsqueeze", ["batch", "zero"], "batch1"),
    node("Mul", ["batch1", "one"], "batch_mul"),
    node("Concat", ["batch_mul", "minus"], "shape", axis=0),
]


def rewrite(name, shape_nodes):
    model = onnx.load("torch-view-dynamic.onnx")
    graph = model.graph
    conv, relu = graph.node[0], graph.node[1]
    reshape = next(n for n in graph.node if n.op_type == "Reshape")
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    relu.output[0] = "relu"
    reshape.input[:] = ["relu", "shape"]
    del graph.node[:]
    graph.node.extend([conv, relu] + shape_nodes + [reshape, gemm])
    onnx.checker.check_model(model)
    onnx.save(model, name + ".onnx")


rewrite("fold-chain", CHAIN)
rewrite("fold-batch", BATCH)
