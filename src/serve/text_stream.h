// Turns a stream of generated token ids into a stream of text: incremental detokenization that
// never emits half a UTF-8 character, and OpenAI stop sequences that are cut out of the text
// (text that could be the start of a stop sequence is held back until it is decided).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kpt/tokenizer.h"

namespace kpt::serve {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop, bool skip_special_tokens = true);

  // Adds one generated token; returns the text that became final (may be empty). After a stop
  // sequence matched, stopped() is true and further tokens are ignored.
  std::string push(int64_t token);
  // The end of generation: returns the text held back (no stop sequence can match any more).
  std::string finish();

  bool stopped() const { return stopped_; }
  const std::string& text() const { return emitted_; }  // everything returned so far

 private:
  std::string take_safe(bool final);

  const Tokenizer& tokenizer_;
  std::vector<std::string> stop_;
  bool skip_special_;
  std::vector<int64_t> ids_;
  size_t prefix_offset_ = 0, read_offset_ = 0;  // decode window (see push)
  std::string pending_;   // decoded, not yet emitted (may hold a stop-sequence prefix)
  std::string emitted_;
  bool stopped_ = false;
};

}  // namespace kpt::serve
