// A model's chat template, found the way transformers finds it and rendered like its
// apply_chat_template(tokenize=False): messages, tools and documents (None unless given),
// add_generation_prompt, the tokenizer's special tokens, then any extra variables.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/template/jinja.h"

namespace kpt::serve {

class ChatTemplate {
 public:
  // Reads MODEL_DIR/chat_template.jinja, else chat_template.json's "chat_template", else
  // tokenizer_config.json's "chat_template" (a string, or a list of {"name","template"}: "default"
  // is used, "tool_use" when tools are given and it exists); special tokens (bos_token,
  // eos_token, unk_token, pad_token, sep_token, cls_token, mask_token: strings or {"content":...})
  // from tokenizer_config.json. nullopt when the directory has no template. Throws
  // kpt::Error(kInvalidFile) naming the file on a malformed template or config.
  static std::optional<ChatTemplate> from_model_dir(const std::string& dir);
  // Empty bos/eos tokens are left undefined, as transformers leaves tokens the tokenizer lacks.
  // Throws kpt::Error(kInvalidArgument) on a syntax error.
  static ChatTemplate from_string(std::string source, std::string bos_token = "",
                                  std::string eos_token = "");

  // messages: [{"role": "...", "content": ...}, ...] (content may be a string or a list of
  // parts, passed through as-is). extra: more variables (tools, documents, date_string, ...).
  // Throws kpt::Error(kInvalidArgument) for raise_exception (the template's message verbatim)
  // and evaluation errors.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  const std::string& source() const { return templates_.front().source; }
  // Special tokens passed to the template (name -> text), in tokenizer_config.json order.
  const std::vector<std::pair<std::string, std::string>>& special_tokens() const {
    return special_tokens_;
  }

 private:
  struct Named {
    std::string name;  // "default", "tool_use", ... ("default" for a single template)
    std::string source;
    jinja::Template tmpl;
  };
  ChatTemplate() = default;
  std::vector<Named> templates_;  // templates_.front() is the default
  std::vector<std::pair<std::string, std::string>> special_tokens_;
};

}  // namespace kpt::serve
