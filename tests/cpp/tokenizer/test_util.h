// Locating tokenizer files for the tests: the committed fixtures and the shared real
// vocabularies (../shared next to the repository in CI).
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kpt/tokenizer.h"

namespace kpt::tok_test {

inline std::filesystem::path source_dir() {
  return KPT_SOURCE_DIR;
}
inline std::filesystem::path fixture_dir() {
  return source_dir() / "tests/fixtures/tokenizer";
}
inline std::filesystem::path shared_tokenizers_dir() {
  return source_dir() / "../shared/data/tokenizers";
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::filesystem::path shared_tokenizer(const std::string& name) {
  return shared_tokenizers_dir() / name / "tokenizer.json";
}

// Loads "shared:<name>" or "fixture:<relative path>"; a fixture whose model.vocab is
// "@shared:<name>" borrows that shared file's vocabulary. nullopt (with `why`) when the shared
// data is absent.
inline std::optional<Tokenizer> load_source(const std::string& source, std::string* why) {
  if (source.rfind("shared:", 0) == 0) {
    const auto path = shared_tokenizer(source.substr(7));
    if (!std::filesystem::exists(path)) {
      *why =
          "shared tokenizer " + path.string() + " not found (shared/ is expected next to the repo)";
      return std::nullopt;
    }
    return Tokenizer::from_file(path.string());
  }
  const auto path = fixture_dir() / source.substr(8);
  std::string text = read_file(path);
  auto j = nlohmann::json::parse(text);
  const auto& vocab = j["model"]["vocab"];
  if (vocab.is_string() && vocab.get<std::string>().rfind("@shared:", 0) == 0) {
    const auto shared = shared_tokenizer(vocab.get<std::string>().substr(8));
    if (!std::filesystem::exists(shared)) {
      *why = "shared tokenizer " + shared.string() +
             " not found (shared/ is expected next to the repo)";
      return std::nullopt;
    }
    j["model"]["vocab"] = nlohmann::json::parse(read_file(shared))["model"]["vocab"];
    text = j.dump();
  }
  return Tokenizer::from_json(text);
}

}  // namespace kpt::tok_test
