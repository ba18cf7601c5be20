/**
 * FP16 tensors are Uint16Array bit patterns on every Node line. Node 24 has a built-in
 * Float16Array; onnxruntime-common 1.30 then stores FP16 data in one, which onnxruntime-node's
 * native binding cannot read or fill (runs fail with "not enough space: expected 8, got 0";
 * microsoft/onnxruntime#26791). Removing the built-in from this worker thread before the first
 * `ort.Tensor` (when onnxruntime-common picks its FP16 storage) keeps Node 20's behaviour. Only
 * inference workers import this module: they run ONNX Runtime and nothing else.
 */
delete (globalThis as { Float16Array?: unknown }).Float16Array;
