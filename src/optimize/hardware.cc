#include "optimize/hardware.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define KPT_X86 1
#endif

namespace kpt::hw {

namespace {

#ifdef KPT_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}
// XCR0: which register states the OS saves on context switch. An extension whose state the OS
// does not save cannot be used even when cpuid reports it.
uint64_t xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
bool bit(unsigned v, int n) {
  return ((v >> n) & 1U) != 0;
}
#endif

int64_t meminfo_kb(const std::string& key) {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream ss(line.substr(key.size() + 1));
      int64_t kb = 0;
      ss >> kb;
      return kb;
    }
  }
  return 0;
}

// The subset of the CUDA driver API used here. Its ABI is stable across driver versions, which
// is why the driver (not the runtime, whose cudaDeviceProp layout changes) is queried.
using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CudaRuntimeGetVersion = int (*)(int*);

// CUdevice_attribute values (cuda.h).
constexpr int kAttrClockRate = 13;  // kHz
constexpr int kAttrSmCount = 16;
constexpr int kAttrMemoryClockRate = 36;  // kHz
constexpr int kAttrBusWidth = 37;         // bits
constexpr int kAttrCcMajor = 75;
constexpr int kAttrCcMinor = 76;

GpuReport query_gpus() {
  GpuReport r;
  void* cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cu == nullptr) {
    r.error = "no NVIDIA driver (libcuda.so.1 not found)";
    return r;
  }
  r.driver_found = true;
  for (const char* name : {"libcudart.so", "libcudart.so.13", "libcudart.so.12"}) {
    if (void* rt = dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
      if (auto f = reinterpret_cast<CudaRuntimeGetVersion>(dlsym(rt, "cudaRuntimeGetVersion")))
        f(&r.runtime_version);
      break;
    }
  }
  auto init = reinterpret_cast<CuInit>(dlsym(cu, "cuInit"));
  auto driver_version = reinterpret_cast<CuDriverGetVersion>(dlsym(cu, "cuDriverGetVersion"));
  auto count = reinterpret_cast<CuDeviceGetCount>(dlsym(cu, "cuDeviceGetCount"));
  auto get = reinterpret_cast<CuDeviceGet>(dlsym(cu, "cuDeviceGet"));
  auto get_name = reinterpret_cast<CuDeviceGetName>(dlsym(cu, "cuDeviceGetName"));
  auto total_mem = reinterpret_cast<CuDeviceTotalMem>(dlsym(cu, "cuDeviceTotalMem_v2"));
  auto attr = reinterpret_cast<CuDeviceGetAttribute>(dlsym(cu, "cuDeviceGetAttribute"));
  if (!init || !driver_version || !count || !get || !get_name || !total_mem || !attr) {
    r.error = "libcuda.so.1 lacks the expected driver API symbols";
    return r;
  }
  driver_version(&r.driver_version);
  if (int rc = init(0); rc != 0) {
    r.error = fmt::format("cuInit failed (CUresult {}): driver present but no usable GPU", rc);
    return r;
  }
  int n = 0;
  if (count(&n) != 0 || n == 0) {
    r.error = "the driver reports no CUDA device";
    return r;
  }
  for (int i = 0; i < n; ++i) {
    int dev = 0;
    if (get(&dev, i) != 0) continue;
    GpuInfo g;
    g.index = i;
    char name[256] = {};
    if (get_name(name, sizeof(name) - 1, dev) == 0) g.name = name;
    size_t bytes = 0;
    if (total_mem(&bytes, dev) == 0) g.memory_bytes = static_cast<int64_t>(bytes);
    auto get_attr = [&](int a) {
      int v = 0;
      return attr(&v, a, dev) == 0 ? v : 0;
    };
    g.cc_major = get_attr(kAttrCcMajor);
    g.cc_minor = get_attr(kAttrCcMinor);
    g.sm_count = get_attr(kAttrSmCount);
    g.clock_mhz = get_attr(kAttrClockRate) / 1000;
    g.memory_clock_mhz = get_attr(kAttrMemoryClockRate) / 1000;
    g.memory_bus_bits = get_attr(kAttrBusWidth);
    r.gpus.push_back(g);
  }
  return r;
}

}  // namespace

std::vector<std::string> CpuInfo::flags() const {
  std::vector<std::string> out;
  auto add = [&](bool on, const char* name) {
    if (on) out.emplace_back(name);
  };
  add(sse42, "sse4.2");
  add(avx, "avx");
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx_vnni, "avx_vnni");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512_vnni, "avx512_vnni");
  add(avx512_bf16, "avx512_bf16");
  add(avx512_fp16, "avx512_fp16");
  add(amx_tile, "amx_tile");
  add(amx_bf16, "amx_bf16");
  add(amx_int8, "amx_int8");
  return out;
}

double GpuInfo::peak_bandwidth_gbs() const {
  // DDR/HBM: two transfers per reported memory clock.
  return memory_clock_mhz > 0 && memory_bus_bits > 0
             ? 2.0 * memory_clock_mhz * 1e6 * memory_bus_bits / 8 / 1e9
             : 0.0;
}

CpuInfo detect_cpu() {
  CpuInfo c;
#if defined(__x86_64__)
  c.arch = "x86_64";
#elif defined(__aarch64__)
  c.arch = "aarch64";
#else
  c.arch = "unknown";
#endif
  c.logical_cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  c.usable_cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : c.logical_cores;
  c.vendor = "unknown";
#ifdef KPT_X86
  Regs v = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  c.vendor = vendor;
  const unsigned max_leaf = v.a;
  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      Regs b = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &b, 16);
    }
    c.model = brand;
    c.model.erase(0, c.model.find_first_not_of(' '));
  }
  Regs l1 = cpuid(1);
  const bool osxsave = bit(l1.c, 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;          // XMM + YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;     // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG + XTILEDATA
  c.sse42 = bit(l1.c, 20);
  c.avx = bit(l1.c, 28) && os_avx;
  c.fma = bit(l1.c, 12) && os_avx;
  c.f16c = bit(l1.c, 29) && os_avx;
  if (max_leaf >= 7) {
    Regs l7 = cpuid(7, 0);
    Regs l7_1 = cpuid(7, 1);
    c.avx2 = bit(l7.b, 5) && os_avx;
    c.avx512f = bit(l7.b, 16) && os_avx512;
    c.avx512bw = bit(l7.b, 30) && os_avx512;
    c.avx512vl = bit(l7.b, 31) && os_avx512;
    c.avx512_vnni = bit(l7.c, 11) && os_avx512;
    c.avx512_fp16 = bit(l7.d, 23) && os_avx512;
    c.amx_bf16 = bit(l7.d, 22) && os_amx;
    c.amx_tile = bit(l7.d, 24) && os_amx;
    c.amx_int8 = bit(l7.d, 25) && os_amx;
    c.avx512_bf16 = bit(l7_1.a, 5) && os_avx512;
    c.avx_vnni = bit(l7_1.a, 4) && os_avx;
  }
#endif
  if (c.model.empty()) {
    // Non-x86 (or no brand leaf): /proc/cpuinfo names the model on most Linux systems.
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
        auto colon = line.find(':');
        if (colon != std::string::npos)
          c.model = line.substr(line.find_first_not_of(' ', colon + 1));
        break;
      }
    }
  }
  return c;
}

MemoryInfo detect_memory() {
  MemoryInfo m;
  m.total_bytes = meminfo_kb("MemTotal") * 1024;
  m.available_bytes = meminfo_kb("MemAvailable") * 1024;
  return m;
}

GpuReport detect_gpus(int timeout_ms) {
  // A shared state outlives a timed-out query: the helper thread is detached, not joined.
  auto task = std::make_shared<std::packaged_task<GpuReport()>>(&query_gpus);
  std::future<GpuReport> result = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  if (result.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
    GpuReport r;
    r.driver_found = true;
    r.error = fmt::format("the GPU query did not answer within {} ms (driver busy or wedged)",
                          timeout_ms);
    return r;
  }
  return result.get();
}

Hardware detect_hardware(int gpu_timeout_ms) {
  return Hardware{detect_cpu(), detect_memory(), detect_gpus(gpu_timeout_ms)};
}

std::string cuda_version_string(int version) {
  if (version <= 0) return "";
  return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

}  // namespace kpt::hw
