// kpt_render_template TEMPLATE_FILE < context.json
// Renders a template file with the JSON object on stdin as context, configured like
// transformers' chat-template environment; tests/python/test_chat_template.py compares its
// output byte for byte with jinja2. Prints the rendering, or "error: ..." and exits 1.
// With --chat, stdin is {"messages": [...], "add_generation_prompt": bool, "extra": {...},
// "bos_token": "...", "eos_token": "..."} and ChatTemplate::render is used instead.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kpt/status.h"
#include "serve/template/chat_template.h"
#include "serve/template/jinja.h"

int main(int argc, char** argv) {
  bool chat = argc == 3 && std::string(argv[1]) == "--chat";
  if (argc != 2 && !chat) {
    std::fprintf(stderr, "usage: kpt_render_template [--chat] TEMPLATE_FILE < context.json\n");
    return 2;
  }
  try {
    std::ifstream in(argv[argc - 1], std::ios::binary);
    if (!in) throw kpt::Error(kpt::ErrorCode::kIo, std::string("cannot open ") + argv[argc - 1]);
    std::ostringstream ss;
    ss << in.rdbuf();
    std::ostringstream input;
    input << std::cin.rdbuf();
    auto context = nlohmann::ordered_json::parse(input.str());
    std::string out;
    if (chat) {
      auto t = kpt::serve::ChatTemplate::from_string(ss.str(), context.value("bos_token", ""),
                                                     context.value("eos_token", ""));
      out = t.render(context.at("messages"), context.value("add_generation_prompt", false),
                     context.value("extra", nlohmann::ordered_json::object()));
    } else {
      out = kpt::jinja::Template::parse(ss.str()).render(context);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
