"""Writes every fixture under fixtures/ and, beside them, expected.json: what each file holds,
as the generator knows it (tests compare cargo-infer's reading against it).

Run through `cargo xtask fixtures`, which provides a virtualenv with onnx, numpy, safetensors,
gguf and torch. Deterministic: every random weight comes from a seeded generator."""

import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
OPSET = 17
expected = {}


def rng(seed):
    return np.random.default_rng(seed)


def spec(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": shape}


def record(name, **facts):
    expected[name] = facts


def tensor_facts(tensors):
    """tensor_count, parameters, weight_bytes of a list of numpy arrays."""
    return dict(
        tensor_count=len(tensors),
        parameters=int(sum(t.size for t in tensors)),
        weight_bytes=int(sum(t.nbytes for t in tensors)),
    )


def ops_of(graph, counts=None):
    counts = {} if counts is None else counts
    for n in graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
        counts[key] = counts.get(key, 0) + 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                ops_of(a.g, counts)
            for g in a.graphs:
                ops_of(g, counts)
    return counts


def save_onnx(name, graph, cls, inputs, outputs, weights, opsets=None, metadata=None, **kw):
    opset_imports = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in (opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=opset_imports, producer_name="cargo-infer-fixtures", producer_version="1")
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    if kw.pop("check", True):
        onnx.checker.check_model(model, full_check=True)
    path = os.path.join(OUT, name)
    external = kw.pop("external", None)
    threshold = kw.pop("external_threshold", 0)
    if external:
        # onnx appends to an existing data file: start from none.
        data = os.path.join(os.path.dirname(path), external)
        if os.path.exists(data):
            os.remove(data)
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external, size_threshold=threshold)
    else:
        onnx.save_model(model, path)
    record(name, format="onnx", inputs=inputs, outputs=outputs, operators=ops_of(graph),
           opsets={"ai.onnx": OPSET, **(opsets or {})}, metadata=metadata or {}, architecture=cls,
           safety="not-applicable", **tensor_facts(weights), **kw)


def init(name, arr):
    return numpy_helper.from_array(arr, name)


def mlp(sizes, seed, batch="batch", acts=None):
    """Gemm layers with activations; returns (nodes, initializers, arrays)."""
    r = rng(seed)
    nodes, inits, arrays = [], [], []
    cur = "input"
    acts = acts or ["Relu"] * (len(sizes) - 2) + ["Softmax"]
    for i in range(len(sizes) - 1):
        w = r.standard_normal((sizes[i + 1], sizes[i])).astype(np.float32) * 0.5
        b = r.standard_normal(sizes[i + 1]).astype(np.float32) * 0.1
        inits += [init(f"fc{i}.weight", w), init(f"fc{i}.bias", b)]
        arrays += [w, b]
        nodes.append(helper.make_node("Gemm", [cur, f"fc{i}.weight", f"fc{i}.bias"], [f"h{i}"], name=f"fc{i}", transB=1))
        out = "output" if i == len(sizes) - 2 else f"a{i}"
        act = acts[i]
        attrs = {"axis": -1} if act in ("Softmax", "LogSoftmax") else {}
        nodes.append(helper.make_node(act, [f"h{i}"], [out], name=f"{act.lower()}{i}", **attrs))
        cur = out
    return nodes, inits, arrays


def onnx_fixtures():
    # MLP 4-16-3 with a symbolic batch dimension.
    nodes, inits, arrays = mlp([4, 16, 3], seed=1)
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])], inits)
    save_onnx("mlp.onnx", g, "mlp", [spec("input", "float32", ["batch", 4])], [spec("output", "float32", ["batch", 3])],
              arrays, metadata={"author": "cargo-infer", "task": "iris-like classification"})

    # The same kind of MLP with its weights in an external file.
    nodes, inits, arrays = mlp([8, 32, 32, 2], seed=2)
    g = helper.make_graph(nodes, "mlp_external", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])], inits)
    save_onnx("mlp_external.onnx", g, "mlp", [spec("input", "float32", [1, 8])], [spec("output", "float32", [1, 2])],
              arrays, external="mlp_external.onnx.data", external_data=["mlp_external.onnx.data"])

    # CNN: Conv-Relu-MaxPool-Conv-Relu-GlobalAveragePool-Flatten-Gemm on 1x3x16x16.
    r = rng(3)
    c1 = r.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = r.standard_normal(8).astype(np.float32) * 0.1
    c2 = r.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2
    b2 = r.standard_normal(16).astype(np.float32) * 0.1
    fw = r.standard_normal((10, 16)).astype(np.float32) * 0.3
    fb = r.standard_normal(10).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    arrays = [c1, b1, c2, b2, fw, fb]
    inits = [init(n, a) for n, a in zip(["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"], arrays)]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 16, 16])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    save_onnx("cnn.onnx", g, "cnn", [spec("image", "float32", ["N", 3, 16, 16])], [spec("logits", "float32", ["N", 10])], arrays)

    # LSTM over a sequence, then a Gemm on the last hidden state.
    r = rng(4)
    hidden, feat = 8, 5
    W = r.standard_normal((1, 4 * hidden, feat)).astype(np.float32) * 0.3
    R = r.standard_normal((1, 4 * hidden, hidden)).astype(np.float32) * 0.3
    B = r.standard_normal((1, 8 * hidden)).astype(np.float32) * 0.1
    fw = r.standard_normal((3, hidden)).astype(np.float32) * 0.3
    fb = np.zeros(3, np.float32)
    nodes = [
        helper.make_node("LSTM", ["sequence", "W", "R", "B"], ["Y", "Y_h"], name="lstm", hidden_size=hidden),
        helper.make_node("Squeeze", ["Y_h", "axes0"], ["h"], name="squeeze"),
        helper.make_node("Gemm", ["h", "head.weight", "head.bias"], ["scores"], name="head", transB=1),
    ]
    axes = np.array([0], np.int64)
    arrays = [W, R, B, fw, fb, axes]
    inits = [init(n, a) for n, a in zip(["W", "R", "B", "head.weight", "head.bias", "axes0"], arrays)]
    g = helper.make_graph(nodes, "lstm", [helper.make_tensor_value_info("sequence", TensorProto.FLOAT, [6, 1, feat])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], inits)
    save_onnx("lstm.onnx", g, "rnn", [spec("sequence", "float32", [6, 1, feat])], [spec("scores", "float32", [1, 3])], arrays)

    # Some nodes share their names with initializers (valid ONNX, as exporters write it; tract
    # needs cargo-infer to rename them).
    # A one-layer transformer encoder from primitives: embedding Gather, self-attention
    # (MatMul/Transpose/Softmax), LayerNormalization, feed-forward with Gelu.
    r = rng(5)
    vocab, d, ff, seq = 50, 16, 32, "seq"
    names = ["embed", "wq", "wk", "wv", "wo", "ln1.scale", "ln1.bias", "ff1", "ff2", "ln2.scale", "ln2.bias", "scale"]
    shapes = [(vocab, d), (d, d), (d, d), (d, d), (d, d), (d,), (d,), (d, ff), (ff, d), (d,), (d,), ()]
    arrays = [(r.standard_normal(s) * 0.3).astype(np.float32) for s in shapes]
    arrays[5][:] = 1.0
    arrays[9][:] = 1.0
    arrays[-1] = np.array(np.sqrt(d), np.float32)
    inits = [init(n, a) for n, a in zip(names, arrays)]
    mk = helper.make_node
    nodes = [
        mk("Gather", ["embed", "input_ids"], ["x"], name="embedding"),
        mk("MatMul", ["x", "wq"], ["q"], name="q_proj"),
        mk("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        mk("MatMul", ["x", "wv"], ["v"], name="v_proj"),
        mk("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 2, 1]),
        mk("MatMul", ["q", "kt"], ["scores"], name="qk"),
        mk("Div", ["scores", "scale"], ["scaled"], name="scale"),
        mk("Softmax", ["scaled"], ["probs"], name="softmax", axis=-1),
        mk("MatMul", ["probs", "v"], ["ctx"], name="attn_v"),
        mk("MatMul", ["ctx", "wo"], ["attn_out"], name="o_proj"),
        mk("Add", ["x", "attn_out"], ["res1"], name="residual1"),
        mk("LayerNormalization", ["res1", "ln1.scale", "ln1.bias"], ["n1"], name="ln1", axis=-1),
        mk("MatMul", ["n1", "ff1"], ["f1"], name="ff1"),
        mk("Gelu", ["f1"], ["g1"], name="gelu", domain="com.microsoft"),
        mk("MatMul", ["g1", "ff2"], ["f2"], name="ff2"),
        mk("Add", ["n1", "f2"], ["res2"], name="residual2"),
        mk("LayerNormalization", ["res2", "ln2.scale", "ln2.bias"], ["hidden_states"], name="ln2", axis=-1),
    ]
    g = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", seq])],
                          [helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, ["batch", seq, d])], inits)
    save_onnx("transformer.onnx", g, "transformer-encoder", [spec("input_ids", "int64", ["batch", seq])],
              [spec("hidden_states", "float32", ["batch", seq, d])], arrays, opsets={"com.microsoft": 1},
              custom_domains=["com.microsoft"], check=False)

    # Control flow: an If whose branches hold their own nodes (counted in the histogram), and a
    # Constant node whose tensor counts as a weight.
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["then_out"], name="then_relu")], "then", [],
                               [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["neg"], name="else_neg"),
                                helper.make_node("Sigmoid", ["neg"], ["else_out"], name="else_sigmoid")], "else", [],
                               [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2])])
    k = np.array([0.5, -0.5], np.float32)
    nodes = [
        helper.make_node("Constant", [], ["k"], name="k", value=init("k", k)),
        helper.make_node("Add", ["input", "k"], ["x"], name="add_k"),
        helper.make_node("If", ["flag"], ["output"], name="branch", then_branch=then_g, else_branch=else_g),
    ]
    g = helper.make_graph(nodes, "control_flow",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2]),
                           helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2])])
    save_onnx("control_flow.onnx", g, "unknown", [spec("input", "float32", [2]), spec("flag", "bool", [])],
              [spec("output", "float32", [2])], [k])


def unsupported_op_fixture():
    """Operators ONNX Runtime has and tract lacks (Det, CenterCropPad), in three nodes."""
    nodes = [
        helper.make_node("Det", ["x"], ["d1"], name="det_a"),
        helper.make_node("Transpose", ["x"], ["xt"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("Det", ["xt"], ["d2"], name="det_b"),
        helper.make_node("Add", ["d1", "d2"], ["dets"], name="add"),
        helper.make_node("CenterCropPad", ["image", "crop_shape"], ["cropped"], name="crop"),
    ]
    crop = np.array([2, 2], np.int64)
    g = helper.make_graph(nodes, "unsupported",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3]),
                           helper.make_tensor_value_info("image", TensorProto.FLOAT, [4, 4])],
                          [helper.make_tensor_value_info("dets", TensorProto.FLOAT, [2]),
                           helper.make_tensor_value_info("cropped", TensorProto.FLOAT, [2, 2])],
                          [init("crop_shape", crop)])
    opset_imports = [helper.make_opsetid("", 18)]
    model = helper.make_model(g, opset_imports=opset_imports, producer_name="cargo-infer-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, os.path.join(OUT, "unsupported_op.onnx"))
    record("unsupported_op.onnx", format="onnx", architecture="unknown", safety="not-applicable",
           operators=ops_of(g), tract_missing={"Det": ["det_a", "det_b"], "CenterCropPad": ["crop"]})


def dynamic_reshape_fixture():
    """A Reshape whose target shape is an input: tract can only type the graph once that input
    is known, i.e. turned into a constant."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["reshaped"], name="reshape"),
             helper.make_node("Relu", ["reshaped"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "dynamic_reshape",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    save_onnx("dynamic_reshape.onnx", g, "unknown", [spec("x", "float32", [2, 3]), spec("shape", "int64", [2])],
              [{"name": "y", "dtype": "float32", "shape": [], "shape_known": False}], [], check=False)


def reference_outputs():
    """For every ONNX fixture: inputs and the outputs of onnx's reference evaluator (or of ONNX
    Runtime, for custom-domain operators it lacks), as check/<model>.inputs.npz and .expected.npz."""
    from onnx.reference import ReferenceEvaluator
    import onnxruntime
    d = os.path.join(OUT, "check")
    os.makedirs(d, exist_ok=True)
    r = rng(13)
    for name in sorted(n for n in expected if n.endswith(".onnx") and not n.startswith("bad/")):
        path = os.path.join(OUT, name)
        m = onnx.load(path)
        inits = {i.name for i in m.graph.initializer}
        feeds = {}
        for i in m.graph.input:
            if i.name in inits:
                continue
            t = i.type.tensor_type
            shape = [dd.dim_value if dd.HasField("dim_value") else 2 for dd in t.shape.dim]
            if t.elem_type == TensorProto.FLOAT:
                feeds[i.name] = r.uniform(-1, 1, shape).astype(np.float32)
            elif i.name == "shape":
                feeds[i.name] = np.array([3, 2], np.int64)
            elif t.elem_type == TensorProto.INT64:
                feeds[i.name] = r.integers(0, 50, shape).astype(np.int64)
            elif t.elem_type == TensorProto.BOOL:
                feeds[i.name] = np.array(r.integers(0, 2, shape).astype(bool))
        if any(n.domain not in ("", "ai.onnx") for n in m.graph.node):
            sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            outs = sess.run(None, feeds)
            source = "onnxruntime"
        else:
            outs = ReferenceEvaluator(m).run(None, feeds)
            source = "onnx.reference"
        names = [o.name for o in m.graph.output]
        stem = name[: -len(".onnx")]
        np.savez(os.path.join(d, f"{stem}.inputs.npz"), **feeds)
        np.savez(os.path.join(d, f"{stem}.expected.npz"), **dict(zip(names, outs)))
        expected[name]["reference"] = source

    # The ONNX test layout next to a model: test_data_set_0 with input_N.pb / output_N.pb.
    d2 = os.path.join(OUT, "with_test_data")
    os.makedirs(os.path.join(d2, "test_data_set_0"), exist_ok=True)
    os.makedirs(os.path.join(d2, "test_data_set_1"), exist_ok=True)
    src = onnx.load(os.path.join(OUT, "mlp.onnx"))
    onnx.save_model(src, os.path.join(d2, "model.onnx"))
    for k, batch in enumerate([1, 3]):
        x = r.uniform(-1, 1, (batch, 4)).astype(np.float32)
        (y,) = ReferenceEvaluator(src).run(None, {"input": x})
        for kind, arr, nm in [("input", x, "input"), ("output", y, "output")]:
            with open(os.path.join(d2, f"test_data_set_{k}", f"{kind}_0.pb"), "wb") as f:
                f.write(numpy_helper.from_array(arr, nm).SerializeToString())


def safetensors_fixtures():
    from safetensors.numpy import save_file
    r = rng(6)
    tensors = {
        "layers.0.weight": r.standard_normal((16, 4)).astype(np.float32),
        "layers.0.bias": r.standard_normal(16).astype(np.float32),
        "layers.1.weight": r.standard_normal((3, 16)).astype(np.float16),
        "layers.1.bias": r.standard_normal(3).astype(np.float16),
    }
    meta = {"format": "pt", "source": "cargo-infer fixtures"}
    save_file(tensors, os.path.join(OUT, "mlp.safetensors"), metadata=meta)
    record("mlp.safetensors", format="safetensors", inputs=[], outputs=[], operators={}, opsets={}, metadata=meta,
           architecture="mlp", safety="not-applicable",
           tensors={k: {"dtype": str(v.dtype).replace("float", "float"), "shape": list(v.shape)} for k, v in tensors.items()},
           **tensor_facts(list(tensors.values())))

    # A decoder-style checkpoint in two shards with an index.
    d = os.path.join(OUT, "sharded")
    os.makedirs(d, exist_ok=True)
    r = rng(7)
    hidden, vocab = 16, 64
    shard1 = {"model.embed_tokens.weight": r.standard_normal((vocab, hidden)).astype(np.float32),
              "model.layers.0.self_attn.q_proj.weight": r.standard_normal((hidden, hidden)).astype(np.float32)}
    shard2 = {"model.layers.0.self_attn.o_proj.weight": r.standard_normal((hidden, hidden)).astype(np.float32),
              "lm_head.weight": r.standard_normal((vocab, hidden)).astype(np.float32)}
    files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for f, t in zip(files, [shard1, shard2]):
        save_file(t, os.path.join(d, f), metadata={"format": "pt"})
    allt = {**shard1, **shard2}
    index = {"metadata": {"total_size": int(sum(v.nbytes for v in allt.values()))},
             "weight_map": {**{k: files[0] for k in shard1}, **{k: files[1] for k in shard2}}}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
    record("sharded/model.safetensors.index.json", format="safetensors", inputs=[], outputs=[], operators={}, opsets={},
           metadata={"format": "pt", "total_size": str(index["metadata"]["total_size"])},
           architecture="transformer-decoder", safety="not-applicable", **tensor_facts(list(allt.values())))


class Payload:
    """Pickles as a call of os.system: what a malicious checkpoint does."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def pytorch_fixtures():
    import torch

    torch.manual_seed(8)
    os.makedirs(os.path.join(OUT, "check"), exist_ok=True)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    sd = net.state_dict()
    arrays = [v.numpy() for v in sd.values()]
    names = list(sd.keys())
    common = dict(format="pytorch", inputs=[], outputs=[], operators={}, opsets={}, architecture="mlp")

    torch.save(sd, os.path.join(OUT, "state_dict.pt"))
    # The same tensors as safetensors: what readers of the .pt files are checked against.
    from safetensors.torch import save_file as save_torch
    save_torch({k: v.contiguous() for k, v in sd.items()}, os.path.join(OUT, "check", "state_dict.safetensors"))
    record("state_dict.pt", safety="safe", metadata={}, tensor_names=names, **common, **tensor_facts(arrays))

    torch.save(sd, os.path.join(OUT, "state_dict_legacy.pt"), _use_new_zipfile_serialization=False)
    record("state_dict_legacy.pt", safety="safe", metadata={}, tensor_names=names, **common, **tensor_facts(arrays))

    # Views saved as views: a transposed weight, a slice at an offset, an int64 buffer, and a bf16
    # copy — convert must gather them by their strides. The reference is saved contiguous.
    w = torch.arange(48, dtype=torch.float32).reshape(6, 8) / 7
    views = {"transposed": w.t(), "rows": w[2:5], "every_other": w[:, ::2], "steps": torch.arange(5),
             "half": w.to(torch.bfloat16)}
    torch.save(views, os.path.join(OUT, "check", "strided.pt"))
    save_torch({k: v.contiguous() for k, v in views.items()}, os.path.join(OUT, "check", "strided.safetensors"))

    torch.save({"epoch": 7, "arch": "mlp-4-16-3", "state_dict": sd}, os.path.join(OUT, "checkpoint.pt"))
    record("checkpoint.pt", safety="safe", metadata={"epoch": "7", "arch": "mlp-4-16-3"}, state_dict_key="state_dict",
           tensor_names=names, **common, **tensor_facts(arrays))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(4, 16)
            self.fc2 = torch.nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)

    torch.manual_seed(9)
    m = torch.jit.script(Net().eval())
    m.save(os.path.join(OUT, "mlp.torchscript.pt"))
    ts_arrays = [p.detach().numpy() for p in m.parameters()]
    record("mlp.torchscript.pt", format="torchscript", inputs=[], outputs=[], operators={}, opsets={}, architecture="mlp",
           safety="safe", metadata=None, tensor_names=[n for n, _ in m.named_parameters()],
           signature="forward(self, x: Tensor) -> Tensor", **tensor_facts(ts_arrays))

    # Reference outputs of the TorchScript module, computed by torch itself.
    x = torch.from_numpy(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))
    with torch.no_grad():
        probs = m(x).numpy()
    np.savez(os.path.join(OUT, "check", "mlp.torchscript.inputs.npz"), x=x.numpy())
    np.savez(os.path.join(OUT, "check", "mlp.torchscript.expected.npz"), output_0=probs)

    # The TorchScript module's ONNX export (torch's TorchScript exporter), and a copy of it with one
    # bias changed: `check --pair` must pass the first and catch the second.
    import onnx
    from onnx import numpy_helper
    pair = os.path.join(OUT, "pair")
    os.makedirs(pair, exist_ok=True)
    buf = io.BytesIO()
    torch.onnx.export(m, (torch.zeros(1, 4),), buf, input_names=["x"], output_names=["probs"],
                      dynamic_axes={"x": {0: "batch"}, "probs": {0: "batch"}}, dynamo=False)
    exported = onnx.load_from_string(buf.getvalue())
    onnx.save_model(exported, os.path.join(pair, "mlp.onnx"))
    for init in exported.graph.initializer:
        if init.name.endswith("fc2.bias"):
            altered = numpy_helper.to_array(init).copy()
            altered[0] += 0.05
            init.CopyFrom(numpy_helper.from_array(altered, init.name))
            break
    else:
        raise SystemExit("the export has no fc2.bias initializer")
    onnx.save_model(exported, os.path.join(pair, "mlp_altered.onnx"))

    # Malicious checkpoints. Their payload would create this file; tests assert it never appears.
    marker = "/tmp/cargo-infer-pwned"
    cmd = f"touch {marker}"
    with open(os.path.join(OUT, "malicious_global.pt"), "wb") as f:
        # Protocol 2: GLOBAL 'posix system' (os.system pickles as posix.system).
        pickle.dump({"state_dict": {}, "hook": Payload(cmd)}, f, protocol=2)
    record("malicious_global.pt", format="pytorch", safety="unsafe", dangerous=["posix.system"])

    # STACK_GLOBAL of builtins.exec with both names fetched back from the memo.
    body = (b"\x80\x04" + b"\x8c\x08builtins\x94" + b"\x8c\x04exec\x94" + b"\x8c\x08builtins\x94"
            + b"h\x00h\x01\x93" + b"\x8c" + bytes([len(f"import os; os.system('{cmd}')")]) + f"import os; os.system('{cmd}')".encode()
            + b"\x85R.")
    with open(os.path.join(OUT, "malicious_memo.pkl"), "wb") as f:
        f.write(body)
    record("malicious_memo.pkl", format="pytorch", safety="unsafe", dangerous=["builtins.exec"])

    # A torch.save zip whose archive also holds an extra pickle with a payload.
    buf = io.BytesIO()
    torch.save(sd, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(os.path.join(OUT, "malicious_nested.pt"), "w", zipfile.ZIP_STORED) as z:
        for item in src.infolist():
            z.writestr(item, src.read(item.filename))
        root = src.infolist()[0].filename.split("/")[0]
        z.writestr(f"{root}/extra/hook.pkl", pickle.dumps(Payload(cmd), protocol=2))
    record("malicious_nested.pt", format="pytorch", safety="unsafe", dangerous=["posix.system"])


def legacy_keys_order_fixture():
    """A pre-1.6 torch.save stream as torch 0.4 wrote it on Windows, byte by byte: storage keys are
    the storages' addresses, the key list is sorted as text, and the storages follow in the order
    of that list — not the order the tensors name them (fc1's float32 storage, then fc2.weight's
    float64 one, then fc2.bias's). fc2.bias is a Parameter pickled 0.4-style, as a call of the
    class; sys_info says `long` is 4 bytes (Windows). torch 2.13 reads it; its tensors are the
    reference for convert."""
    import collections

    import torch

    class Storage:
        """Stands for one storage; pickled by persistent id, as torch did."""

        def __init__(self, key, kind, data):
            self.key, self.kind, self.data = key, kind, data

    class Call:
        """Pickles as a call of `fn` on `args` (REDUCE), which is how torch pickled tensors."""

        def __init__(self, fn, *args):
            self.fn, self.args = fn, args

        def __reduce__(self):
            return self.fn, self.args

    r = rng(41)
    fc1 = r.standard_normal(16 * 4 + 16).astype("<f4")  # fc1.weight then fc1.bias, one storage
    fc2_w = r.standard_normal(3 * 16).astype("<f8")
    fc2_b = r.standard_normal(3).astype("<f8")
    s_fc1 = Storage("2241859102656", torch.FloatStorage, fc1)
    s_fc2_w = Storage("2241859101376", torch.DoubleStorage, fc2_w)
    s_fc2_b = Storage("2241859100736", torch.DoubleStorage, fc2_b)

    def tensor(storage, offset, size, stride):
        return Call(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, collections.OrderedDict())

    sd = collections.OrderedDict()
    sd["fc1.weight"] = tensor(s_fc1, 0, (16, 4), (4, 1))
    sd["fc1.bias"] = tensor(s_fc1, 64, (16,), (1,))
    sd["fc2.weight"] = tensor(s_fc2_w, 0, (3, 16), (16, 1))
    sd["fc2.bias"] = Call(torch.nn.Parameter, tensor(s_fc2_b, 0, (3,), (1,)), True)
    named = [s_fc1, s_fc2_w, s_fc2_b]  # the order the tensors name their storages

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", obj.kind, obj.key, "cpu", obj.data.size, None)
            return None

    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001,
                   {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, buf, protocol=2)
    Pickler(buf, protocol=2).dump({"epoch": 3, "state_dict": sd})
    keys = sorted(s.key for s in named)
    pickle.dump(keys, buf, protocol=2)
    by_key = {s.key: s for s in named}
    written = [by_key[k] for k in keys]
    assert written != named, "the key list must order the storages differently from the tensors"
    for s in written:
        buf.write(struct.pack("<q", s.data.size) + s.data.tobytes())
    name = "legacy_keys_order.pt"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())

    # What torch reads back is the reference.
    loaded = torch.load(os.path.join(OUT, name), weights_only=False)
    assert loaded["epoch"] == 3
    got = {k: v.detach() for k, v in loaded["state_dict"].items()}
    assert np.array_equal(got["fc1.weight"].numpy().ravel(), fc1[:64])
    assert np.array_equal(got["fc1.bias"].numpy(), fc1[64:])
    assert np.array_equal(got["fc2.weight"].numpy().ravel(), fc2_w)
    assert np.array_equal(got["fc2.bias"].numpy(), fc2_b)
    from safetensors.torch import save_file as save_torch
    os.makedirs(os.path.join(OUT, "check"), exist_ok=True)
    save_torch({k: v.contiguous() for k, v in got.items()}, os.path.join(OUT, "check", "legacy_keys_order.safetensors"))
    dtypes = {torch.float32: "float32", torch.float64: "float64"}
    record(name, format="pytorch", inputs=[], outputs=[], operators={}, opsets={}, architecture="mlp", safety="safe",
           metadata={"epoch": "3"}, state_dict_key="state_dict", tensor_names=list(got),
           tensors={k: {"shape": list(v.shape), "dtype": dtypes[v.dtype]} for k, v in got.items()},
           **tensor_facts([v.numpy() for v in got.values()]))


def recent_torch_zip_fixture():
    """A zip torch.save of torch 2.13 as it writes every archive: entries with data descriptors,
    version-needed 0, a ZIP64 end-of-central-directory record and locator between the central
    directory and its end record, `.storage_alignment` and `.data/serialization_id`. Its archive
    root has 21 characters, so its first central header (`<root>/data.pkl`) is 76 bytes long — the
    size of the ZIP64 record and locator — which made the zip crate's start-offset guess land on
    the second header. Every feature is asserted on the bytes."""
    import shutil
    import tempfile

    import torch

    torch.manual_seed(42)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    sd = net.state_dict()
    sd["scale"] = torch.arange(6, dtype=torch.float64).reshape(2, 3) / 3
    name = "torch213_zip64.pt"
    root = "resnet18_epoch90_best"
    assert len(root) == 21
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, root + ".pt")
        torch.save(sd, path)
        shutil.copyfile(path, os.path.join(OUT, name))
    data = open(os.path.join(OUT, name), "rb").read()
    z = zipfile.ZipFile(io.BytesIO(data))
    infos = z.infolist()
    names = [i.filename for i in infos]
    assert names[0] == f"{root}/data.pkl" and 46 + len(names[0]) == 76, names[0]
    assert f"{root}/.storage_alignment" in names and f"{root}/.data/serialization_id" in names, names
    assert all(i.flag_bits & 0x08 and i.extract_version == 0 for i in infos), "data descriptors, version 0"
    eocd = data.rindex(b"PK\x05\x06")
    assert data[eocd - 20:eocd - 16] == b"PK\x06\x07", "ZIP64 locator before the end record"
    assert data[eocd - 76:eocd - 72] == b"PK\x06\x06", "ZIP64 end record before the locator"
    loaded = torch.load(os.path.join(OUT, name), weights_only=True)
    assert list(loaded) == list(sd)
    from safetensors.torch import save_file as save_torch
    os.makedirs(os.path.join(OUT, "check"), exist_ok=True)
    save_torch({k: v.contiguous() for k, v in loaded.items()}, os.path.join(OUT, "check", "torch213_zip64.safetensors"))
    dtypes = {torch.float32: "float32", torch.float64: "float64"}
    record(name, format="pytorch", inputs=[], outputs=[], operators={}, opsets={}, safety="safe", metadata={},
           tensor_names=list(loaded),
           tensors={k: {"shape": list(v.shape), "dtype": dtypes[v.dtype]} for k, v in loaded.items()},
           **tensor_facts([v.numpy() for v in loaded.values()]))


def gguf_fixtures():
    import gguf
    r = rng(10)
    path = os.path.join(OUT, "tiny-llama.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama-fixture")
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_block_count(1)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    tokens = [f"tok{i}" for i in range(40)]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    embed = r.standard_normal((40, 32)).astype(np.float32)
    q = r.standard_normal((32, 32)).astype(np.float32)
    norm = np.ones(32, np.float32)
    q8 = gguf.quantize(q, gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("token_embd.weight", embed)
    w.add_tensor("blk.0.attn_q.weight", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", norm)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    record("tiny-llama.gguf", format="gguf", inputs=[], outputs=[], operators={}, opsets={}, architecture="transformer-decoder",
           safety="not-applicable", tensor_count=3, parameters=40 * 32 + 32 * 32 + 32,
           weight_bytes=embed.nbytes + q8.nbytes + norm.nbytes,
           tensors={"token_embd.weight": {"dtype": "float32", "shape": [40, 32]},
                    "blk.0.attn_q.weight": {"dtype": "q8_0", "shape": [32, 32]},
                    "output_norm.weight": {"dtype": "float32", "shape": [32]}},
           sizes={"context_length": 64, "hidden_size": 32, "layers": 1, "vocab_size": 40, "attention_heads": 4},
           metadata_keys={"general.architecture": "llama", "general.name": "tiny-llama-fixture",
                          "tokenizer.ggml.tokens": "[40 items of string]"})


def hf_fixtures():
    """A BERT-style directory: config.json + model.safetensors."""
    from safetensors.numpy import save_file
    d = os.path.join(OUT, "tiny-bert")
    os.makedirs(d, exist_ok=True)
    r = rng(11)
    h = 32
    t = {
        "embeddings.word_embeddings.weight": r.standard_normal((100, h)).astype(np.float32),
        "embeddings.position_embeddings.weight": r.standard_normal((64, h)).astype(np.float32),
        "encoder.layer.0.attention.self.query.weight": r.standard_normal((h, h)).astype(np.float32),
        "encoder.layer.0.attention.self.query.bias": r.standard_normal(h).astype(np.float32),
    }
    save_file(t, os.path.join(d, "model.safetensors"))
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": h, "num_hidden_layers": 1,
           "num_attention_heads": 4, "vocab_size": 100, "max_position_embeddings": 64, "intermediate_size": 64}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    record("tiny-bert", format="safetensors", inputs=[], outputs=[], operators={}, opsets={}, metadata={},
           architecture="transformer-encoder", safety="not-applicable",
           sizes={"hidden_size": h, "layers": 1, "attention_heads": 4, "vocab_size": 100, "context_length": 64,
                  "intermediate_size": 64}, **tensor_facts(list(t.values())))


def random_bert(seed, **sizes):
    """A BertModel (no pooler, eager attention, two token types) with N(0, 0.1) weights drawn after
    torch.manual_seed(seed): the small encoders of the candle and sentence-embedding fixtures.
    Returns its config and the model, in eval mode."""
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    cfg = BertConfig(type_vocab_size=2, attn_implementation="eager", **sizes)
    bert = BertModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for p in bert.parameters():
            p.normal_(0.0, 0.1)
    return cfg, bert


def candle_fixtures():
    """Weights-only models with real tensor names and configs, for the candle back end: a 2-layer
    BERT and a 2-layer Llama written by transformers (save_pretrained), the Llama again as a q8_0
    GGUF in llama.cpp's layout, a vocabulary-only GGUF, and what torch computes for each (the
    reference `check` compares candle with). The BERT is also exported to ONNX, so that ort and
    tract can be compared with candle on it."""
    import torch
    import gguf
    from transformers import LlamaConfig, LlamaForCausalLM

    d = os.path.join(OUT, "candle")
    os.makedirs(d, exist_ok=True)
    ids = torch.tensor([[1, 7, 33, 90, 4, 127, 64, 12]], dtype=torch.long)

    _, bert = random_bert(21, vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=64)
    bert.save_pretrained(os.path.join(d, "bert"), safe_serialization=True)

    class Embed(torch.nn.Module):
        """last_hidden_state and its mean over the sequence: what the candle back end returns."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            h = self.m(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                       token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            return h, h.mean(dim=1)

    with torch.no_grad():
        h, pooled = Embed(bert)(ids)
    np.savez(os.path.join(d, "bert.inputs.npz"), input_ids=ids.numpy())
    np.savez(os.path.join(d, "bert.expected.npz"), last_hidden_state=h.numpy(), pooled=pooled.numpy())
    torch.onnx.export(Embed(bert), (ids,), os.path.join(d, "bert.onnx"), input_names=["input_ids"],
                      output_names=["last_hidden_state", "pooled"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                    "last_hidden_state": {0: "batch", 1: "sequence"}, "pooled": {0: "batch"}})

    torch.manual_seed(22)
    lcfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                       attn_implementation="eager")
    llama = LlamaForCausalLM(lcfg).eval()
    with torch.no_grad():
        for name, p in llama.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2)
    llama.save_pretrained(os.path.join(d, "llama"), safe_serialization=True)
    with torch.no_grad():
        logits = llama(input_ids=ids).logits[:, -1, :]
    np.savez(os.path.join(d, "llama.inputs.npz"), input_ids=ids.numpy())
    np.savez(os.path.join(d, "llama.expected.npz"), logits=logits.numpy())

    # The same Llama as llama.cpp lays it out: q/k rows permuted for its rotary embedding, matrices
    # quantized to q8_0, norms and embeddings in f32.
    def permute(w, heads):
        return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    sd = {k: v.detach().numpy().astype(np.float32) for k, v in llama.state_dict().items()}
    # Twice: q8_0 (what people ship), and f32 — the same layout without quantization error, which
    # must match torch as closely as the safetensors model does.
    for kind in ("q8_0", "f32"):
        w = gguf.GGUFWriter(os.path.join(d, f"llama-{kind}.gguf"), "llama")
        w.add_name(f"tiny-llama-{kind}")
        w.add_context_length(64)
        w.add_embedding_length(32)
        w.add_block_count(2)
        w.add_feed_forward_length(64)
        w.add_head_count(4)
        w.add_head_count_kv(2)
        w.add_rope_dimension_count(8)
        w.add_rope_freq_base(10000.0)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_tokenizer_model("llama")
        w.add_token_list([f"tok{i}" for i in range(128)])

        def mat(name, a):
            if kind == "f32":
                w.add_tensor(name, a)
                return
            q = gguf.quantize(a, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

        w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
        for i in range(2):
            p = f"model.layers.{i}."
            w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
            mat(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], 4))
            mat(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], 2))
            mat(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
            mat(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
            w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
            mat(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
            mat(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
            mat(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
        w.add_tensor("output_norm.weight", sd["model.norm.weight"])
        mat("output.weight", sd["lm_head.weight"])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    w = gguf.GGUFWriter(os.path.join(d, "vocab-only.gguf"), "llama")
    w.add_name("vocabulary only")
    w.add_tokenizer_model("llama")
    w.add_token_list([f"tok{i}" for i in range(128)])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def embed_fixture():
    """A sentence-embedding model laid out as such models are shipped for ONNX Runtime: a 1-layer
    BERT exported with input_ids, attention_mask and token_type_ids, next to its config.json and
    the tokenizer files transformers writes (tokenizer.json, tokenizer_config.json,
    special_tokens_map.json) — what fastembed's user-defined models load."""
    import tempfile

    import torch
    from transformers import BertTokenizerFast

    d = os.path.join(OUT, "embed")
    os.makedirs(d, exist_ok=True)
    words = ["the", "model", "runs", "rust", "in", "fast", "small", "text", "embedding"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + list("abcdefghijklmnopqrstuvwxyz")
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    with tempfile.TemporaryDirectory() as t:
        with open(os.path.join(t, "vocab.txt"), "w") as f:
            f.write("\n".join(vocab) + "\n")
        tok = BertTokenizerFast(vocab_file=os.path.join(t, "vocab.txt"), model_max_length=32)
    tok.save_pretrained(d, legacy_format=False)
    for extra in ("vocab.txt",):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))

    cfg, bert = random_bert(23, vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    cfg.architectures = ["BertModel"]
    cfg.to_json_file(os.path.join(d, "config.json"))

    class Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    enc = tok(["the model runs"], return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    dyn = {0: "batch", 1: "sequence"}
    torch.onnx.export(Hidden(bert), args, os.path.join(d, "model.onnx"),
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn,
                                    "last_hidden_state": dyn})


def embed_st_fixture():
    """The embedding fixture's encoder as a sentence-transformers directory, for candle: the same
    BERT (same seed) saved by transformers as model.safetensors + config.json, the tokenizer
    files, modules.json and 1_Pooling/config.json (mean pooling). check --text on candle is
    compared with the reference embeddings of embed-text/, made from the ONNX export."""
    import shutil

    d = os.path.join(OUT, "embed-st")
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(OUT, "embed", f), os.path.join(d, f))
    vocab = json.load(open(os.path.join(OUT, "embed", "config.json")))["vocab_size"]
    cfg, bert = random_bert(23, vocab_size=vocab, hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    cfg.architectures = ["BertModel"]
    bert.save_pretrained(d, safe_serialization=True)
    with open(os.path.join(d, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 16, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
                   "pooling_mode_lasttoken": False, "include_prompt": True}, f, indent=2)
    with open(os.path.join(d, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                  f, indent=2)


# check's built-in texts (src/check/text.rs, DEFAULT_TEXTS) and a set of texts in the fixture's
# vocabulary.
DEFAULT_TEXTS = ["A man is playing a guitar.", "A man plays the guitar.", "The stock market fell sharply today."]
CUSTOM_TEXTS = ["the model runs", "the model runs fast", "small text in rust"]


def embed_text_fixtures():
    """Reference embeddings of the embedding fixture, made without cargo-infer: Python's tokenizers
    (padding and truncation set as fastembed sets them), ONNX Runtime, numpy pooling over the
    attention mask, L2 normalisation. embed-text/{mean,cls}.npz hold `embeddings` of DEFAULT_TEXTS
    pooled by the mean and by the [CLS] token; custom.npz, CUSTOM_TEXTS by the mean."""
    import onnxruntime
    from tokenizers import Tokenizer

    src = os.path.join(OUT, "embed")
    d = os.path.join(OUT, "embed-text")
    os.makedirs(d, exist_ok=True)
    tok = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    cfg = json.load(open(os.path.join(src, "tokenizer_config.json")))
    pad = cfg["pad_token"]
    pad_id = json.load(open(os.path.join(src, "config.json"))).get("pad_token_id", tok.token_to_id(pad))
    tok.enable_padding(pad_id=pad_id, pad_token=pad)
    tok.enable_truncation(max_length=min(512, int(cfg["model_max_length"])))
    sess = onnxruntime.InferenceSession(os.path.join(src, "model.onnx"))

    def embed(texts, pooling):
        enc = tok.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }
        hidden = sess.run(["last_hidden_state"], feed)[0].astype(np.float64)
        if pooling == "cls":
            v = hidden[:, 0, :]
        else:
            m = feed["attention_mask"][:, :, None].astype(np.float64)
            v = (hidden * m).sum(axis=1) / m.sum(axis=1)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float32)

    np.savez(os.path.join(d, "mean.npz"), embeddings=embed(DEFAULT_TEXTS, "mean"))
    np.savez(os.path.join(d, "cls.npz"), embeddings=embed(DEFAULT_TEXTS, "cls"))
    np.savez(os.path.join(d, "custom.npz"), embeddings=embed(CUSTOM_TEXTS, "mean"))


# Names a model may carry and generated code must never run: a quote that would close a string
# literal and the code after it, a backslash, a newline that would end a comment, format braces,
# a block-comment end, non-ASCII.
HOSTILE_IN = 'x"\\\n{}*/ 入力'
HOSTILE_OUT = 'y"); std::fs::write("/tmp/cargo-infer-pwned-names", "x").unwrap(); println!("{}\\\n// */ ü'


def hostile_fixtures():
    """A small MLP whose input and output names are HOSTILE_IN and HOSTILE_OUT (scaffolded for
    every framework by the tests, which check that the payload never runs and the programs print
    the exact names), and the embedding model with its output named HOSTILE_OUT."""
    d = os.path.join(OUT, "hostile")
    os.makedirs(d, exist_ok=True)
    nodes, inits, arrays = mlp([4, 8, 3], seed=31)
    nodes[0].input[0] = HOSTILE_IN
    nodes[-1].output[0] = HOSTILE_OUT
    g = helper.make_graph(nodes, "hostile", [helper.make_tensor_value_info(HOSTILE_IN, TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info(HOSTILE_OUT, TensorProto.FLOAT, ["batch", 3])], inits)
    save_onnx("hostile/names.onnx", g, "mlp", [spec(HOSTILE_IN, "float32", ["batch", 4])],
              [spec(HOSTILE_OUT, "float32", ["batch", 3])], arrays,
              metadata={'"); panic!("': 'line one\nline two */ {}'})

    e = os.path.join(d, "embed")
    os.makedirs(e, exist_ok=True)
    src = os.path.join(OUT, "embed")
    for f in os.listdir(src):
        if f != "model.onnx":
            with open(os.path.join(src, f), "rb") as a, open(os.path.join(e, f), "wb") as b:
                b.write(a.read())
    m = onnx.load(os.path.join(src, "model.onnx"))
    old = m.graph.output[0].name
    for n in m.graph.node:
        for i, o in enumerate(n.output):
            if o == old:
                n.output[i] = HOSTILE_OUT
    m.graph.output[0].name = HOSTILE_OUT
    onnx.save_model(m, os.path.join(e, "model.onnx"))


def input_forms_fixture():
    """One model with every form of input real models have: a symbolic batch, a scalar int64 (a
    sample rate), a scalar float (a threshold), a bool, int32 ids, float16 — and outputs of the
    same kinds, a scalar among them."""
    f32, i64, i32, b, f16 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL, TensorProto.FLOAT16
    inputs = [("x", f32, ["batch", 4]), ("sr", i64, []), ("threshold", f32, []), ("flag", b, [1]),
              ("ids", i32, [3]), ("h", f16, [2])]
    outputs = [("y", f32, ["batch", 4]), ("sr_next", i64, []), ("not_flag", b, [1]), ("ids_next", i32, [3]),
               ("h_squared", f16, [2])]
    one64 = np.array(1, dtype=np.int64)
    one32 = np.array(1, dtype=np.int32)
    nodes = [
        helper.make_node("Mul", ["x", "threshold"], ["scaled"], name="scale"),
        helper.make_node("Cast", ["sr"], ["sr_f"], name="sr_float", to=f32),
        helper.make_node("Add", ["scaled", "sr_f"], ["y"], name="shift"),
        helper.make_node("Add", ["sr", "one64"], ["sr_next"], name="next_rate"),
        helper.make_node("Not", ["flag"], ["not_flag"], name="negate"),
        helper.make_node("Add", ["ids", "one32"], ["ids_next"], name="next_ids"),
        helper.make_node("Mul", ["h", "h"], ["h_squared"], name="square"),
    ]
    names = {f32: "float32", i64: "int64", i32: "int32", b: "bool", f16: "float16"}
    g = helper.make_graph(nodes, "forms", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
                          [init("one64", one64), init("one32", one32)])
    os.makedirs(os.path.join(OUT, "forms"), exist_ok=True)
    save_onnx("forms/inputs.onnx", g, "unknown", [spec(n, names[t], s) for n, t, s in inputs],
              [spec(n, names[t], s) for n, t, s in outputs], [one64, one32])

    # A streaming-style model that cannot run with its symbolic dimensions at 1: it folds the
    # sequence into pairs (a Reshape to [-1, 2] of batch × sequence elements).
    pairs = np.array([-1, 2], dtype=np.int64)
    g = helper.make_graph([helper.make_node("Reshape", ["x", "pairs"], ["y"], name="fold")], "needs_dims",
                          [helper.make_tensor_value_info("x", f32, ["batch", "sequence"])],
                          [helper.make_tensor_value_info("y", f32, ["frames", 2])], [init("pairs", pairs)])
    save_onnx("forms/needs_dims.onnx", g, "unknown", [spec("x", "float32", ["batch", "sequence"])],
              [spec("y", "float32", ["frames", 2])], [pairs])


def stale_shapes_fixture():
    """A symbolic batch with the shapes an exporter recorded while tracing with batch 1: the
    intermediate value and the output are annotated [1, 4] though the input is [batch, 4]
    (ONNX Runtime runs it at any batch; tract unifies the annotations with the input shape)."""
    bias = np.array([0.5, -0.5, 1.0, 2.0], dtype=np.float32)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["h"], name="relu"),
                           helper.make_node("Add", ["h", "bias"], ["y"], name="add")], "stale",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [init("bias", bias)],
                          value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 4])])
    os.makedirs(os.path.join(OUT, "forms"), exist_ok=True)
    # Not checked: the checker's shape inference rightly finds the annotations inconsistent.
    save_onnx("forms/stale_value_info.onnx", g, "unknown", [spec("x", "float32", ["batch", 4])],
              [spec("y", "float32", [1, 4])], [bias], check=False)


def bad_fixtures():
    """Files that must be refused with a one-line error (exit 2); expected["bad/..."] holds a
    phrase the error must contain."""
    d = os.path.join(OUT, "bad")
    os.makedirs(d, exist_ok=True)

    def bad(name, data, phrase):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        expected[f"bad/{name}"] = {"error": phrase}

    bad("empty.onnx", b"", "empty")
    bad("lfs-pointer.onnx", b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 123456789\n",
        "Git LFS pointer")
    bad("unknown.bin", b"\x00\x01\x02\x03 this is not a model at all", "not a model format")
    # safetensors header claiming 10^15 elements.
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000000, 1000000000], "data_offsets": [0, 16]}}).encode()
    bad("absurd.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 16, "needs 4000000000000000 bytes")
    # safetensors header length past the end of the file.
    bad("header-past-eof.safetensors", struct.pack("<Q", 1 << 40) + b"{}", "header claims")
    # GGUF claiming 10^15 tensors.
    bad("absurd-count.gguf", b"GGUF" + struct.pack("<IQQ", 3, 10**15, 0), "more than the file holds")
    # GGUF tensor of 10^15 elements in a tiny file.
    name = b"w"
    info = struct.pack("<Q", len(name)) + name + struct.pack("<I", 2) + struct.pack("<QQ", 10**9, 10**6) + struct.pack("<IQ", 0, 0)
    bad("absurd-tensor.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + info + b"\0" * 64, "truncated")
    # ONNX initializer declaring 10^15 floats but carrying 16 bytes.
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**9], raw_data=b"\0" * 16)
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    bad("absurd-dims.onnx", m.SerializeToString(), "carries 16 bytes")
    # A zip that is not a PyTorch archive.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    bad("not-torch.zip", buf.getvalue(), "without a data.pkl")
    # An ONNX file whose external data file is shorter than the tensors it should hold.
    nodes, inits, arrays = mlp([4, 8, 2], seed=12)
    gr = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                           [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(gr, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.save_model(model, os.path.join(d, "short-external.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="short-external.onnx.data", size_threshold=0)
    with open(os.path.join(d, "short-external.onnx.data"), "r+b") as f:
        f.truncate(40)
    expected["bad/short-external.onnx"] = {"error": "which has 40 bytes"}


def outside_external_fixtures():
    """ONNX models whose external data lies outside their directory (CVE-2024-27318): one climbs
    out with `..`, one names an absolute path. inspect reports them unsafe without opening the
    file; every other command refuses them. Written by hand: onnx.save_model would write there."""
    d = os.path.join(OUT, "unsafe")
    os.makedirs(d, exist_ok=True)
    for name, location in [("external-parent.onnx", "../secret.bin"), ("external-absolute.onnx", "/etc/passwd")]:
        nodes, inits, arrays = mlp([4, 8, 2], seed=13)
        offset = 0
        for t in inits:
            n = len(t.raw_data)
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", location), ("offset", str(offset)), ("length", str(n))):
                t.external_data.add(key=k, value=v)
            offset += n
        g = helper.make_graph(nodes, "outside", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 2])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cargo-infer-fixtures",
                              producer_version="1")
        m.ir_version = 8
        with open(os.path.join(d, name), "wb") as f:
            f.write(m.SerializeToString())
        record(f"unsafe/{name}", format="onnx", inputs=[spec("input", "float32", ["batch", 4])],
               outputs=[spec("output", "float32", ["batch", 2])], operators=ops_of(g), opsets={"ai.onnx": OPSET},
               metadata={}, architecture="mlp", safety="unsafe", dangerous=[location], **tensor_facts(arrays))


def prepare_fixtures():
    """Graph forms tract refuses as they are and runs once prepared (issue 14), each with the
    inputs it is checked on (`NAME.inputs.npz`):
    - forms/if_rank.onnx: an If on a scalar sample rate `sr` (as voice-activity detectors do)
      whose branches give different ranks — (1, 4, 1) against (1, 4) — with a nested If in the
      taken branch whose own branches differ, and an untaken branch that cannot be typed at the
      taken branch's shapes (a Squeeze of an axis that is 2, not 1, at n = 8);
    - forms/squeeze_opset11.onnx: opset 11, a Squeeze with its axes left implicit (valid; tract
      wants them written), after an Unsqueeze, at a symbolic batch."""
    i64, f32 = TensorProto.INT64, TensorProto.FLOAT
    d = os.path.join(OUT, "forms")
    os.makedirs(d, exist_ok=True)
    r = rng(14)
    w = r.standard_normal((8, 4)).astype(np.float32)
    consts = []  # Constant nodes' values count as weights, as inspect counts them

    def const(name, arr):
        consts.append(arr)
        return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(arr, name))
    inner_then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="matmul"),
         const("axes2", np.array([2], dtype=np.int64)),
         helper.make_node("Unsqueeze", ["h", "axes2"], ["t"], name="unsqueeze")],
        "wide_then", [], [helper.make_tensor_value_info("t", f32, [1, 4, 1])])
    inner_else = helper.make_graph(
        [const("shape3", np.array([1, -1, 4], dtype=np.int64)),
         helper.make_node("Reshape", ["x", "shape3"], ["t2"], name="reshape_wide")],
        "wide_else", [], [helper.make_tensor_value_info("t2", f32, [1, None, 4])])
    outer_then = helper.make_graph(
        [const("c8000", np.array(8000, dtype=np.int64)),
         helper.make_node("Greater", ["sr", "c8000"], ["wide"], name="is_wide"),
         helper.make_node("If", ["wide"], ["inner"], name="If_wide", then_branch=inner_then, else_branch=inner_else)],
        "sr16k", [], [helper.make_tensor_value_info("inner", f32, None)])
    outer_else = helper.make_graph(
        [const("shape8k", np.array([1, -1, 4], dtype=np.int64)),
         helper.make_node("Reshape", ["x", "shape8k"], ["r8"], name="reshape_8k"),
         const("axes1", np.array([1], dtype=np.int64)),
         helper.make_node("Squeeze", ["r8", "axes1"], ["s8"], name="squeeze_8k")],
        "sr8k", [], [helper.make_tensor_value_info("s8", f32, [1, 4])])
    g = helper.make_graph(
        [const("c16000", np.array(16000, dtype=np.int64)),
         helper.make_node("Equal", ["sr", "c16000"], ["is16k"], name="is_16k"),
         helper.make_node("If", ["is16k"], ["branch"], name="If_sr", then_branch=outer_then, else_branch=outer_else),
         const("flat", np.array([1, -1], dtype=np.int64)),
         helper.make_node("Reshape", ["branch", "flat"], ["y"], name="flatten")],
        "if_rank",
        [helper.make_tensor_value_info("x", f32, [1, "n"]), helper.make_tensor_value_info("sr", i64, [])],
        [helper.make_tensor_value_info("y", f32, [1, "m"])], [init("w", w)])
    # Not checked: the checker's shape inference rightly refuses branches of different ranks,
    # which exporters write all the same.
    save_onnx("forms/if_rank.onnx", g, "unknown",
              [spec("x", "float32", [1, "n"]), spec("sr", "int64", [])], [spec("y", "float32", [1, "m"])], [w] + consts,
              check=False)
    x = r.standard_normal((1, 8)).astype(np.float32)
    np.savez(os.path.join(d, "if_rank.inputs.npz"), x=x, sr=np.array(16000, dtype=np.int64))

    # forms/if_data.onnx: an If on the data itself (the sign of a sum), branches of different
    # rank: nothing makes the condition constant, so tract cannot load it even prepared, while
    # ONNX Runtime runs it. `decide` must not choose tract for it.
    consts.clear()
    then_g = helper.make_graph([const("axes_t", np.array([2], dtype=np.int64)),
                                helper.make_node("Unsqueeze", ["x", "axes_t"], ["tu"], name="unsqueeze_t")],
                               "positive", [], [helper.make_tensor_value_info("tu", f32, [1, 4, 1])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["tn"], name="neg")],
                               "negative", [], [helper.make_tensor_value_info("tn", f32, [1, 4])])
    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["total"], name="sum", keepdims=0),
         const("zero", np.array(0.0, dtype=np.float32)),
         helper.make_node("Greater", ["total", "zero"], ["positive"], name="is_positive"),
         helper.make_node("If", ["positive"], ["branch"], name="If_sign", then_branch=then_g, else_branch=else_g),
         const("flat2", np.array([1, -1], dtype=np.int64)),
         helper.make_node("Reshape", ["branch", "flat2"], ["y"], name="flatten")],
        "if_data", [helper.make_tensor_value_info("x", f32, [1, 4])],
        [helper.make_tensor_value_info("y", f32, [1, 4])], [])
    save_onnx("forms/if_data.onnx", g, "unknown", [spec("x", "float32", [1, 4])], [spec("y", "float32", [1, 4])],
              list(consts), check=False)

    bias = r.standard_normal((3, 1)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Unsqueeze", ["x"], ["u"], name="unsqueeze", axes=[2]),
         helper.make_node("Add", ["u", "bias"], ["a"], name="add"),
         helper.make_node("Squeeze", ["a"], ["y"], name="squeeze")],
        "squeeze_opset11", [helper.make_tensor_value_info("x", f32, ["batch", 3])],
        [helper.make_tensor_value_info("y", f32, None)], [init("bias", bias)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], producer_name="cargo-infer-fixtures",
                              producer_version="1")
    model.ir_version = 6
    # Not checked: the checker wants a shape on the output, whose rank depends on the batch.
    onnx.save_model(model, os.path.join(d, "squeeze_opset11.onnx"))
    record("forms/squeeze_opset11.onnx", format="onnx", inputs=[spec("x", "float32", ["batch", 3])],
           outputs=[{"name": "y", "dtype": "float32", "shape": [], "shape_known": False}], operators=ops_of(g),
           opsets={"ai.onnx": 11}, metadata={},
           architecture="unknown", safety="not-applicable", **tensor_facts([bias]))
    np.savez(os.path.join(d, "squeeze_opset11.inputs.npz"), x=r.standard_normal((1, 3)).astype(np.float32))


def bisect_fixtures():
    """Two runs that part ways in the middle of a graph, for `check --bisect`:
    - bisect/cnn.onnx and its re-export bisect/cnn_altered.onnx: the same six-convolution network,
      the twin with every node and intermediate tensor renamed (as exporters do) and the middle
      convolution's weights changed; bisect names that convolution.
    - bisect/gru_reverse.onnx: a reverse GRU (tract and ONNX Runtime disagree on it) between dense
      layers; bisect names the GRU, not the output."""
    d = os.path.join(OUT, "bisect")
    os.makedirs(d, exist_ok=True)
    f32 = TensorProto.FLOAT
    r = rng(41)
    chans = [3, 8, 8, 8, 8, 8, 8]
    arrays, names = [], []
    for i in range(6):
        arrays += [r.standard_normal((chans[i + 1], chans[i], 3, 3)).astype(np.float32) * 0.3,
                   r.standard_normal(chans[i + 1]).astype(np.float32) * 0.1]
        names += [f"conv{i}.weight", f"conv{i}.bias"]
    fw = r.standard_normal((4, chans[-1])).astype(np.float32) * 0.3
    fb = r.standard_normal(4).astype(np.float32) * 0.1
    arrays += [fw, fb]
    names += ["fc.weight", "fc.bias"]

    def cnn(rename, weights):
        t = (lambda n: n) if not rename else (lambda n: f"/model/{n}_output_0")
        nd = (lambda n: n) if not rename else (lambda n: f"/model/{n.capitalize()}")
        nodes, cur = [], "image"
        for i in range(6):
            nodes.append(helper.make_node("Conv", [cur, f"conv{i}.weight", f"conv{i}.bias"], [t(f"c{i}")],
                                          name=nd(f"conv{i}"), pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [t(f"c{i}")], [t(f"r{i}")], name=nd(f"relu{i}")))
            cur = t(f"r{i}")
        nodes += [
            helper.make_node("GlobalAveragePool", [cur], [t("gap")], name=nd("gap")),
            helper.make_node("Flatten", [t("gap")], [t("flat")], name=nd("flatten")),
            helper.make_node("Gemm", [t("flat"), "fc.weight", "fc.bias"], ["logits"], name=nd("fc"), transB=1),
        ]
        inits = [init(n, a) for n, a in zip(names, weights)]
        return helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("image", f32, [1, 3, 12, 12])],
                                 [helper.make_tensor_value_info("logits", f32, [1, 4])], inits)

    io_specs = ([spec("image", "float32", [1, 3, 12, 12])], [spec("logits", "float32", [1, 4])])
    save_onnx("bisect/cnn.onnx", cnn(False, arrays), "cnn", *io_specs, arrays)
    altered = [a.copy() for a in arrays]
    altered[names.index("conv3.weight")][0, 0, 1, 1] += 0.5
    save_onnx("bisect/cnn_altered.onnx", cnn(True, altered), "cnn", *io_specs, altered)

    seq, feat = 5, 4
    nodes, names, arrays = reverse_gru_layers(rng(42), "x", seq, feat)
    inits = [init(n, a) for n, a in zip(names, arrays)]
    g = helper.make_graph(nodes, "gru_reverse", [helper.make_tensor_value_info("x", f32, [seq, 1, feat])],
                          [helper.make_tensor_value_info("y", f32, [seq, 1, 3])], inits)
    save_onnx("bisect/gru_reverse.onnx", g, "rnn", [spec("x", "float32", [seq, 1, feat])],
              [spec("y", "float32", [seq, 1, 3])], arrays)


def reverse_gru_layers(r, x, seq, feat, hidden=6):
    """Dense → Relu → reverse GRU → Squeeze → Dense → Tanh from tensor `x` [seq, batch, feat] to `y`
    (tract and ONNX Runtime disagree on reverse GRUs): the nodes, and the weights' names and arrays."""
    w0 = r.standard_normal((feat, feat)).astype(np.float32) * 0.5
    W = r.standard_normal((1, 3 * hidden, feat)).astype(np.float32) * 0.4
    R = r.standard_normal((1, 3 * hidden, hidden)).astype(np.float32) * 0.4
    B = r.standard_normal((1, 6 * hidden)).astype(np.float32) * 0.1
    w1 = r.standard_normal((hidden, 3)).astype(np.float32) * 0.5
    axes = np.array([1], np.int64)
    nodes = [
        helper.make_node("MatMul", [x, "dense0.weight"], ["d0"], name="dense0"),
        helper.make_node("Relu", ["d0"], ["a0"], name="relu0"),
        helper.make_node("GRU", ["a0", "W", "R", "B"], ["Y", ""], name="gru", hidden_size=hidden,
                         direction="reverse"),
        helper.make_node("Squeeze", ["Y", "axes1"], ["h"], name="squeeze"),
        helper.make_node("MatMul", ["h", "dense1.weight"], ["d1"], name="dense1"),
        helper.make_node("Tanh", ["d1"], ["y"], name="tanh"),
    ]
    return nodes, ["dense0.weight", "W", "R", "B", "dense1.weight", "axes1"], [w0, W, R, B, w1, axes]


def bisect_exported_fixture():
    """bisect/exported.onnx: the reverse GRU between dense layers again, in the forms exporters
    write: a symbolic batch with the intermediate shapes recorded at batch 1 (stale at any other),
    an `If` on the data before them (its branches' tensors are not the main graph's), and the
    weights in an external data file. Bisect still names the GRU."""
    d = os.path.join(OUT, "bisect")
    os.makedirs(d, exist_ok=True)
    f32 = TensorProto.FLOAT
    seq, feat, hidden = 5, 4, 6
    gru_nodes, names, arrays = reverse_gru_layers(rng(44), "g", seq, feat, hidden)
    zero = np.array(0.0, np.float32)
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["kept"], name="keep")], "then", [],
                               [helper.make_tensor_value_info("kept", f32, [seq, "batch", feat])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["flipped"], name="flip")], "else", [],
                               [helper.make_tensor_value_info("flipped", f32, [seq, "batch", feat])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], name="total", keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"], name="positive"),
        helper.make_node("If", ["positive"], ["g"], name="sign", then_branch=then_g, else_branch=else_g),
    ] + gru_nodes
    arrays = arrays + [zero]
    inits = [init(n, a) for n, a in zip(names + ["zero"], arrays)]
    stale = [helper.make_tensor_value_info(n, f32, s) for n, s in
             [("d0", [seq, 1, feat]), ("a0", [seq, 1, feat]), ("Y", [seq, 1, 1, hidden]), ("h", [seq, 1, hidden]),
              ("d1", [seq, 1, 3])]]
    g = helper.make_graph(nodes, "exported", [helper.make_tensor_value_info("x", f32, [seq, "batch", feat])],
                          [helper.make_tensor_value_info("y", f32, [seq, "batch", 3])], inits, value_info=stale)
    # Not checked: the stale annotations are inconsistent at any batch but 1, as exported.
    save_onnx("bisect/exported.onnx", g, "rnn", [spec("x", "float32", [seq, "batch", feat])],
              [spec("y", "float32", [seq, "batch", 3])], arrays, check=False, external="exported.onnx.data",
              # Small tensors (the Squeeze axes) stay inline, as exporters keep them.
              external_threshold=64)


def graph_fixture():
    """graph/repeated.onnx: a thousand nodes, a hundred identical ten-node residual blocks (as a
    deep network's layers are), for `inspect --graph` folding repeated blocks."""
    os.makedirs(os.path.join(OUT, "graph"), exist_ok=True)
    r = rng(43)
    w = r.standard_normal((16, 16)).astype(np.float32) * 0.2
    b = r.standard_normal(16).astype(np.float32) * 0.1
    half = np.array(0.5, np.float32)
    nodes, cur = [], "x"
    for k in range(100):
        t = lambda s: f"b{k}.{s}"
        nodes += [
            helper.make_node("MatMul", [cur, "w"], [t("mm")], name=t("matmul")),
            helper.make_node("Add", [t("mm"), "b"], [t("lin")], name=t("bias")),
            helper.make_node("Relu", [t("lin")], [t("act")], name=t("relu")),
            helper.make_node("Mul", [t("act"), "half"], [t("scaled")], name=t("scale")),
            helper.make_node("Add", [t("scaled"), cur], [t("res")], name=t("residual")),
            helper.make_node("Sigmoid", [t("res")], [t("gate")], name=t("gate")),
            helper.make_node("Mul", [t("gate"), t("res")], [t("gated")], name=t("apply_gate")),
            helper.make_node("Add", [t("gated"), "b"], [t("shift")], name=t("shift")),
            helper.make_node("Tanh", [t("shift")], [t("squash")], name=t("tanh")),
            helper.make_node("Add", [t("squash"), cur], [t("out")], name=t("out")),
        ]
        cur = t("out")
    nodes.append(helper.make_node("Identity", [cur], ["y"], name="result"))
    g = helper.make_graph(nodes, "repeated", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
                          [init("w", w), init("b", b), init("half", half)])
    save_onnx("graph/repeated.onnx", g, "mlp", [spec("x", "float32", [1, 16])], [spec("y", "float32", [1, 16])],
              [w, b, half])


def burn_fixtures():
    """What burn (burn-onnx 0.22 + burn-flex) computes differently, and what it refuses.

    burn/maxpool_over_input.onnx: the tail of a MobileNet-style classifier (PaddleOCR's text
    direction classifier has it) on an input of symbolic height and width: 1x1 conv, MaxPool 2x2
    stride 2, GlobalAveragePool, Gemm, Softmax. At 1x1 (what `check` feeds symbolic dimensions by
    default) ONNX Runtime and tract size the pool's output (1-2)/2+1 = 1 with C's truncating
    division; burn-flex floors it to 0, the average over nothing is 0, and burn returns the
    softmax of the bias alone. At 4x4 they agree.

    burn/same_lower_dynamic.onnx: a Conv with auto_pad SAME_LOWER on symbolic height and width,
    which burn-onnx refuses at build time (it needs the spatial sizes); tract and ONNX Runtime run it."""
    g = rng(2303)
    c = 4
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 2])
    w = (g.standard_normal((c, 3, 1, 1)) * 0.5).astype(np.float32)
    fc = (g.standard_normal((2, c)) * 0.5).astype(np.float32)
    bias = np.array([0.3, -0.2], dtype=np.float32)
    arrays = [w, fc, bias]
    weights = [init("conv.weight", w), init("fc.weight", fc), init("fc.bias", bias)]
    nodes = [
        helper.make_node("Conv", ["image", "conv.weight"], ["features"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("MaxPool", ["features"], ["pooled"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["pooled"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(nodes, "maxpool_over_input", [x], [y], weights)
    save_onnx("burn/maxpool_over_input.onnx", graph, "cnn",
              [spec("image", "float32", [1, 3, "height", "width"])], [spec("probs", "float32", [1, 2])],
              arrays)

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 2, "height", "width"])
    y = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 2, "height", "width"])
    w = (g.standard_normal((2, 2, 3, 3)) * 0.5).astype(np.float32)
    arrays = [w]
    weights = [init("conv.weight", w)]
    nodes = [helper.make_node("Conv", ["image", "conv.weight"], ["features"], name="conv",
                              kernel_shape=[3, 3], auto_pad="SAME_LOWER")]
    graph = helper.make_graph(nodes, "same_lower_dynamic", [x], [y], weights)
    save_onnx("burn/same_lower_dynamic.onnx", graph, "cnn",
              [spec("image", "float32", [1, 2, "height", "width"])],
              [spec("features", "float32", [1, 2, "height", "width"])], arrays)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    onnx_fixtures()
    safetensors_fixtures()
    pytorch_fixtures()
    legacy_keys_order_fixture()
    recent_torch_zip_fixture()
    gguf_fixtures()
    hf_fixtures()
    candle_fixtures()
    embed_fixture()
    embed_text_fixtures()
    embed_st_fixture()
    unsupported_op_fixture()
    dynamic_reshape_fixture()
    reference_outputs()
    bad_fixtures()
    outside_external_fixtures()
    hostile_fixtures()
    input_forms_fixture()
    stale_shapes_fixture()
    prepare_fixtures()
    bisect_fixtures()
    bisect_exported_fixture()
    graph_fixture()
    burn_fixtures()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(expected)} fixtures to {OUT}")
