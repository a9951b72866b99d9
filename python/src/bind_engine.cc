// Engine, ModelInfo, GenerateResult. Forward outputs are handed to Python without a copy: the
// returned array (DLPack + buffer protocol) keeps the engine's output tensor alive.
#include <csignal>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "kpt/engine.h"
#include "kpt/tokenizer.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace kpt::python {

namespace {

// Token ids from Python: 2-D int64 on the CPU (the Python layer converts lists, int32 and
// non-contiguous arrays before calling).
using IdArray = nb::ndarray<const int64_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

std::vector<std::vector<int64_t>> to_rows(const IdArray& a) {
  std::vector<std::vector<int64_t>> rows(a.shape(0));
  const int64_t* p = a.data();  // [B, S]
  const size_t n_cols = a.shape(1);
  for (size_t b = 0; b < rows.size(); ++b) rows[b].assign(p + b * n_cols, p + (b + 1) * n_cols);
  return rows;
}

// Wraps an engine output tensor as an f32 ndarray that owns it (no copy).
nb::ndarray<nb::numpy, float> wrap_f32(Tensor t) {
  if (t.dtype() != DType::kF32) t = t.to_f32();
  auto* keep = new Tensor(std::move(t));
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
  std::vector<size_t> shape(keep->shape().begin(), keep->shape().end());
  return nb::ndarray<nb::numpy, float>(keep->data<float>(), shape.size(), shape.data(), owner);
}

Tensor forward(Engine& engine, const IdArray& input_ids, const std::optional<IdArray>& attention_mask,
               const std::optional<IdArray>& token_type_ids) {
  ForwardInputs in;
  in.input_ids = to_rows(input_ids);
  if (attention_mask) in.attention_mask = to_rows(*attention_mask);
  if (token_type_ids) in.token_type_ids = to_rows(*token_type_ids);
  nb::gil_scoped_release release;
  return engine.forward(in);
}

// Runs generation with the GIL released. The per-token callback (streamers, progress bars,
// Ctrl-C) re-takes the GIL; a Python exception in it stops every row and is re-raised here.
GenerateResult generate(Engine& engine, const std::vector<std::vector<int64_t>>& prompts, int64_t max_new_tokens,
                        bool do_sample, double temperature, int64_t top_k, double top_p, double repetition_penalty,
                        uint64_t seed, const std::optional<std::vector<int64_t>>& eos_token_ids,
                        const nb::object& on_token) {
  GenerateOptions o;
  o.max_new_tokens = max_new_tokens;
  o.do_sample = do_sample;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  o.repetition_penalty = repetition_penalty;
  o.seed = seed;
  o.eos_token_ids = eos_token_ids;
  std::exception_ptr failure;
  o.on_token = [&](size_t row, int64_t token) -> bool {
    nb::gil_scoped_acquire acquire;
    if (failure) return false;
    try {
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      if (on_token.is_none()) return true;
      nb::object keep_going = on_token(row, token);
      return keep_going.is_none() || nb::cast<bool>(keep_going);
    } catch (...) {
      failure = std::current_exception();
      return false;
    }
  };
  GenerateResult result;
  {
    nb::gil_scoped_release release;
    result = engine.generate(prompts, o);
  }
  if (failure) std::rethrow_exception(failure);
  return result;
}

}  // namespace

void bind_engine(nb::module_& m) {
  m.def("level_names", [] {
    std::vector<std::string> names;
    for (Level l : {Level::kReference, Level::kConservative, Level::kBalanced, Level::kAggressive,
                    Level::kProduction})
      names.emplace_back(level_name(l));
    return names;
  }, "The optimization levels, from the exact oracle to the measured best.");
  m.def("parse_level", [](const std::string& name) { return std::string(level_name(parse_level(name))); },
        "name"_a, "Validates a level name (raises InvalidArgumentError naming the choices).");

  m.def(
      "plan_options",
      [](const std::string& model_dir, const std::string& device, int num_threads) -> nb::object {
        std::optional<OptimizationPlan> plan = read_plan(model_dir);
        if (!plan) return nb::none();
        EngineOptions base;
        base.device = device;
        base.num_threads = num_threads;
        std::string note;
        EngineOptions o = options_for_plan(*plan, base, note);
        nb::dict d;
        d["level"] = level_name(o.level);
        d["device"] = o.device;
        d["hardware"] = plan->hardware;
        d["planned_device"] = plan->device;
        d["note"] = note;
        return d;
      },
      "model_dir"_a, "device"_a = "auto", "num_threads"_a = 0,
      "For an optimized directory (kpt_plan.json from `kernelpytorch optimize`): the level and device to load "
      "it with here, and a note on what was adapted; None for a plain model directory.");

  nb::class_<ModelInfo>(m, "ModelInfo", "What the loaded model is, from config.json and its weights.")
      .def_ro("family", &ModelInfo::family)
      .def_ro("model_type", &ModelInfo::model_type)
      .def_ro("architecture", &ModelInfo::architecture)
      .def_ro("causal_lm", &ModelInfo::causal_lm)
      .def_ro("vocab_size", &ModelInfo::vocab_size)
      .def_ro("hidden_size", &ModelInfo::hidden_size)
      .def_ro("n_layers", &ModelInfo::n_layers)
      .def_ro("n_heads", &ModelInfo::n_heads)
      .def_ro("n_kv_heads", &ModelInfo::n_kv_heads)
      .def_ro("head_dim", &ModelInfo::head_dim)
      .def_ro("max_positions", &ModelInfo::max_positions)
      .def_ro("type_vocab_size", &ModelInfo::type_vocab_size)
      .def_ro("eos_token_ids", &ModelInfo::eos_token_ids)
      .def_ro("bos_token_id", &ModelInfo::bos_token_id)
      .def_ro("pad_token_id", &ModelInfo::pad_token_id)
      .def_ro("n_parameters", &ModelInfo::n_parameters)
      .def_ro("weights_dtype", &ModelInfo::weights_dtype);

  nb::class_<GenerateResult>(m, "GenerateResult")
      .def_ro("new_ids", &GenerateResult::new_ids, "per row, the new tokens only (eos included when hit)")
      .def_ro("finish_reasons", &GenerateResult::finish_reasons, "per row: eos, length or stopped")
      .def_ro("prefill_ms", &GenerateResult::prefill_ms)
      .def_ro("decode_ms", &GenerateResult::decode_ms)
      .def_ro("decode_steps", &GenerateResult::decode_steps);

  nb::class_<Engine>(m, "Engine", "A loaded model (kpt::Engine). Load with Engine.load(model_dir, ...).")
      .def_static(
          "load",
          [](const std::string& model_dir, const std::string& level, const std::string& device, int num_threads,
             bool verbose) {
            EngineOptions o;
            o.level = parse_level(level);
            o.device = device;
            o.num_threads = num_threads;
            o.verbose = verbose;
            nb::gil_scoped_release release;
            return Engine::load(model_dir, o);
          },
          "model_dir"_a, "level"_a = "reference", "device"_a = "auto", "num_threads"_a = 0, "verbose"_a = false)
      .def_prop_ro("info", [](const Engine& e) { return e.info(); })
      .def_prop_ro("device", [](const Engine& e) { return e.device(); })
      .def("describe", &Engine::describe)
      .def("graph_dump", &Engine::graph_dump)
      .def("pass_report", &Engine::pass_report,
           "What the level's passes changed, one line each; for production also each measured candidate.")
      .def_prop_ro("tokenizer",
                   [](const Engine& e) -> std::optional<Tokenizer> {
                     if (e.tokenizer() == nullptr) return std::nullopt;
                     return *e.tokenizer();  // copies share the loaded pipeline
                   })
      .def(
          "forward",
          [](Engine& e, const IdArray& input_ids, const std::optional<IdArray>& attention_mask,
             const std::optional<IdArray>& token_type_ids) {
            return wrap_f32(forward(e, input_ids, attention_mask, token_type_ids));
          },
          "input_ids"_a, "attention_mask"_a = nb::none(), "token_type_ids"_a = nb::none(),
          "f32 logits [B, S, V] (causal LMs) or last_hidden_state [B, S, H] (encoders), without a copy.")
      .def("generate", &generate, "prompts"_a, "max_new_tokens"_a = 32, "do_sample"_a = false,
           "temperature"_a = 1.0, "top_k"_a = 0, "top_p"_a = 1.0, "repetition_penalty"_a = 1.0, "seed"_a = 0,
           "eos_token_ids"_a = nb::none(), "on_token"_a = nb::none(),
           "Continues each prompt (lists of ids, lengths may differ); on_token(row, token) -> bool|None is "
           "called for every new token and may return False to stop that row.");
}

}  // namespace kpt::python
