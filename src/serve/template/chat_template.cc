#include "serve/template/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::serve {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, fmt::format("cannot open {}", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json read_json(const fs::path& path) {
  try {
    return ordered_json::parse(read_file(path));
  } catch (const ordered_json::exception& e) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}: malformed JSON: {}", path.string(), e.what()));
  }
}

jinja::Template parse_or_throw(const std::string& source, const fs::path& file) {
  try {
    return jinja::Template::parse(source);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}: chat template: {}", file.string(), e.what()));
  }
}

}  // namespace

ChatTemplate ChatTemplate::from_string(std::string source, std::string bos_token,
                                       std::string eos_token) {
  ChatTemplate t;
  jinja::Template tmpl = jinja::Template::parse(source);
  t.templates_.push_back(Named{"default", std::move(source), std::move(tmpl)});
  if (!bos_token.empty()) t.special_tokens_.emplace_back("bos_token", std::move(bos_token));
  if (!eos_token.empty()) t.special_tokens_.emplace_back("eos_token", std::move(eos_token));
  return t;
}

std::optional<ChatTemplate> ChatTemplate::from_model_dir(const std::string& dir) {
  const fs::path root(dir);
  const fs::path jinja_file = root / "chat_template.jinja";
  const fs::path json_file = root / "chat_template.json";
  const fs::path config_file = root / "tokenizer_config.json";
  ordered_json config = fs::exists(config_file) ? read_json(config_file) : ordered_json::object();
  if (!config.is_object()) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}: expected a JSON object", config_file.string()));
  }

  ChatTemplate t;
  if (fs::exists(jinja_file)) {
    std::string source = read_file(jinja_file);
    jinja::Template tmpl = parse_or_throw(source, jinja_file);
    t.templates_.push_back(Named{"default", std::move(source), std::move(tmpl)});
  } else if (fs::exists(json_file)) {
    ordered_json j = read_json(json_file);
    if (!j.is_object() || !j.contains("chat_template") || !j["chat_template"].is_string()) {
      throw Error(ErrorCode::kInvalidFile,
                  fmt::format("{}: expected {{\"chat_template\": \"...\"}}", json_file.string()));
    }
    std::string source = j["chat_template"].get<std::string>();
    jinja::Template tmpl = parse_or_throw(source, json_file);
    t.templates_.push_back(Named{"default", std::move(source), std::move(tmpl)});
  } else if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    const ordered_json& ct = config["chat_template"];
    if (ct.is_string()) {
      std::string source = ct.get<std::string>();
      jinja::Template tmpl = parse_or_throw(source, config_file);
      t.templates_.push_back(Named{"default", std::move(source), std::move(tmpl)});
    } else if (ct.is_array()) {
      for (const ordered_json& entry : ct) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
            !entry.contains("template") || !entry["template"].is_string()) {
          throw Error(ErrorCode::kInvalidFile,
                      fmt::format("{}: chat_template list entries must be {{\"name\": ..., "
                                  "\"template\": ...}}",
                                  config_file.string()));
        }
        std::string source = entry["template"].get<std::string>();
        jinja::Template tmpl = parse_or_throw(source, config_file);
        Named named{entry["name"].get<std::string>(), std::move(source), std::move(tmpl)};
        if (named.name == "default") {
          t.templates_.insert(t.templates_.begin(), std::move(named));
        } else {
          t.templates_.push_back(std::move(named));
        }
      }
      if (t.templates_.empty() || t.templates_.front().name != "default") {
        throw Error(ErrorCode::kInvalidFile,
                    fmt::format("{}: chat_template list has no \"default\" template",
                                config_file.string()));
      }
    } else {
      throw Error(
          ErrorCode::kInvalidFile,
          fmt::format("{}: chat_template must be a string or a list", config_file.string()));
    }
  } else {
    return std::nullopt;
  }

  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                           "cls_token", "mask_token"}) {
    if (!config.contains(name)) continue;
    const ordered_json& tok = config[name];
    if (tok.is_string()) {
      t.special_tokens_.emplace_back(name, tok.get<std::string>());
    } else if (tok.is_object() && tok.contains("content") && tok["content"].is_string()) {
      t.special_tokens_.emplace_back(name, tok["content"].get<std::string>());
    } else if (!tok.is_null()) {
      throw Error(ErrorCode::kInvalidFile,
                  fmt::format("{}: {} must be a string or {{\"content\": ...}}",
                              config_file.string(), name));
    }
  }
  return t;
}

std::string ChatTemplate::render(const ordered_json& messages, bool add_generation_prompt,
                                 const ordered_json& extra) const {
  if (!messages.is_array()) {
    throw Error(ErrorCode::kInvalidArgument, "chat template: messages must be a JSON array");
  }
  if (!extra.is_object()) {
    throw Error(ErrorCode::kInvalidArgument,
                "chat template: extra variables must be a JSON object");
  }
  // transformers: render(messages=, tools=, documents=, add_generation_prompt=,
  // **special_tokens_map, **kwargs).
  jinja::Dict ctx;
  ctx.items.reserve(8 + special_tokens_.size() + extra.size());
  ctx.items.emplace_back("messages", jinja::Value::from_json(messages));
  ctx.items.emplace_back("tools", jinja::Value(nullptr));
  ctx.items.emplace_back("documents", jinja::Value(nullptr));
  ctx.items.emplace_back("add_generation_prompt", jinja::Value(add_generation_prompt));
  for (const auto& [k, v] : special_tokens_) ctx.set(k, jinja::Value(v));
  for (const auto& [k, v] : extra.items()) ctx.set(k, jinja::Value::from_json(v));

  const Named* chosen = &templates_.front();
  const jinja::Value* tools = ctx.find("tools");
  if (tools && !tools->is_none()) {
    for (const Named& n : templates_) {
      if (n.name == "tool_use") chosen = &n;
    }
  }
  return chosen->tmpl.render(ctx);
}

}  // namespace kpt::serve
