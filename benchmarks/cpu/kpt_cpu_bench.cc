// Times one KernelPyTorch workload and prints one JSON object: used by benchmarks/cpu/run.py,
// which interleaves it with the peers (PyTorch eager, ONNX Runtime) in the same script.
//   kpt_cpu_bench MODEL_DIR LEVEL encode BATCH SEQ REPS
//   kpt_cpu_bench MODEL_DIR LEVEL decode PROMPT_LEN NEW_TOKENS REPS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kpt/engine.h"

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (all threads): with one thread, the compute time without the
// time the scheduler gave to other processes (run.py compares it across engines on a busy machine).
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

std::vector<int64_t> ids_row(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int64_t> row;
  for (int64_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    // Real vocabularies: ids from 1000 on (past special tokens); tiny test vocabularies: any id.
    const int64_t base = vocab > 3000 ? 1000 : 0, span = vocab > 3000 ? vocab - 2000 : vocab;
    row.push_back(base + static_cast<int64_t>((seed >> 33) % static_cast<uint64_t>(span)));
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s MODEL_DIR LEVEL encode|decode A B REPS\n", argv[0]);
    return 2;
  }
  try {
    kpt::EngineOptions o;
    o.level = kpt::parse_level(argv[2]);
    const std::string mode = argv[3];
    const int64_t a = std::stoll(argv[4]), b = std::stoll(argv[5]);
    const int reps = std::stoi(argv[6]);
    double t0 = now_ms();
    auto e = kpt::Engine::load(argv[1], o);
    const double load_ms = now_ms() - t0;
    std::vector<double> times, cpu;
    std::string extra;
    if (mode == "encode") {
      kpt::ForwardInputs in;
      for (int64_t r = 0; r < a; ++r) in.input_ids.push_back(ids_row(b, e->info().vocab_size, 7 + static_cast<uint64_t>(r)));
      for (int i = 0; i < 2; ++i) e->forward(in);  // warm-up: primitive creation, buffer sizing
      for (int i = 0; i < reps; ++i) {
        t0 = now_ms();
        const double c0 = cpu_ms();
        e->forward(in);
        cpu.push_back(cpu_ms() - c0);
        times.push_back(now_ms() - t0);
      }
    } else {
      kpt::GenerateOptions g;
      g.max_new_tokens = b;
      g.eos_token_ids = std::vector<int64_t>{};  // always decode exactly B tokens
      const auto prompt = ids_row(a, e->info().vocab_size, 11);
      g.max_new_tokens = 8;
      e->generate({prompt}, g);  // warm-up
      g.max_new_tokens = b;
      double decode_ms = 0;
      for (int i = 0; i < reps; ++i) {
        t0 = now_ms();
        const double c0 = cpu_ms();
        auto r = e->generate({prompt}, g);
        cpu.push_back(cpu_ms() - c0);
        times.push_back(now_ms() - t0);
        decode_ms = r.decode_ms / static_cast<double>(std::max<int64_t>(r.decode_steps, 1));
      }
      extra = fmt::format(", \"decode_ms_per_step\": {:.3f}", decode_ms);
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    std::string report;
    for (const auto& l : e->pass_report()) report += (report.empty() ? "\"" : ", \"") + l + "\"";
    std::printf("{\"load_ms\": %.1f, \"median_ms\": %.3f, \"times_ms\": [%s], \"cpu_ms\": [%s]%s, \"passes\": [%s]}\n",
                load_ms, sorted[sorted.size() / 2], fmt::format("{:.3f}", fmt::join(times, ", ")).c_str(),
                fmt::format("{:.3f}", fmt::join(cpu, ", ")).c_str(), extra.c_str(), report.c_str());
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
