"""Times PyTorch eager inference for bench/torch-vs-onnx-serve.ts.

Reads one JSON object on stdin: {source, kwargs, seed, input, threads, warmup, runs}, where source
is "package.module:callable" built exactly as python/onnx_serve_export.py builds it (same seed, so
the same random weights) and input is the input_0.pb the ONNX side also runs. Prints one JSON line
with every run's milliseconds.
"""

import importlib
import json
import sys
import time

import onnx
import torch
from onnx import numpy_helper


def main():
    job = json.load(sys.stdin)
    torch.set_num_threads(job["threads"])
    module, name = job["source"].rsplit(":", 1)
    torch.manual_seed(job["seed"])
    model = getattr(importlib.import_module(module), name)(**job["kwargs"]).eval()
    tensor = onnx.TensorProto()
    with open(job["input"], "rb") as file:
        tensor.ParseFromString(file.read())
    x = torch.from_numpy(numpy_helper.to_array(tensor).copy())
    times = []
    with torch.inference_mode():
        for i in range(job["warmup"] + job["runs"]):
            started = time.perf_counter()
            model(x)
            if i >= job["warmup"]:
                times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": times}))


if __name__ == "__main__":
    main()
