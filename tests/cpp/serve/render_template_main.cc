// Bridge for tests/python/test_chat_template.py, which compares the C++ template engine with
// Python's jinja2 configured like transformers.
//
//   kpt_render_template TEMPLATE_FILE < context.json            Template::render(context)
//   kpt_render_template --chat [--bench N] TEMPLATE_FILE < case  ChatTemplate::render
//   kpt_render_template --chat-batch TEMPLATE_FILE < [case, ...] one JSON result per case
//   kpt_render_template --batch < {"context": {...}, "templates": ["...", ...]}
//
// A chat case is {"messages": [...], "add_generation_prompt": bool, "extra": {...},
// "bos_token": "...", "eos_token": "..."}. Single renders print the text, or "error: ..." and exit
// 1; batches print a JSON array of {"text": ...} or {"error": ...}. --bench N renders N more times
// and prints the mean time per render to stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kpt/status.h"
#include "serve/template/chat_template.h"
#include "serve/template/jinja.h"

namespace {

using nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw kpt::Error(kpt::ErrorCode::kIo, "cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json read_stdin_json() {
  std::ostringstream input;
  input << std::cin.rdbuf();
  return ordered_json::parse(input.str());
}

std::string render_chat(const kpt::serve::ChatTemplate& t, const ordered_json& c) {
  return t.render(c.at("messages"), c.value("add_generation_prompt", false),
                  c.value("extra", ordered_json::object()));
}

// {"text": ...} or {"error": ...} for one render.
ordered_json result_of(const std::function<std::string()>& fn) {
  try {
    return {{"text", fn()}};
  } catch (const std::exception& e) {
    return {{"error", e.what()}};
  }
}

void print_json(const ordered_json& j) {
  std::string s = j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
}

int usage() {
  std::fprintf(
      stderr,
      "usage: kpt_render_template [--chat [--bench N] | --chat-batch] TEMPLATE_FILE < json\n"
      "       kpt_render_template --batch < {\"context\": {...}, \"templates\": [...]}\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc >= 2 ? argv[1] : "";
  try {
    if (mode == "--batch" && argc == 2) {
      const ordered_json in = read_stdin_json();
      ordered_json out = ordered_json::array();
      for (const auto& src : in.at("templates")) {
        out.push_back(result_of([&] {
          return kpt::jinja::Template::parse(src.get<std::string>()).render(in.at("context"));
        }));
      }
      print_json(out);
      return 0;
    }
    if (mode == "--chat-batch" && argc == 3) {
      const std::string source = read_file(argv[2]);
      const ordered_json cases = read_stdin_json();
      ordered_json out = ordered_json::array();
      for (const auto& c : cases) {
        out.push_back(result_of([&] {
          auto t = kpt::serve::ChatTemplate::from_string(source, c.value("bos_token", ""),
                                                         c.value("eos_token", ""));
          return render_chat(t, c);
        }));
      }
      print_json(out);
      return 0;
    }
    int bench = 0;
    if (mode == "--chat" && argc == 5 && std::string(argv[2]) == "--bench")
      bench = std::atoi(argv[3]);
    const bool chat = mode == "--chat" && (argc == 3 || bench > 0);
    if (!chat && (argc != 2 || mode.rfind("--", 0) == 0)) return usage();

    const std::string source = read_file(argv[argc - 1]);
    const ordered_json context = read_stdin_json();
    std::string out;
    if (chat) {
      auto t = kpt::serve::ChatTemplate::from_string(source, context.value("bos_token", ""),
                                                     context.value("eos_token", ""));
      out = render_chat(t, context);
      if (bench > 0) {
        auto start = std::chrono::steady_clock::now();
        size_t n_bytes = 0;
        const ordered_json& messages = context.at("messages");
        const bool agp = context.value("add_generation_prompt", false);
        const ordered_json extra = context.value("extra", ordered_json::object());
        for (int i = 0; i < bench; ++i) n_bytes += t.render(messages, agp, extra).size();
        double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                .count();
        std::fprintf(stderr, "%.2f us per render (%d renders, %zu bytes each)\n", us / bench, bench,
                     n_bytes / static_cast<size_t>(bench));
      }
    } else {
      out = kpt::jinja::Template::parse(source).render(context);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
