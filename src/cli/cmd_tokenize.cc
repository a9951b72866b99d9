#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kpt/status.h"
#include "kpt/tokenizer.h"

namespace kpt::cli {

Run add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Encode text with a model's tokenizer.json (or decode ids)");
  struct Args {
    std::string path, text, decode_ids, batch;
    bool no_special = false, tokens = false, keep_padding = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("tokenizer", a->path, "model directory or tokenizer.json")->required();
  auto* text = cmd->add_option("--text,-t", a->text, "text to encode");
  auto* dec = cmd->add_option("--decode", a->decode_ids, "comma-separated ids to decode");
  auto* batch = cmd->add_option("--batch", a->batch, "JSON file with a list of texts; prints {\"ids\": [[...], ...]}");
  text->excludes(dec);
  batch->excludes(text);
  batch->excludes(dec);
  cmd->add_flag("--no-special-tokens", a->no_special, "do not add special tokens / skip them when decoding");
  cmd->add_flag("--tokens", a->tokens, "also print the token strings");
  cmd->add_flag("--file-padding", a->keep_padding,
                "apply the padding/truncation saved in tokenizer.json (as the tokenizers library does)");
  return [=] {
    std::string path = a->path;
    if (std::filesystem::is_directory(path)) path = (std::filesystem::path(path) / "tokenizer.json").string();
    Tokenizer tok = Tokenizer::from_file(path);
    if (!a->keep_padding) {
      // transformers' convention: tokenizer.json's saved padding/truncation apply only on request.
      tok.set_padding(std::nullopt);
      tok.set_truncation(std::nullopt);
    }
    nlohmann::json j;
    if (!a->batch.empty()) {
      std::ifstream f(a->batch);
      if (!f) throw kpt::Error(kpt::ErrorCode::kNotFound, "cannot read " + a->batch);
      nlohmann::json texts;
      try {
        texts = nlohmann::json::parse(f);
      } catch (const nlohmann::json::exception& e) {
        throw kpt::Error(kpt::ErrorCode::kInvalidArgument, a->batch + ": not valid JSON (" + e.what() + ")");
      }
      if (!texts.is_array()) throw kpt::Error(kpt::ErrorCode::kInvalidArgument, a->batch + ": must be a JSON list of strings");
      nlohmann::json all = nlohmann::json::array();
      for (size_t i = 0; i < texts.size(); ++i) {
        if (!texts[i].is_string()) {
          throw kpt::Error(kpt::ErrorCode::kInvalidArgument, a->batch + ": entry " + std::to_string(i) + " is not a string");
        }
        all.push_back(tok.encode(texts[i].get<std::string>(), !a->no_special).ids);
      }
      j["ids"] = all;
    } else if (!a->decode_ids.empty()) {
      std::vector<int64_t> ids;
      size_t pos = 0;
      while (pos < a->decode_ids.size()) {
        size_t next = a->decode_ids.find(',', pos);
        std::string item = a->decode_ids.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
        try {
          ids.push_back(std::stoll(item));
        } catch (const std::exception&) {
          throw kpt::Error(kpt::ErrorCode::kInvalidArgument, "--decode: '" + item + "' is not an integer");
        }
        if (next == std::string::npos) break;
        pos = next + 1;
      }
      j["text"] = tok.decode(ids, a->no_special);
    } else {
      Encoding e = tok.encode(a->text, !a->no_special);
      j["ids"] = e.ids;
      if (a->tokens) j["tokens"] = e.tokens;
    }
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  };
}

}  // namespace kpt::cli
