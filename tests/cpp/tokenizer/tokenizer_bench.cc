// Single-threaded encode throughput of kpt::Tokenizer (compare with
// scripts/tokenizer/bench.py, which runs HF tokenizers on the same file).
//
// usage: kpt_tokenizer_bench <tokenizer.json> <text file> [repeats=5]
// Each line of the text file is one encode call; prints the best of `repeats` passes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kpt/status.h"
#include "kpt/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <tokenizer.json> <text file> [repeats]\n", argv[0]);
    return 2;
  }
  try {
    kpt::Tokenizer tok = kpt::Tokenizer::from_file(argv[1]);
    tok.set_padding(std::nullopt);
    tok.set_truncation(std::nullopt);
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<std::string> lines;
    size_t n_bytes = 0;
    for (std::string line; std::getline(in, line);) {
      n_bytes += line.size();
      lines.push_back(std::move(line));
    }
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
    double best_s = 1e30;
    size_t n_tokens = 0;
    for (int r = 0; r < repeats; ++r) {
      n_tokens = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (const std::string& l : lines) n_tokens += tok.encode(l, false).ids.size();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best_s = std::min(best_s, s);
    }
    std::printf(
        "{\"impl\": \"kpt\", \"lines\": %zu, \"bytes\": %zu, \"tokens\": %zu, \"seconds\": %.4f, "
        "\"tokens_per_s\": %.0f, \"mb_per_s\": %.2f}\n",
        lines.size(), n_bytes, n_tokens, best_s, n_tokens / best_s, n_bytes / best_s / 1e6);
  } catch (const kpt::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
