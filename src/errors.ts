// LoraError and its subclasses. `code` is for programs, `message` for people, `details` carries the numbers.
// Message template: "<op>: <argument> <actual>, expected <expected> (<why / hint>)", shapes in brackets.

/** Every machine-readable error code lorakit can raise. */
export type ErrorCode =
  // shapes and values (ShapeError / ArgumentError)
  | "shape_mismatch"
  | "invalid_rank"
  | "invalid_matrix"
  | "data_length_mismatch"
  | "invalid_value"
  | "non_finite"
  | "invalid_argument"
  | "dtype_mismatch"
  | "too_large"
  // layer state (AdapterStateError)
  | "adapter_state"
  | "unknown_adapter"
  | "duplicate_adapter"
  // safetensors (SafetensorsError), one per reference-crate error kind
  | "header_too_large"
  | "header_too_small"
  | "invalid_header_length"
  | "invalid_header"
  | "invalid_header_deserialization"
  | "invalid_offset"
  | "tensor_invalid_info"
  | "metadata_incomplete_buffer"
  | "validation_overflow"
  | "misaligned_slice"
  | "unsupported_dtype"
  | "tensor_not_found"
  // adapter files (ConfigError / AdapterFormatError)
  | "invalid_config"
  | "missing_tensor"
  | "unexpected_tensor"
  | "unsupported_format"
  | "missing_file"
  | "ambiguous_layout"
  | "config_conflict"
  // torch.save files (TorchFileError): adapter_model.bin, read without executing anything
  | "zip_invalid"
  | "pickle_invalid"
  | "pickle_opcode_refused"
  | "pickle_global_refused"
  | "pickle_limit_exceeded"
  | "torch_file_invalid"
  // model runtime (ModelError)
  | "unsupported_model"
  | "unknown_module"
  | "context_length"
  // files written (FileWriteError; cast_overflow is an ArgumentError, invalid_index a SafetensorsError)
  | "output_is_input"
  | "invalid_output"
  | "not_writable"
  | "no_space"
  | "cast_overflow"
  | "invalid_index"
  // GGUF files (GgufError)
  | "invalid_magic"
  | "unsupported_version"
  | "truncated_file"
  | "invalid_metadata"
  | "duplicate_name"
  | "invalid_alignment"
  | "unsupported_architecture"
  // kernel threads (KernelError)
  | "kernel_failed"
  | "kernel_timeout"
  | "out_of_memory"
  // the server (ServeError), each with its HTTP status
  | "invalid_request"
  | "context_length_exceeded"
  | "unauthorized"
  | "path_not_allowed"
  | "model_not_found"
  | "route_not_found"
  | "method_not_allowed"
  | "request_timeout"
  | "adapter_in_use"
  | "payload_too_large"
  | "queue_full"
  | "shutting_down"
  | "engine_failed"
  // quantized matrices (src/lora/quant.ts)
  | "misaligned_blocks";

// Each class sets a fixed `name` as a string literal, not from `constructor.name`: a user's minifying bundler
// renames classes, and `err.name` must still say "ShapeError". test/bundle/ checks this through esbuild --minify.

/** Base class of every error lorakit throws on bad input or state. */
export class LoraError extends Error {
  override name = "LoraError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** Shapes that disagree, a bad rank, ragged or empty rows, a data length that does not match the dims. */
export class ShapeError extends LoraError {
  override name = "ShapeError";
}

/** A value or option that is not acceptable: non-numbers, non-finite numbers, bad options, mixed dtypes. */
export class ArgumentError extends LoraError {
  override name = "ArgumentError";
}

/** An operation that the layer's current state does not allow (unknown adapter, merged while mixing, ...). */
export class AdapterStateError extends LoraError {
  override name = "AdapterStateError";
}

/** A safetensors file that breaks one of the reference parser's rules (see docs in the README). */
export class SafetensorsError extends LoraError {
  override name = "SafetensorsError";
}

/** An adapter file set that is not what it claims (missing tensors, wrong format, LFS pointer, ...). */
export class AdapterFormatError extends LoraError {
  override name = "AdapterFormatError";
}

/**
 * A torch.save file (adapter_model.bin) that is broken, hostile or beyond a bound: a bad zip, a malformed pickle, an
 * opcode or global outside the allow-list (named in the message), or tensors that do not fit their storages.
 */
export class TorchFileError extends LoraError {
  override name = "TorchFileError";
}

/** An output that must not or cannot be written: the input itself, a folder or device, no permission, no space. */
export class FileWriteError extends LoraError {
  override name = "FileWriteError";
}

/** A GGUF file that breaks one of llama.cpp's gguf.cpp rules, or a conversion GGUF cannot express. */
export class GgufError extends LoraError {
  override name = "GgufError";
}

/**
 * A kernel thread that failed or did not finish in time (the call's output is not valid), or kernel memory that
 * could not grow ("out_of_memory").
 */
export class KernelError extends LoraError {
  override name = "KernelError";
}

/** A model the runtime does not implement, an adapter that does not fit it, or a sequence past its context. */
export class ModelError extends LoraError {
  override name = "ModelError";
}

/**
 * A request the server refuses or cannot finish; `status` is its HTTP status and `param` the request field at fault
 * (OpenAI's error body: {error: {message, type, param, code}}).
 */
export class ServeError extends LoraError {
  override name = "ServeError";
  readonly status: number;
  readonly param: string | null;
  constructor(code: ErrorCode, status: number, message: string, param: string | null = null) {
    super(code, message, { status, param });
    this.status = status;
    this.param = param;
  }
}

/** One problem found in a config, with the JSON path where it was found. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

/** Every problem found in an adapter config, collected in one throw (code "invalid_config"). */
export class ConfigError extends LoraError {
  override name = "ConfigError";
  readonly issues: ConfigIssue[];
  constructor(source: string, issues: ConfigIssue[]) {
    const lines = issues.map((i) => `${i.message} (path: ${i.path.length ? i.path.join(".") : "<root>"})`);
    const head =
      issues.length === 1
        ? `${source}: ${lines[0]}`
        : `${source}: ${issues.length} problems:\n  - ${lines.join("\n  - ")}`;
    super("invalid_config", head, { issues });
    this.issues = issues;
  }
}
