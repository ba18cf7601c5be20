"""PyTorch → ONNX export helper for `onnx-serve convert`.

Reads a JSON array of jobs on stdin and writes one JSON line per job on stdout, so that one Python
start (importing torch takes seconds) can convert several models. Each job:

  source       "path/file.py:factory", "package.module:callable" or "model.pt" (TorchScript)
  state_dict   optional path of a state dict loaded into the factory's model
  kwargs       keyword arguments for the factory
  inputs       [{"name", "shape": [..], "dtype"}]
  output_names names of the graph outputs (default output_0, output_1, ...)
  output       path of the .onnx file to write
  opset        ONNX opset (default: the highest this torch exports, capped at 17)
  dynamic_batch        make axis 0 of every input and output dynamic (default true)
  dynamic_axes {"input or output name": {"axis": "label"}} beyond the batch axis
  samples      seeded random input sets to run through PyTorch (default 5)
  sample_file  optional .npz (arrays named after the inputs) run as one more test data set
  seed         seed for the factory's random weights and the random inputs (default 0)
  skip_eval    testing only: keep the model in training mode while computing reference outputs

The test data sets follow the ONNX backend test convention: test_data_set_N/input_K.pb and
output_K.pb next to the model, TensorProto messages named after the graph's inputs and outputs.

A job with "task": "float16" converts an exported model instead (onnx and numpy only):

  model        the float32 .onnx file
  output       where to write the float16 one
  fp16_io      make float graph inputs and outputs float16 too (default false: they stay float32)

A failure is reported as {"ok": false, "stage", "message", "error"}: a short sentence saying what
went wrong and what was expected, plus the underlying exception for the curious.
"""

import importlib
import importlib.util
import json
import os
import shutil
import sys
import traceback
import warnings

DTYPES = {
    "float32": "float32",
    "float64": "float64",
    "float16": "float16",
    "int64": "int64",
    "int32": "int32",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}
PREFERRED_OPSET = 17


class ExportFailure(Exception):
    def __init__(self, stage, message, cause=None):
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.cause = cause


def fail(stage, message):
    """Turns whatever the block raises into an ExportFailure with a message for the user."""

    class Guard:
        def __enter__(self):
            return self

        def __exit__(self, kind, error, _tb):
            if error is None or isinstance(error, ExportFailure):
                return False
            raise ExportFailure(stage, message, error) from error

    return Guard()


def default_opset():
    from torch.onnx import _constants

    return min(PREFERRED_OPSET, _constants.ONNX_MAX_OPSET)


def resolve_callable(spec):
    if ":" not in spec:
        raise ValueError(f'expected "path/file.py:name" or "package.module:name", got "{spec}"')
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such file: {path}")
        # The file's own folder goes on sys.path so that it can import its neighbours.
        sys.path.insert(0, os.path.dirname(path))
        module_name = "onnx_serve_source_" + str(abs(hash(path)))
        spec_obj = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec_obj)
        spec_obj.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, name):
        raise AttributeError(f'{where} has no attribute "{name}"')
    return getattr(module, name)


def load_model(job):
    import torch

    source = job["source"]
    if source.endswith(".pt") and ":" not in source:
        with fail("load", f"cannot load the TorchScript archive {source}"):
            return torch.jit.load(source, map_location="cpu")
    with fail("load", f"cannot find the factory {source}"):
        factory = resolve_callable(source)
    with fail("load", f"the factory {source} raised an error"):
        model = factory(**job.get("kwargs", {}))
    if not isinstance(model, torch.nn.Module):
        raise ExportFailure(
            "load", f"the factory {source} returned {type(model).__name__}, expected a torch.nn.Module"
        )
    if job.get("state_dict"):
        with fail("load", f"cannot load the state dict {job['state_dict']} into the model of {source}"):
            model.load_state_dict(torch.load(job["state_dict"], map_location="cpu"))
    return model


def random_inputs(job, batch, generator):
    import torch

    tensors = []
    for spec in job["inputs"]:
        shape = list(spec["shape"])
        if batch is not None and job["dynamic_batch"] and shape:
            shape[0] = batch
        dtype = getattr(torch, spec["dtype"])
        if dtype.is_floating_point:
            tensor = torch.randn(shape, generator=generator).to(dtype)
        elif dtype == torch.bool:
            tensor = torch.randint(0, 2, shape, generator=generator).bool()
        else:
            # Small non-negative integers: valid indices for embeddings and gathers.
            tensor = torch.randint(0, 10, shape, generator=generator, dtype=dtype)
        tensors.append(tensor)
    return tensors


def as_tuple(outputs):
    import torch

    if isinstance(outputs, torch.Tensor):
        return (outputs,)
    if isinstance(outputs, (tuple, list)):
        return tuple(outputs)
    if isinstance(outputs, dict):
        return tuple(outputs.values())
    raise ExportFailure("sample", f"the model returned {type(outputs).__name__}, expected tensors")


def write_test_data(directory, input_names, inputs, output_names, outputs):
    from onnx import numpy_helper

    os.makedirs(directory)
    for index, (name, tensor) in enumerate(zip(input_names, inputs)):
        proto = numpy_helper.from_array(tensor.detach().numpy(), name)
        with open(os.path.join(directory, f"input_{index}.pb"), "wb") as file:
            file.write(proto.SerializeToString())
    for index, (name, tensor) in enumerate(zip(output_names, outputs)):
        proto = numpy_helper.from_array(tensor.detach().numpy(), name)
        with open(os.path.join(directory, f"output_{index}.pb"), "wb") as file:
            file.write(proto.SerializeToString())


def convert(job):
    import torch
    import onnx

    job.setdefault("dynamic_batch", True)
    job.setdefault("samples", 5)
    seed = job.get("seed", 0)
    opset = job.get("opset") or default_opset()
    input_names = [spec["name"] for spec in job["inputs"]]
    for spec in job["inputs"]:
        if spec["dtype"] not in DTYPES:
            raise ExportFailure(
                "input", f'input {spec["name"]} has dtype "{spec["dtype"]}", expected one of {", ".join(DTYPES)}'
            )

    torch.manual_seed(seed)
    model = load_model(job)
    model.eval()
    if job.get("skip_eval"):
        model.train()

    example = random_inputs(job, None, None)
    with fail("sample", "the model failed on inputs of the given shapes (check --input NAME:SHAPE:DTYPE)"):
        with torch.no_grad():
            example_outputs = as_tuple(model(*example))
    output_names = job.get("output_names") or [f"output_{i}" for i in range(len(example_outputs))]
    if len(output_names) != len(example_outputs):
        raise ExportFailure(
            "input",
            f"{len(output_names)} output names given ({', '.join(output_names)}), "
            f"but the model returns {len(example_outputs)} outputs",
        )

    dynamic_axes = {}
    if job["dynamic_batch"]:
        for name in input_names + output_names:
            dynamic_axes[name] = {0: "batch"}
    for name, axes in (job.get("dynamic_axes") or {}).items():
        if name not in input_names + output_names:
            raise ExportFailure(
                "input",
                f'dynamic axis for "{name}", which is neither an input nor an output '
                f"(inputs: {', '.join(input_names)}; outputs: {', '.join(output_names)})",
            )
        dynamic_axes.setdefault(name, {}).update({int(axis): label for axis, label in axes.items()})

    output = os.path.abspath(job["output"])
    os.makedirs(os.path.dirname(output), exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                tuple(example),
                output,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                # The exporter puts the model in eval mode itself; skip_eval only changes the reference outputs.
                training=torch.onnx.TrainingMode.EVAL,
            )
    except Exception as error:
        raise ExportFailure("export", export_failure_message(error, opset), error) from error
    with fail("check", "the ONNX checker rejected the exported model"):
        onnx.checker.check_model(onnx.load(output), full_check=True)

    folder = os.path.dirname(output)
    for entry in os.listdir(folder):
        if entry.startswith("test_data_set_"):
            shutil.rmtree(os.path.join(folder, entry))
    generator = torch.Generator().manual_seed(seed)
    batches = [1, 2] if job["dynamic_batch"] else [None]
    sets = []
    for index in range(job["samples"]):
        batch = batches[index % len(batches)]
        sets.append(random_inputs(job, batch, generator))
    if job.get("sample_file"):
        sets.append(read_sample_file(job["sample_file"], job["inputs"]))
    for index, inputs in enumerate(sets):
        with fail("sample", f"PyTorch failed on test data set {index}"):
            with torch.no_grad():
                outputs = as_tuple(model(*inputs))
        write_test_data(os.path.join(folder, f"test_data_set_{index}"), input_names, inputs, output_names, outputs)

    return {
        "ok": True,
        "output": output,
        "opset": opset,
        "inputs": input_names,
        "outputs": output_names,
        "test_data_sets": len(sets),
        "torch": torch.__version__,
    }


def export_failure_message(error, opset):
    import re

    unsupported = re.search(r"operator '([^']+)'", str(error))
    if type(error).__name__ == "UnsupportedOperatorError" and unsupported:
        return (
            f"the model uses {unsupported.group(1)}, which torch.onnx cannot export at opset {opset}: "
            "rewrite that part with supported operations, try another --opset, or register a symbolic function"
        )
    return f"torch.onnx.export failed at opset {opset}"


def read_sample_file(path, specs):
    import numpy
    import torch

    with fail("input", f"cannot read the sample file {path} (expected a .npz with one array per input)"):
        arrays = numpy.load(path)
        missing = [spec["name"] for spec in specs if spec["name"] not in arrays]
        if missing:
            raise KeyError(f"no array named {', '.join(missing)}; arrays: {', '.join(arrays.files)}")
        return [torch.from_numpy(arrays[spec["name"]].astype(spec["dtype"])) for spec in specs]


FLOAT16_MAX = 65504.0


def to_float16(job):
    """Stores float32 initializers as float16, each followed by a Cast back to float32.

    Compute stays float32 (ONNX Runtime's CPU provider has float16 kernels for few operators and
    would insert casts itself), while the weights, nearly all of a model's bytes, take half the
    space. Initializers whose values float16 cannot hold (beyond ±65504) stay float32. With fp16_io,
    float32 graph inputs and outputs become float16 with Casts at the boundary.
    """
    import numpy
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    with fail("load", f"cannot load the ONNX model {job['model']}"):
        model = onnx.load(job["model"])
    graph = model.graph
    graph_inputs = {value.name for value in graph.input}
    casts = []
    kept = []
    converted = 0
    for initializer in graph.initializer:
        if initializer.data_type != TensorProto.FLOAT or initializer.name in graph_inputs:
            kept.append(initializer)
            continue
        array = numpy_helper.to_array(initializer)
        if array.size > 0 and float(numpy.max(numpy.abs(array))) > FLOAT16_MAX:
            kept.append(initializer)
            continue
        half = numpy_helper.from_array(array.astype(numpy.float16), initializer.name + "_fp16")
        kept.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [initializer.name], to=TensorProto.FLOAT, name=initializer.name + "_to_fp32"
            )
        )
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)

    boundary_in = []
    boundary_out = []
    if job.get("fp16_io"):
        renames = {}
        for value in graph.input:
            if value.type.tensor_type.elem_type == TensorProto.FLOAT and value.name not in renames:
                inner = value.name + "_fp32"
                renames[value.name] = inner
                value.type.tensor_type.elem_type = TensorProto.FLOAT16
                boundary_in.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT))
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name in renames:
                    node.input[index] = renames[name]
        for value in graph.output:
            if value.type.tensor_type.elem_type != TensorProto.FLOAT:
                continue
            inner = value.name + "_fp32_out"
            source = renames.get(value.name, value.name)
            for node in graph.node:
                for index, name in enumerate(node.output):
                    if name == value.name:
                        node.output[index] = inner
                        source = inner
            boundary_out.append(helper.make_node("Cast", [source], [value.name], to=TensorProto.FLOAT16))
            value.type.tensor_type.elem_type = TensorProto.FLOAT16

    nodes = boundary_in + casts + list(graph.node) + boundary_out
    del graph.node[:]
    graph.node.extend(nodes)
    output = os.path.abspath(job["output"])
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with fail("check", "the ONNX checker rejected the float16 model"):
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, output)
    return {
        "ok": True,
        "output": output,
        "converted_initializers": converted,
        "float32_initializers": sum(1 for tensor in kept if tensor.data_type == TensorProto.FLOAT),
        "onnx": onnx.__version__,
    }


def main():
    jobs = json.load(sys.stdin)
    for job in jobs:
        try:
            result = to_float16(job) if job.get("task") == "float16" else convert(job)
        except Exception as error:  # noqa: BLE001 - every failure becomes a report line
            failure = error if isinstance(error, ExportFailure) else ExportFailure("internal", "export failed", error)
            cause = failure.cause if failure.cause is not None else failure
            result = {
                "ok": False,
                "output": job.get("output"),
                "stage": failure.stage,
                "message": failure.message,
                "error": f"{type(cause).__name__}: {str(cause).strip()}",
                "traceback": "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)),
            }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
