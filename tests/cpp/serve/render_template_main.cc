// kpt_render_template TEMPLATE_FILE < context.json
// Renders a template file with the JSON object on stdin as context, configured like
// transformers' chat-template environment; tests/python/test_chat_template.py compares its
// output byte for byte with jinja2. Prints the rendering, or "error: ..." and exits 1.
// With --chat, stdin is {"messages": [...], "add_generation_prompt": bool, "extra": {...},
// "bos_token": "...", "eos_token": "..."} and ChatTemplate::render is used instead.
// --bench N (after --chat) renders N more times and prints the mean time per render to stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kpt/status.h"
#include "serve/template/chat_template.h"
#include "serve/template/jinja.h"

int main(int argc, char** argv) {
  bool chat = argc >= 3 && std::string(argv[1]) == "--chat";
  int bench = 0;
  if (argc == 5 && chat && std::string(argv[2]) == "--bench") bench = std::atoi(argv[3]);
  if (argc != 2 && !(chat && (argc == 3 || bench > 0))) {
    std::fprintf(stderr, "usage: kpt_render_template [--chat [--bench N]] TEMPLATE_FILE < context.json\n");
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
      const auto& messages = context.at("messages");
      const bool agp = context.value("add_generation_prompt", false);
      const auto extra = context.value("extra", nlohmann::ordered_json::object());
      out = t.render(messages, agp, extra);
      if (bench > 0) {
        auto start = std::chrono::steady_clock::now();
        size_t n_bytes = 0;
        for (int i = 0; i < bench; ++i) n_bytes += t.render(messages, agp, extra).size();
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        std::fprintf(stderr, "%.2f us per render (%d renders, %zu bytes each)\n", us / bench, bench,
                     n_bytes / static_cast<size_t>(bench));
      }
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
