// The driver of the instruction-count gate (scripts/perf/gate.py): runs each hot CPU kernel region
// N times with callgrind collecting only inside the region, then dumps that region's counters
// under its own name. Setup (random weights, prepacking, model loading) and one warm-up call per
// region (lazy oneDNN primitive creation, page faults) stay outside the count, so the number is
// the steady-state work of the kernel and nothing else.
//
//   valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no
//       --callgrind-out-file=cg.out kpt_perf_driver [--only a,b] [--inject-extra-work PCT]
//
// Without valgrind the client requests are no-ops; the driver then prints wall times, which is a
// quick way to check it runs. Threads: one (OpenMP scheduling would make counts vary).
#include <valgrind/callgrind.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <dnnl.h>
#include <nlohmann/json.hpp>

#include "backends/cpu/backend.h"
#include "backends/cpu/kernels/fast_kernels.h"
#include "backends/cpu/kernels/gemm_onednn.h"
#include "core/threading.h"
#include "graph/ir.h"
#include "kpt/engine.h"
#include "kpt/status.h"
#include "optimize/hardware.h"
#include "runtime/session.h"

#ifndef KPT_SOURCE_DIR
#define KPT_SOURCE_DIR "."
#endif

namespace {

using namespace kpt;

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// One measured region: `setup` runs outside the count and returns the body that is counted.
struct Region {
  std::string name;
  std::string what;  // shape, for the table
  int reps = 1;
  std::function<std::function<void()>()> setup;
};

// Shapes of SmolLM2-135M (hidden 576, MLP 1536, 9 heads / 3 KV heads of 64): the default model,
// small enough that a region costs well under a second under callgrind.
constexpr int64_t kHidden = 576, kFfn = 1536, kHeads = 9, kKvHeads = 3, kHeadDim = 64;
constexpr int64_t kBlock = 16;

std::function<void()> gemm_region(int64_t rows) {
  // Shared state lives in a shared_ptr captured by the body.
  struct State {
    std::vector<float> w = randn(static_cast<size_t>(kFfn * kHidden), 1);
    std::vector<float> bias = randn(static_cast<size_t>(kFfn), 2);
    std::vector<float> x;
    std::vector<float> out;
    std::unique_ptr<cpu::fast::OnednnLinear> lin;
  };
  auto s = std::make_shared<State>();
  s->x = randn(static_cast<size_t>(rows * kHidden), 3);  // [rows, hidden]
  s->out.resize(static_cast<size_t>(rows * kFfn));       // [rows, ffn]
  // SiLU epilogue as in a GLU's gate projection: the fused post-op is part of what is counted.
  s->lin =
      std::make_unique<cpu::fast::OnednnLinear>(s->w.data(), kFfn, kHidden, s->bias.data(),
                                                static_cast<int64_t>(graph::OpKind::kSilu), false);
  // oneDNN keeps the plain layout when it prefers it; the region then measures that (said here).
  std::fprintf(stderr, "gemm %lldx%lldx%lld: weights %s\n", static_cast<long long>(rows),
               static_cast<long long>(kHidden), static_cast<long long>(kFfn),
               s->lin->repacked() ? "repacked into oneDNN's blocked layout" : "used in place (plain)");
  return [s, rows] { s->lin->run(s->x.data(), rows, nullptr, s->out.data()); };
}

// Batched decode at fp32 levels: 4 rows through the few-row GEMV (oneDNN handles 1 row).
std::function<void()> f32_gemv_region(int64_t rows) {
  struct State {
    std::vector<float> x, w, bias, out;
  };
  auto s = std::make_shared<State>();
  s->x = randn(static_cast<size_t>(rows * kHidden), 7);
  s->w = randn(static_cast<size_t>(kFfn * kHidden), 8);
  s->bias = randn(static_cast<size_t>(kFfn), 9);
  s->out.resize(static_cast<size_t>(rows * kFfn));
  return [s, rows] {
    cpu::fast::gemv_f32_rows(s->x.data(), rows, s->w.data(), s->bias.data(), nullptr,
                             static_cast<int64_t>(graph::OpKind::kSilu), kHidden, kFfn, s->out.data());
  };
}

std::function<void()> int8_gemv_region() {
  struct State {
    std::vector<float> x = randn(static_cast<size_t>(kHidden), 4);  // [1, hidden]
    std::vector<int8_t> q;                                          // [ffn, hidden]
    std::vector<float> scale;                                       // [ffn, hidden / 32]
    std::vector<float> out = std::vector<float>(static_cast<size_t>(kFfn));
  };
  auto s = std::make_shared<State>();
  constexpr int64_t kGroup = 32;
  std::mt19937 gen(5);
  s->q.resize(static_cast<size_t>(kFfn * kHidden));
  for (auto& e : s->q) e = static_cast<int8_t>(static_cast<int>(gen() % 255) - 127);
  s->scale = randn(static_cast<size_t>(kFfn * (kHidden / kGroup)), 6);
  return [s] {
    cpu::fast::gemm_int8_weights(s->x.data(), s->q.data(), s->scale.data(), kGroup, nullptr,
                                 nullptr, -1, 1, kHidden, kFfn, s->out.data());
  };
}

// Tiled attention over a paged cache of `past` tokens plus `seq` new ones, RoPE applied on the way
// in; blocks of the one sequence are scattered (as after other sequences came and went).
std::function<void()> attention_region(int64_t past, int64_t seq) {
  struct State {
    std::vector<float> q, k, v, out, k_pool, v_pool;
    std::vector<int32_t> table;
    std::vector<uint8_t> valid;
    std::vector<int64_t> positions;
    std::vector<double> inv_freq;
    cpu::AttentionContext ctx;
    cpu::fast::AttentionArgs args;
  };
  auto s = std::make_shared<State>();
  const int64_t total = past + seq;
  const int64_t n_blocks = (total + kBlock - 1) / kBlock;
  s->table.resize(static_cast<size_t>(n_blocks));
  for (int64_t i = 0; i < n_blocks; ++i)
    s->table[static_cast<size_t>(i)] = static_cast<int32_t>((i * 5 + 2) % n_blocks);
  const size_t pool = static_cast<size_t>(n_blocks * kBlock * kKvHeads * kHeadDim);
  s->k_pool = randn(pool, 7);  // [blocks, block, kv, hd]
  s->v_pool = randn(pool, 8);
  s->q = randn(static_cast<size_t>(seq * kHeads * kHeadDim), 9);     // [1, seq, heads, hd]
  s->k = randn(static_cast<size_t>(seq * kKvHeads * kHeadDim), 10);  // [1, seq, kv, hd]
  s->v = randn(static_cast<size_t>(seq * kKvHeads * kHeadDim), 11);
  s->out.resize(s->q.size());
  s->valid.assign(static_cast<size_t>(total), 1);
  for (int64_t i = 0; i < seq; ++i) s->positions.push_back(past + i);
  for (int64_t i = 0; i < kHeadDim / 2; ++i)
    s->inv_freq.push_back(std::pow(10000.0, -2.0 * static_cast<double>(i) / kHeadDim));
  s->ctx.block_size = kBlock;
  s->ctx.n_kv_heads = kKvHeads;
  s->ctx.head_dim = kHeadDim;
  s->ctx.k_pool = {s->k_pool.data()};
  s->ctx.v_pool = {s->v_pool.data()};
  SequenceView view;
  view.block_table = s->table.data();
  view.n_blocks = n_blocks;
  view.past_len = past;
  view.key_valid = s->valid.data();
  s->ctx.seqs = {view};
  auto& a = s->args;
  a.q = s->q.data();
  a.k = s->k.data();
  a.v = s->v.data();
  a.q_stride = kHeads * kHeadDim;
  a.kv_stride = kKvHeads * kHeadDim;
  a.positions = s->positions.data();
  a.inv_freq = s->inv_freq.data();
  a.batch = 1;
  a.seq = seq;
  a.n_heads = kHeads;
  a.causal = true;
  a.scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
  a.out = s->out.data();
  return [s] { cpu::fast::attention_tiled(s->args, s->ctx); };
}

std::function<void()> add_norm_region(int64_t rows) {
  struct State {
    std::vector<float> a, b, gamma, out;
  };
  auto s = std::make_shared<State>();
  s->a = randn(static_cast<size_t>(rows * kHidden), 12);  // [rows, hidden]
  s->b = randn(s->a.size(), 13);
  s->gamma = randn(static_cast<size_t>(kHidden), 14);
  s->out.resize(s->a.size());
  return [s, rows] {
    cpu::fast::add_norm(s->a.data(), s->b.data(), s->gamma.data(), nullptr, rows, kHidden, 1e-5,
                        true, s->out.data());
  };
}

// One decode step of a tiny fixture model at the conservative level: append one token to a
// 16-token sequence and compute its logits, then roll the cache back so every repetition does
// the same step at the same length.
std::function<void()> decode_step_region(const std::string& model_dir) {
  struct State {
    std::unique_ptr<Engine> engine;
    int64_t seq = 0;
    int64_t token = 0;
  };
  auto s = std::make_shared<State>();
  EngineOptions eo;
  eo.level = Level::kConservative;
  eo.device = "cpu";
  eo.num_threads = 1;
  s->engine = Engine::load(model_dir, eo);
  runtime::Session& session = runtime::engine_session(*s->engine);
  const int64_t vocab = session.info().vocab_size;
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < 16; ++i) prompt.push_back((i * 37 + 11) % vocab);
  s->seq = session.cache().new_sequence();
  session.step_last_logits({s->seq}, {prompt}, {std::vector<int64_t>(prompt.size(), 1)});
  s->token = (prompt.back() * 13 + 5) % vocab;
  return [s] {
    runtime::Session& ss = runtime::engine_session(*s->engine);
    Tensor logits = ss.step_last_logits({s->seq}, {{s->token}}, {{1}});  // [1, 1, V]
    ss.cache().rollback(s->seq, 1);
  };
}

std::string onednn_isa_name() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "isa" + std::to_string(static_cast<int>(dnnl_get_effective_cpu_isa()));
  }
}

// What decides which code runs: the ISA extensions this process sees (under valgrind: the ones
// valgrind emulates) and the kernel family oneDNN dispatched to. Baselines are keyed by it.
std::string isa_key() {
  std::string key;
  for (const auto& f : hw::detect_cpu().flags()) key += (key.empty() ? "" : "+") + f;
  return (key.empty() ? "baseline" : key) + "|onednn:" + onednn_isa_name();
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int usage(const char* argv0) {
  std::fprintf(
      stderr,
      "usage: %s [--list] [--only NAME,...] [--model DIR] [--inject-extra-work PCT]\n"
      "  --inject-extra-work PCT  run each region round(reps x PCT / 100) more times while\n"
      "                           counting as if it ran reps times (tests that the gate\n"
      "                           catches a slowdown)\n",
      argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only,
      model_dir = std::string(KPT_SOURCE_DIR) + "/tests/fixtures/models/llama_gqa3_headdim";
  double extra_pct = 0;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(ErrorCode::kInvalidArgument, arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--only")
        only = value();
      else if (arg == "--model")
        model_dir = value();
      else if (arg == "--inject-extra-work")
        extra_pct = std::stod(value());
      else if (arg == "--list")
        list = true;
      else
        return usage(argv[0]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return usage(argv[0]);
    }
  }
  if (extra_pct < 0 || extra_pct > 1000) {
    std::fprintf(stderr, "error: --inject-extra-work must be within [0, 1000], got %g\n",
                 extra_pct);
    return 2;
  }
  set_num_threads(1);

  // Repetitions: each region counts ~2-8 million instructions (callgrind runs ~10 million
  // instructions/s on a busy 2-core machine), so the whole run stays well under a minute.
  const std::vector<Region> regions = {
      {"gemm_onednn_decode", "onednn matmul 1x576 . 576x1536 + bias, SiLU (prepacked)", 10,
       [] { return gemm_region(1); }},
      {"gemm_onednn_prefill", "onednn matmul 32x576 . 576x1536 + bias, SiLU (prepacked)", 1,
       [] { return gemm_region(32); }},
      {"gemv_f32_rows", "fp32 few-row GEMV 4x576 . 576x1536 + bias, SiLU", 4,
       [] { return f32_gemv_region(4); }},
      {"gemv_int8", "int8 weights (groups of 32) 1x576 . 576x1536", 8,
       [] { return int8_gemv_region(); }},
      {"attention_prefill", "tiled attention, 64 new tokens, 9 heads / 3 KV, hd 64, RoPE", 2,
       [] { return attention_region(0, 64); }},
      {"attention_decode", "tiled attention, 1 new token after 255, 9 heads / 3 KV, hd 64, RoPE", 8,
       [] { return attention_region(255, 1); }},
      {"add_rmsnorm", "fused residual add + RMSNorm, 64 x 576", 20,
       [] { return add_norm_region(64); }},
      {"decode_step_conservative", "one decode step after 16 tokens, llama_gqa3_headdim fixture",
       10, [model_dir] { return decode_step_region(model_dir); }},
  };
  const auto wanted = split(only);
  const std::set<std::string> wanted_set(wanted.begin(), wanted.end());
  for (const auto& w : wanted_set) {
    bool known = false;
    for (const auto& r : regions) known = known || r.name == w;
    if (!known) {
      std::fprintf(stderr, "error: unknown region '%s' (--list shows them)\n", w.c_str());
      return 2;
    }
  }
  nlohmann::json header = {{"isa_key", isa_key()},
                           {"threads", num_threads()},
                           {"inject_extra_work_pct", extra_pct},
                           {"regions", nlohmann::json::array()}};
  for (const auto& r : regions) {
    if (!wanted_set.empty() && !wanted_set.count(r.name)) continue;
    header["regions"].push_back(
        {{"name", r.name},
         {"what", r.what},
         {"reps", r.reps},
         {"extra_runs", static_cast<int>(std::lround(r.reps * extra_pct / 100.0))}});
  }
  if (list) {
    std::printf("%s\n", header.dump(1).c_str());
    return 0;
  }
  // One JSON line first: the gate reads the key and the repetitions from it.
  std::printf("%s\n", header.dump().c_str());
  std::fflush(stdout);

  try {
    for (const auto& r : regions) {
      if (!wanted_set.empty() && !wanted_set.count(r.name)) continue;
      const auto body = r.setup();
      body();  // warm-up: lazy primitive creation, first-touch page faults
      const int runs = r.reps + static_cast<int>(std::lround(r.reps * extra_pct / 100.0));
      const auto t0 = std::chrono::steady_clock::now();
      // Setup and warm-up ran uninstrumented (valgrind --instr-atstart=no), which is fast.
      CALLGRIND_START_INSTRUMENTATION;
      CALLGRIND_TOGGLE_COLLECT;
      for (int i = 0; i < runs; ++i) body();
      CALLGRIND_TOGGLE_COLLECT;
      CALLGRIND_DUMP_STATS_AT(r.name.c_str());
      CALLGRIND_STOP_INSTRUMENTATION;
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "%-26s %3d runs %10.3f ms/run wall (under valgrind: valgrind's time)\n",
                   r.name.c_str(), runs, ms / runs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
