// kpt_cuda_bench: times one workload of BENCHMARKS.md on the CUDA backend and prints one JSON line.
//   kpt_cuda_bench MODEL_DIR {encoder|prefill|decode} BATCH SEQ [NEW_TOKENS] [LEVEL] [ITERS]
// encoder: Session::forward of [BATCH, SEQ] random ids (the [B, S, H] fp32 output is copied to
//   the host inside the timed region; the PyTorch peers leave theirs on the GPU).
// prefill: one step over SEQ tokens of a fresh sequence, logits of the last row only.
// decode:  greedy generation of NEW_TOKENS after a SEQ-token prompt per row; the decode phase is
//   timed by the generator (host sampling and the logits copy every step included).
// Wall-clock around calls that end with a device sync (outputs copied back), median of ITERS.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "backends/cuda/backend.h"
#include "io/hf_config.h"
#include "models/model.h"
#include "runtime/generator.h"
#include "runtime/session.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kpt;
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL_DIR {encoder|prefill|decode} BATCH SEQ [NEW_TOKENS] [LEVEL] [ITERS]\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1], mode = argv[2];
    const int64_t batch = std::stoll(argv[3]), seq = std::stoll(argv[4]);
    const int64_t new_tokens = argc > 5 ? std::stoll(argv[5]) : 128;
    const Level level = parse_level(argc > 6 ? argv[6] : "balanced");
    const int iters = argc > 7 ? std::stoi(argv[7]) : 20;
    auto t_load = std::chrono::steady_clock::now();
    auto cfg = io::HfConfig::load(dir);
    auto model = models::build_model(cfg, io::WeightStore::open_dir(dir));
    // Kernel launches per step without fusion (KPT_CUDA_FUSION=0): one per node, plus the bf16
    // cast before each GEMM and the K/V write before each attention. With fusion the backend
    // counts its launches (cuda::last_run_launches after the last timed call).
    int64_t launches = 0;
    for (const auto& n : model.graph.nodes()) {
      launches += 1;
      if (n.op == graph::OpKind::kLinear && level != Level::kReference && level != Level::kConservative) launches += 1;
      if (n.op == graph::OpKind::kAttention) launches += 1;
    }
    CompileOptions co;
    co.device = "cuda:0";
    co.level = level;
    runtime::Session s(std::move(model), co);
    const double load_ms = ms_since(t_load);
    const int64_t vocab = s.info().vocab_size;
    std::mt19937 gen(1234);
    auto random_rows = [&](int64_t rows, int64_t len) {
      std::vector<std::vector<int64_t>> ids(static_cast<size_t>(rows), std::vector<int64_t>(static_cast<size_t>(len)));
      for (auto& r : ids) {
        for (auto& x : r) x = static_cast<int64_t>(gen() % static_cast<uint32_t>(vocab));
      }
      return ids;
    };
    double value = 0;
    std::string unit;
    std::vector<double> times;
    if (mode == "encoder") {
      for (int i = 0; i < iters + 3; ++i) {
        ForwardInputs in;
        in.input_ids = random_rows(batch, seq);  // fresh inputs each iteration
        auto t0 = std::chrono::steady_clock::now();
        (void)s.forward(in);
        if (i >= 3) times.push_back(ms_since(t0));
      }
      value = median(times);
      unit = "ms";
    } else if (mode == "prefill") {
      for (int i = 0; i < iters + 3; ++i) {
        auto ids = random_rows(batch, seq);
        std::vector<int64_t> seqs;
        for (int64_t b = 0; b < batch; ++b) seqs.push_back(s.cache().new_sequence());
        auto t0 = std::chrono::steady_clock::now();
        (void)s.step_last_logits(seqs, ids, std::vector<std::vector<int64_t>>(static_cast<size_t>(batch),
                                                                              std::vector<int64_t>(static_cast<size_t>(seq), 1)));
        if (i >= 3) times.push_back(ms_since(t0));
        for (int64_t id : seqs) s.cache().free_sequence(id);
      }
      value = median(times);
      unit = "ms";
    } else if (mode == "decode") {
      GenerateOptions o;
      o.max_new_tokens = new_tokens;
      o.eos_token_ids = std::vector<int64_t>{};
      (void)runtime::generate(s, random_rows(batch, seq), o, {});  // warm-up: plans, allocator
      const int runs = std::max(1, iters / 5);
      for (int i = 0; i < runs; ++i) {
        GenerateResult r = runtime::generate(s, random_rows(batch, seq), o, {});
        times.push_back(r.decode_ms / static_cast<double>(r.decode_steps));
      }
      const double step_ms = median(times);
      value = static_cast<double>(batch) * 1000.0 / step_ms;
      unit = "tok/s";
    } else {
      std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
      return 2;
    }
    std::printf(
        "{\"engine\": \"kpt\", \"mode\": \"%s\", \"model\": \"%s\", \"batch\": %lld, \"seq\": %lld, \"level\": \"%s\", "
        "\"value\": %.4f, \"unit\": \"%s\", \"median_step_ms\": %.4f, \"runs\": %zu, \"launches_per_step\": %lld, "
        "\"launches_unfused\": %lld, \"load_ms\": %.0f, \"device\": \"%s\"}\n",
        mode.c_str(), dir.c_str(), static_cast<long long>(batch), static_cast<long long>(seq), level_name(level), value,
        unit.c_str(), median(times), times.size(), static_cast<long long>(cuda::last_run_launches()),
        static_cast<long long>(launches), load_ms,
        cuda::device_description(0).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kpt_cuda_bench: %s\n", e.what());
    return 1;
  }
}
