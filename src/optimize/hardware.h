// What this machine offers: CPU model and ISA extensions (cpuid + OS support via xgetbv),
// cores, memory, and NVIDIA GPUs. GPUs are found through the CUDA driver library loaded at run
// time (dlopen of libcuda.so.1), so a CPU-only build reports them too and never needs CUDA to
// link; every device query runs under a time-out so a wedged driver cannot hang the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kpt::hw {

struct CpuInfo {
  std::string vendor;     // GenuineIntel, AuthenticAMD, ... ("unknown" off x86)
  std::string model;      // brand string, e.g. "Intel(R) Xeon(R) Platinum 8480+"
  std::string arch;       // x86_64, aarch64, ...
  int logical_cores = 0;  // online logical processors
  int usable_cores = 0;   // in this process's affinity mask (what OpenMP will use)
  // ISA extensions usable here: the CPU reports them AND the OS saves their registers.
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false,
       avx512_bf16 = false;
  bool avx512_fp16 = false, avx_vnni = false, amx_tile = false, amx_bf16 = false, amx_int8 = false;
  std::vector<std::string> flags() const;  // names of the extensions above that are present
};

struct MemoryInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};

struct GpuInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int64_t memory_bytes = 0;
  int sm_count = 0;
  int clock_mhz = 0;         // 0 when the driver does not report it
  int memory_clock_mhz = 0;  // 0 when the driver does not report it
  int memory_bus_bits = 0;
  // Peak DRAM bandwidth from the reported clock and bus width (2 transfers per clock); 0 if
  // unknown.
  double peak_bandwidth_gbs() const;
};

struct GpuReport {
  bool driver_found = false;  // libcuda.so.1 could be loaded
  int driver_version = 0;     // e.g. 13000 for 13.0
  int runtime_version = 0;    // libcudart, when it can be loaded; 0 otherwise
  std::vector<GpuInfo> gpus;
  std::string error;  // why no GPU is listed (no driver, no device, time-out, ...)
};

CpuInfo detect_cpu();
MemoryInfo detect_memory();
// Queries the driver in a helper thread and gives up after timeout_ms (the thread is left
// behind, reported in `error`).
GpuReport detect_gpus(int timeout_ms = 5000);

struct Hardware {
  CpuInfo cpu;
  MemoryInfo memory;
  GpuReport gpu;
};
Hardware detect_hardware(int gpu_timeout_ms = 5000);

// Versions like 13000 -> "13.0".
std::string cuda_version_string(int version);

}  // namespace kpt::hw
