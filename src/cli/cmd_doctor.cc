// kernelpytorch doctor: what this machine and this build can do, in the spirit of
// torch.utils.collect_env. --json prints the environment fingerprint benchmarks record.
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/environment.h"
#include "cli/commands.h"
#include "optimize/hardware.h"

namespace kpt::cli {

namespace {

std::string gib(int64_t bytes) {
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1 << 30));
}

// What each device and level can use here, and what to do about what is missing. Mirrors the
// levels' own rules (src/optimize/levels.cc: bf16 only with AVX512_BF16 or AMX-BF16).
nlohmann::json capabilities(const hw::Hardware& h, const bench::BuildInfo& b) {
  nlohmann::json devices = nlohmann::json::array();
  nlohmann::json warnings = nlohmann::json::array();
  nlohmann::json levels = nlohmann::json::object();
  devices.push_back(
      {{"device", "cpu"}, {"available", true}, {"why", "the CPU backend is always built"}});
  const bool gpu_visible = !h.gpu.gpus.empty();
  for (const auto& g : h.gpu.gpus) {
    const bool usable = b.cuda;
    devices.push_back({{"device", fmt::format("cuda:{}", g.index)},
                       {"available", usable},
                       {"why", usable ? fmt::format("{} (sm_{}{})", g.name, g.cc_major, g.cc_minor)
                                      : "this build has no CUDA backend (rebuild with nvcc present "
                                        "or -DKPT_ENABLE_CUDA=ON)"}});
  }
  if (b.cuda && !gpu_visible) {
    warnings.push_back(
        fmt::format("this is a CUDA build but no GPU is visible ({}): everything runs on the CPU",
                    h.gpu.error.empty() ? "no device" : h.gpu.error));
  }
  if (!b.cuda && gpu_visible)
    warnings.push_back("a GPU is visible but this build has no CUDA backend");
  const auto& c = h.cpu;
  if (!c.avx2 || !c.fma)
    warnings.push_back("the CPU lacks AVX2/FMA: CPU kernels run their portable paths");
  const bool cpu_bf16 = c.avx512_bf16 || c.amx_bf16;
  if (!cpu_bf16) {
    warnings.push_back(
        "no AVX512_BF16 or AMX-BF16: on the CPU, `balanced` keeps fp32 (bf16 would be emulated and "
        "slower)");
  }
  if (b.build_type != "Release" && b.build_type != "RelWithDebInfo") {
    warnings.push_back(fmt::format(
        "build type is {}: benchmark numbers will be far from release speed", b.build_type));
  }
  if (c.usable_cores < c.logical_cores) {
    warnings.push_back(fmt::format("this process may use {} of {} cores (affinity mask / cgroup)",
                                   c.usable_cores, c.logical_cores));
  }
  bool ampere = false;
  for (const auto& g : h.gpu.gpus) ampere = ampere || g.cc_major >= 8;
  const bool cuda_ok = b.cuda && gpu_visible;
  levels["reference"] = "available: fp32 oracle on every device";
  levels["conservative"] = "available: exact fusions on every device";
  // The CUDA kernels are built for sm_90a (Hopper) and sm_80 (Ampere/Ada, not yet run there);
  // balanced and above store GEMM weights in bf16 and run prefill attention on fp16 tensor cores
  // (docs/cuda.md). No fp8 path yet.
  const std::string gpu_fast = cuda_ok ? (ampere ? "; GPU: bf16 GEMMs, fp16 tensor-core attention, CUDA graphs"
                                                 : "; GPU: not in this build (kernels need sm_80 or newer)")
                                       : "";
  levels["balanced"] = std::string(cpu_bf16 ? "CPU: bf16 GEMMs with KPT_CPU_BF16=1 (opt-in), else fp32"
                                            : "CPU: fp32 kept (no native bf16)") +
                       gpu_fast;
  levels["aggressive"] =
      std::string("CPU: int8 weights") +
      (c.avx512_vnni || c.avx_vnni ? " (VNNI present)" : " (no VNNI: int8 x int16 dot products)") +
      (cuda_ok ? gpu_fast + " (as balanced; no int8/fp8 GPU path yet)" : "");
  levels["production"] =
      "available: measures the candidates here and keeps the fastest within the accuracy budget";
  std::string rec;
  if (cuda_ok) {
    rec = ampere ? fmt::format("use --device cuda --level production (GPU {} found)", h.gpu.gpus[0].name)
                 : fmt::format("use --device cpu: GPU {} is older than sm_80, which this build's kernels need",
                               h.gpu.gpus[0].name);
  } else {
    rec = fmt::format(
        "use --device cpu --level production with --threads {} (the cores this process may use)",
        c.usable_cores);
  }
  return {
      {"devices", devices}, {"levels", levels}, {"warnings", warnings}, {"recommendation", rec}};
}

}  // namespace

Run add_doctor(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "doctor", "Report hardware, build and library versions, and what this machine can use");
  auto json = std::make_shared<bool>(false);
  auto timeout_ms = std::make_shared<int>(5000);
  cmd->add_flag("--json", *json,
                "print the environment fingerprint (what benchmarks record) as JSON");
  cmd->add_option("--gpu-timeout-ms", *timeout_ms, "give up on the GPU query after this long")
      ->capture_default_str();
  return [=] {
    const hw::Hardware h = hw::detect_hardware(*timeout_ms);
    const bench::BuildInfo b = bench::build_info();
    nlohmann::json env = bench::environment_json(h);
    env["capabilities"] = capabilities(h, b);
    if (*json) {
      std::printf("%s\n", env.dump(2).c_str());
      return 0;
    }
    const auto& c = h.cpu;
    std::string out;
    out += "KernelPyTorch doctor\n\nBuild\n";
    out += fmt::format("  version      {} (commit {}{})\n", b.version, b.git_commit,
                       b.git_dirty ? ", uncommitted changes" : "");
    out += fmt::format("  compiler     {}, {} build\n", b.compiler, b.build_type);
    out += fmt::format("  CUDA backend {}\n  oneDNN       {}\n", b.cuda ? "on" : "off",
                       b.onednn ? "on" : "off");
    out += "  libraries   ";
    for (const auto& [k, v] : env["libraries"].items())
      out += fmt::format(" {} {}", k, v.get<std::string>());
    out += "\n\nSystem\n";
    out += fmt::format("  OS           {} {} ({}), {}\n", env["os"].value("system", "?"),
                       env["os"].value("release", "?"), env["os"].value("machine", "?"),
                       env["os"].value("libc", "?"));
    out += fmt::format("  CPU          {} ({})\n", c.model.empty() ? "unknown" : c.model, c.vendor);
    out += fmt::format("  cores        {} logical, {} usable by this process; {} threads\n",
                       c.logical_cores, c.usable_cores, env["threads"].value("num_threads", 0));
    std::string flags;
    for (const auto& f : c.flags()) flags += " " + f;
    out += fmt::format("  ISA         {}\n", flags.empty() ? " (none detected)" : flags);
    out += fmt::format("  memory       {} total, {} available\n", gib(h.memory.total_bytes),
                       gib(h.memory.available_bytes));
    out += "\nGPUs\n";
    if (h.gpu.gpus.empty()) out += fmt::format("  none: {}\n", h.gpu.error);
    if (h.gpu.driver_found) {
      out += fmt::format(
          "  driver       CUDA {}{}\n", hw::cuda_version_string(h.gpu.driver_version),
          h.gpu.runtime_version ? ", runtime " + hw::cuda_version_string(h.gpu.runtime_version)
                                : "");
    }
    for (const auto& g : h.gpu.gpus) {
      out +=
          fmt::format("  cuda:{}       {}, sm_{}{}, {} SMs, {}, {} MHz, ~{:.0f} GB/s peak DRAM\n",
                      g.index, g.name, g.cc_major, g.cc_minor, g.sm_count, gib(g.memory_bytes),
                      g.clock_mhz, g.peak_bandwidth_gbs());
    }
    const auto& cap = env["capabilities"];
    out += "\nDevices\n";
    for (const auto& d : cap["devices"]) {
      out += fmt::format("  {:<8} {}  {}\n", d["device"].get<std::string>(),
                         d["available"].get<bool>() ? "yes" : "no ", d["why"].get<std::string>());
    }
    out += "\nLevels\n";
    for (const char* l : {"reference", "conservative", "balanced", "aggressive", "production"}) {
      out += fmt::format("  {:<13} {}\n", l, cap["levels"][l].get<std::string>());
    }
    if (!cap["warnings"].empty()) {
      out += "\nWarnings\n";
      for (const auto& w : cap["warnings"]) out += "  - " + w.get<std::string>() + "\n";
    }
    out += "\nRecommendation\n  " + cap["recommendation"].get<std::string>() + "\n";
    out += fmt::format("\nenv key {} (benchmarks compare only results with the same key)\n",
                       env["env_key"].get<std::string>());
    std::fputs(out.c_str(), stdout);
    return 0;
  };
}

}  // namespace kpt::cli
