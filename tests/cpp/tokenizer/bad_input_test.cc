// Malformed tokenizer.json files and bad caller input must throw kpt::Error naming the problem.
#include <gtest/gtest.h>

#include "kpt/status.h"
#include "test_util.h"

namespace kpt::tok_test {
namespace {

// A tiny valid BPE tokenizer; tests break one field at a time.
nlohmann::json valid_bpe() {
  return nlohmann::json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 5, "content": "<s>", "special": true, "single_word": false,
                      "lstrip": false, "rstrip": false, "normalized": false}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                      "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4},
              "merges": ["a b", ["ab", "c"]]}
  })");
}

// Expects from_json to throw kpt::Error with `code` and a message containing every fragment.
void expect_error(const std::string& text, ErrorCode code, std::vector<std::string> fragments) {
  try {
    Tokenizer::from_json(text);
    ADD_FAILURE() << "no error for: " << text.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& f : fragments) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "message '" << e.what() << "' lacks '" << f << "'";
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-kpt exception: " << e.what();
  }
}

void expect_error(const nlohmann::json& j, ErrorCode code, std::vector<std::string> fragments) {
  expect_error(j.dump(), code, std::move(fragments));
}

TEST(TokenizerBadInput, ValidBaseLoads) {
  const Tokenizer t = Tokenizer::from_json(valid_bpe().dump());
  EXPECT_EQ(t.encode("abc").ids, (std::vector<int64_t>{4}));
  EXPECT_EQ(t.encode("ab<s>c").ids, (std::vector<int64_t>{2, 5, 3}));
}

TEST(TokenizerBadInput, NotJson) {
  expect_error(std::string("{\"model\": "), ErrorCode::kInvalidFile, {"not valid JSON"});
  expect_error(std::string(""), ErrorCode::kInvalidFile, {"not valid JSON"});
  expect_error(std::string("[1, 2]"), ErrorCode::kInvalidFile, {"expected an object"});
}

TEST(TokenizerBadInput, MissingModel) {
  auto j = valid_bpe();
  j.erase("model");
  expect_error(j, ErrorCode::kInvalidFile, {"model", "missing"});
}

TEST(TokenizerBadInput, UnknownModelType) {
  auto j = valid_bpe();
  j["model"]["type"] = "Magic";
  expect_error(j, ErrorCode::kInvalidFile, {"model.type", "Magic"});
}

TEST(TokenizerBadInput, UnknownNormalizer) {
  auto j = valid_bpe();
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", {{{"type", "NFC"}}, {{"type", "Shout"}}}}};
  expect_error(j, ErrorCode::kInvalidFile, {"normalizer.normalizers[1].type", "Shout"});
}

TEST(TokenizerBadInput, UnknownPieces) {
  auto j = valid_bpe();
  j["pre_tokenizer"] = {{"type", "Chop"}};
  expect_error(j, ErrorCode::kInvalidFile, {"pre_tokenizer.type", "Chop"});
  j = valid_bpe();
  j["decoder"] = {{"type", "Unchop"}};
  expect_error(j, ErrorCode::kInvalidFile, {"decoder.type", "Unchop"});
  j = valid_bpe();
  j["post_processor"] = {{"type", "Wrap"}};
  expect_error(j, ErrorCode::kInvalidFile, {"post_processor.type", "Wrap"});
  j = valid_bpe();
  j["normalizer"] = {{"kind", "NFC"}};
  expect_error(j, ErrorCode::kInvalidFile, {"normalizer.type", "missing"});
}

TEST(TokenizerBadInput, MergeWithUnknownToken) {
  auto j = valid_bpe();
  j["model"]["merges"] = {"a b", "b z"};
  expect_error(j, ErrorCode::kInvalidFile, {"model.merges[1]", "'z'", "not in the vocabulary"});
  j["model"]["merges"] = {"b c"};  // "bc" itself is missing
  expect_error(j, ErrorCode::kInvalidFile, {"model.merges[0]", "'bc'"});
  j["model"]["merges"] = {"a b c"};
  expect_error(j, ErrorCode::kInvalidFile, {"model.merges[0]", "exactly one space"});
  j["model"]["merges"] = {{"a"}};
  expect_error(j, ErrorCode::kInvalidFile, {"model.merges[0]"});
}

TEST(TokenizerBadInput, BadRegex) {
  auto j = valid_bpe();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "(unclosed[a-"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  expect_error(j, ErrorCode::kInvalidFile, {"pre_tokenizer.pattern", "invalid regex", "(unclosed"});
  j["pre_tokenizer"]["pattern"] = {{"Regex", "a"}};
  j["pre_tokenizer"]["behavior"] = "Sideways";
  expect_error(j, ErrorCode::kInvalidFile, {"pre_tokenizer.behavior", "Sideways"});
}

TEST(TokenizerBadInput, WrongFieldTypes) {
  auto j = valid_bpe();
  j["model"]["vocab"] = {1, 2, 3};
  expect_error(j, ErrorCode::kInvalidFile, {"model.vocab", "expected an object"});
  j = valid_bpe();
  j["model"]["vocab"]["a"] = "zero";
  expect_error(j, ErrorCode::kInvalidFile, {"model.vocab[\"a\"]", "integer"});
  j = valid_bpe();
  j["model"]["vocab"]["a"] = -1;
  expect_error(j, ErrorCode::kInvalidFile, {"model.vocab[\"a\"]"});
  j = valid_bpe();
  j["model"]["merges"] = "a b";
  expect_error(j, ErrorCode::kInvalidFile, {"model.merges", "expected an array"});
  j = valid_bpe();
  j["added_tokens"][0]["content"] = 7;
  expect_error(j, ErrorCode::kInvalidFile, {"added_tokens[0].content", "expected a string"});
  j = valid_bpe();
  j["pre_tokenizer"]["add_prefix_space"] = "yes";
  expect_error(j, ErrorCode::kInvalidFile, {"pre_tokenizer.add_prefix_space", "boolean"});
  j = valid_bpe();
  j["truncation"] = {{"max_length", "long"}};
  expect_error(j, ErrorCode::kInvalidFile, {"truncation.max_length"});
  j = valid_bpe();
  j["padding"] = {{"strategy", {{"Fixed", -3}}}};
  expect_error(j, ErrorCode::kInvalidFile, {"padding.strategy.Fixed"});
  j = valid_bpe();
  j["model"]["vocab"]["a"] = 4000000000LL;
  expect_error(j, ErrorCode::kInvalidFile, {"model.vocab[\"a\"]", "implausibly large"});
  j = valid_bpe();
  j["version"] = "2.0";
  expect_error(j, ErrorCode::kInvalidFile, {"version", "2.0"});
}

TEST(TokenizerBadInput, OtherModels) {
  auto j = valid_bpe();
  using nlohmann::json;
  j["model"] = {{"type", "Unigram"},
                {"vocab", json::array({json::array({"a", 0.0}), json::array({"b"})})},
                {"unk_id", 0}};
  expect_error(j, ErrorCode::kInvalidFile, {"model.vocab[1]", "[piece, score]"});
  j["model"] = {
      {"type", "Unigram"}, {"vocab", json::array({json::array({"a", 0.0})})}, {"unk_id", 3}};
  expect_error(j, ErrorCode::kInvalidFile, {"model.unk_id", "3"});
  j["model"] = {{"type", "WordPiece"}, {"vocab", {{"a", 0}}}, {"unk_token", "[UNK]"}};
  j["pre_tokenizer"] = nullptr;
  // A missing unknown token is only an error once it is needed, as in HF.
  const Tokenizer t = Tokenizer::from_json(j.dump());
  EXPECT_EQ(t.encode("a").ids, (std::vector<int64_t>{0}));
  EXPECT_THROW(t.encode("zz"), Error);
}

TEST(TokenizerBadInput, TemplateWithUnknownSpecialToken) {
  auto j = valid_bpe();
  j["post_processor"] = nlohmann::json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<cls>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
      "special_tokens": {}})");
  expect_error(j, ErrorCode::kInvalidFile, {"post_processor.single[0]", "<cls>"});
}

TEST(TokenizerBadInput, UnsupportedPieces) {
  auto j = valid_bpe();
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  expect_error(j, ErrorCode::kUnsupported, {"Precompiled"});
}

TEST(TokenizerBadInput, MissingFile) {
  try {
    Tokenizer::from_file("/nonexistent/tokenizer.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerBadInput, CallerErrors) {
  const Tokenizer t = Tokenizer::from_json(valid_bpe().dump());
  EXPECT_THROW(t.encode("bad \xC3\x28 utf8"), Error);
  EXPECT_THROW(t.encode("\xED\xA0\x80"), Error);  // a UTF-16 surrogate
  const std::vector<int64_t> out_of_range{0, 99};
  try {
    t.decode(out_of_range);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos);
  }
  const std::vector<int64_t> negative{-1};
  EXPECT_THROW(t.decode(negative), Error);
}

// Random corruptions of a real file must never crash: either load or throw kpt::Error.
TEST(TokenizerBadInput, TruncatedAndMutatedFilesNeverCrash) {
  const std::string base = valid_bpe().dump();
  for (size_t cut = 0; cut < base.size(); cut += 7) {
    try {
      Tokenizer::from_json(base.substr(0, cut));
    } catch (const Error&) {
    }
  }
  uint64_t seed = 42;
  for (int round = 0; round < 300; ++round) {
    std::string s = base;
    for (int k = 0; k < 3; ++k) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      const size_t pos = (seed >> 33) % s.size();
      s[pos] = "{}[]\",:0a\\ -9xtrue"[(seed >> 20) % 18];
    }
    try {
      const Tokenizer t = Tokenizer::from_json(s);
      (void)t.encode("abc <s> text");
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace kpt::tok_test
