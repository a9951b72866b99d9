// CudaExecutable: runs a graph node by node on one stream of one GPU.
//
// Memory: weights are uploaded once here (fp32, or bf16 for GEMM weights at balanced and
// above); K/V pools are per-layer device buffers that grow (reallocate + copy) only when the
// runtime's cache outgrows them; activations and per-step metadata come from a caching
// allocator, so after the first step of a shape no cudaMalloc happens. The only host sync per
// run is the copy of the outputs back to the host.
//
// Fusion: the backend runs the unfused graph (the CPU passes are not applied on CUDA) and merges
// launches itself, from a plan made once at compile time: residual add + norm, act(x) * y of gated
// MLPs, the q/k RoPE pair (with the layer's K/V write), and, for decode-shaped GEMMs (m <= 8 rows, bf16 weights), GEMMs that
// share one input in one GEMV launch with the bias and a following activation in its epilogue
// (for the gated MLP: act(gate) * up), and, for GEMMs on cuBLASLt (more rows), the bf16 cast of
// the A operand done by the kernel producing it (norms, activations write a bf16 copy).
// Every fused kernel computes what its unfused sequence computes (tests/cuda compares them);
// KPT_CUDA_FUSION=0 turns the plan off (launch counts before/after come from the same build).
#include "backends/cuda/backend.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "backends/cuda/check.h"
#include "backends/cuda/device_memory.h"
#include "backends/cuda/fusion_plan.h"
#include "backends/cuda/gemm_cublaslt.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

using graph::OpKind;

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string unavailable_reason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  (void)cudaGetLastError();
  if (err != cudaSuccess) return cudaGetErrorString(err);
  if (n == 0) return "no CUDA device is present";
  return "";
}

std::string device_description(int ordinal) {
  cudaDeviceProp prop{};
  KPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                     static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
}

bool supports(const graph::Node& node) {
  switch (node.op) {
    case OpKind::kEmbedding:
    case OpKind::kAdd:
    case OpKind::kMul:
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm:
    case OpKind::kLinear:
    case OpKind::kGeluErf:
    case OpKind::kGeluTanh:
    case OpKind::kSilu:
    case OpKind::kRelu:
    case OpKind::kRope:
    case OpKind::kGatherRows:
      return true;
    case OpKind::kAttention:
      return node.attr_int("head_dim") <= kMaxHeadDim;
    default:
      return false;  // inputs, weights and fused kinds this backend does not run yet
  }
}

namespace {

std::atomic<int64_t> g_last_run_launches{0};

// Non-decode shapes (encoder calls, prefills) are captured as graphs when seen a second time, up
// to this many shapes per executable (each graph keeps its own activations).
constexpr size_t kMaxShapeGraphs = 4;

class CudaExecutable final : public Executable {
 public:
  CudaExecutable(const graph::Graph& graph, const KvLayout& kv, int ordinal, Level level);
  ~CudaExecutable() override;
  CudaExecutable(const CudaExecutable&) = delete;
  CudaExecutable& operator=(const CudaExecutable&) = delete;

  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) override;
  Tensor run_argmax(const std::map<std::string, Tensor>& inputs, const KvStep& kv) override;
  Tensor run_sample(const std::map<std::string, Tensor>& inputs, const KvStep& kv, const SampleParams& p) override;
  std::string device() const override { return fmt::format("cuda:{}", ordinal_); }
  int64_t n_device_allocations() const {
    int64_t n = alloc_.n_device_allocations();
    for (const auto& [batch, g] : graphs_) n += g->alloc.n_device_allocations();
    return n;
  }
  void set_graphs_enabled(bool enabled) {
    graphs_enabled_ = enabled;
    graphs_.clear();
  }

 private:
  struct DevValue {
    ScratchBuffer owned;
    const void* data = nullptr;
    Shape shape;
    // The bf16 copy written by its producer for the cuBLASLt GEMMs reading it (see ensure_bf16);
    // empty where none was written.
    ScratchBuffer owned16;
  };
  struct AttentionMeta {
    ScratchBuffer block_tables, past_len, key_valid;
    int64_t max_blocks = 0, key_valid_stride = 0;
  };

  // A decode step (seq 1) of one batch size, captured once and replayed. Everything its kernels
  // touch lives at fixed addresses: its own allocator hands out the activations during capture
  // and is used by nothing else afterwards; inputs and metadata are rewritten in place each step
  // (metadata padded to the pool's capacity so kernel arguments never change).
  struct DecodeGraph {
    int64_t batch = 1, seq = 1;
    int64_t launches = 0;  // kernel launches captured
    CachingAllocator alloc;
    std::vector<DevValue> vals;
    AttentionMeta meta;
    cudaGraphExec_t exec = nullptr;
    // KPT_CUDA_GRAPH_TIMING=1: device time of the replays, printed when the graph is dropped.
    cudaEvent_t start = nullptr, stop = nullptr;
    double replay_ms = 0;
    int64_t replays = 0;
    ~DecodeGraph() {
      if (replays > 0) {
        std::fprintf(stderr, "kpt cuda graph [batch %lld x seq %lld]: %lld replays, %.4f ms device time per replay, %lld launches\n",
                     static_cast<long long>(batch), static_cast<long long>(seq), static_cast<long long>(replays),
                     replay_ms / static_cast<double>(replays), static_cast<long long>(launches));
      }
      if (start != nullptr) (void)cudaEventDestroy(start);
      if (stop != nullptr) (void)cudaEventDestroy(stop);
      if (exec != nullptr) (void)cudaGraphExecDestroy(exec);
    }
  };

  void upload_weights();
  void reserve_kv(int64_t n_blocks);
  std::array<int64_t, graph::kNumSyms> bind_inputs(const std::map<std::string, Tensor>& inputs) const;
  void upload_inputs(const std::map<std::string, Tensor>& inputs, std::vector<DevValue>& vals, bool reuse);
  void upload_attention_meta(const KvStep& kv, int64_t seq, bool full_capacity, bool reuse, AttentionMeta& m);
  void execute(std::vector<DevValue>& vals, const AttentionMeta& meta, const std::array<int64_t, graph::kNumSyms>& sym);
  // Host copies of the graph outputs; with argmax_, only the argmax ids of the first output.
  std::vector<Tensor> download(const std::vector<DevValue>& vals);
  bool argmax_ = false;
  const SampleParams* sample_ = nullptr;  // run_sample: sample on the device where k allows
  DeviceBuffer argmax_ids_;  // [rows] i64, grown when a larger batch first asks
  DeviceBuffer sample_r_;    // [rows] f64: the rows' uniform draws
  std::vector<Tensor> run_graph(const std::map<std::string, Tensor>& inputs, const KvStep& kv, int64_t batch,
                                int64_t seq);
  void run_node(size_t index, std::vector<DevValue>& vals, const AttentionMeta& meta, float* out);
  float* ensure_output(size_t node, std::vector<DevValue>& vals);
  // The weight, bias and width of linear node `node` as a GEMV output (out and act left unset).
  GemvOut gemv_weight(size_t node, const std::vector<DevValue>& vals) const {
    const auto& m = graph_.nodes()[node];
    GemvOut g;
    g.w = w_bf16_.at(m.inputs[1]).as<uint16_t>();
    g.bias = m.inputs.size() > 2 ? static_cast<const float*>(vals[static_cast<size_t>(m.inputs[2])].data) : nullptr;
    g.n = graph_.value(m.inputs[1]).constant.shape()[0];
    return g;
  }
  // The arguments of attention node `node` over this run's metadata.
  PagedAttention attention_args(size_t node, const AttentionMeta& meta) const;
  // The bf16 copy of node's output, allocated on request when the output is read as the A operand
  // of bf16 GEMMs that run on cuBLASLt in this call (more than kMaxGemvRows rows); else null.
  uint16_t* ensure_bf16(size_t node, std::vector<DevValue>& vals);
  // The fp32 output of node, or null where a bf16 copy is written and nothing else reads it.
  float* fp32_unless_bf16_only(size_t node, std::vector<DevValue>& vals, const uint16_t* copy) {
    return copy != nullptr && bf16_only_[static_cast<size_t>(graph_.nodes()[node].output)] != 0
               ? nullptr
               : ensure_output(node, vals);
  }

  const graph::Graph& graph_;
  KvLayout kv_;
  int ordinal_;
  bool bf16_;
  cudaStream_t stream_ = nullptr;
  CachingAllocator alloc_;
  CachingAllocator* active_ = &alloc_;  // the graph's allocator while one is captured
  bool graphs_enabled_ = true;
  // KPT_CUDA_PROFILE=1: eager launches with an event between nodes; per shape and op kind, the
  // time from one node's start to the next (launch gaps included), printed at destruction.
  struct OpTime {
    double ms = 0;
    int64_t calls = 0;
  };
  struct ShapeProfile {
    std::map<std::string, OpTime> ops;
    int64_t runs = 0;
    double host_ms = 0;
    bool warm = false;
  };
  bool profile_ = false;
  bool graph_timing_ = false;
  std::vector<cudaEvent_t> events_;
  std::map<std::string, ShapeProfile> profiles_;  // by "batch B x seq S"
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<DecodeGraph>> graphs_;  // by (batch, seq)
  std::map<std::pair<int64_t, int64_t>, int> shape_seen_;  // non-decode shapes run eagerly so far
  std::vector<NodePlan> plan_;
  bool fusion_ = true;
  // Per run: nodes already computed by an earlier fused launch, outputs already allocated.
  std::vector<uint8_t> done_, allocated_;
  std::array<int64_t, graph::kNumSyms> sym_{};
  int64_t launches_ = 0;
  std::vector<std::string> labels_;  // profile: what node i's launch did this run
  std::unique_ptr<CublasLtGemm> gemm_;
  static constexpr size_t kPinnedMinBytes = size_t{1} << 20;
  PinnedHostPool pinned_;  // large outputs' host copies
  std::map<int, DeviceBuffer> w_f32_;   // value id -> fp32 weight
  std::map<int, DeviceBuffer> w_bf16_;  // value id -> bf16 GEMM weight
  std::map<size_t, DeviceBuffer> inv_freq_;  // rope node index -> fp32 [head_dim / 2]
  std::vector<int> last_use_;  // per value: index of the last node reading it
  // Per value: read as the A operand of a bf16 GEMM (by some reader; by every reader, not an output).
  std::vector<uint8_t> bf16_reader_, bf16_only_;
  std::vector<DeviceBuffer> k_, v_;  // per layer [n_blocks, block_size, n_kv_heads, head_dim]
  int64_t n_blocks_ = 0;
  bool has_attention_ = false;
};

CudaExecutable::CudaExecutable(const graph::Graph& graph, const KvLayout& kv, int ordinal, Level level)
    : graph_(graph), kv_(kv), ordinal_(ordinal), bf16_(level != Level::kReference && level != Level::kConservative) {
  const int n_dev = device_count();
  if (ordinal < 0 || ordinal >= n_dev) {
    throw Error(ErrorCode::kUnsupported,
                n_dev == 0 ? fmt::format("device 'cuda:{}' is not available: {}; use --device cpu", ordinal,
                                         unavailable_reason())
                           : fmt::format("device 'cuda:{}' does not exist: this machine has {} GPU(s) (cuda:0..cuda:{})",
                                         ordinal, n_dev, n_dev - 1));
  }
  // The kernels are built for sm_90a (Hopper) and sm_80 (Ampere, which also runs on sm_86/sm_89);
  // older GPUs would fail at the first launch with "no kernel image": say so up front.
  cudaDeviceProp prop{};
  KPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
  if (prop.major < 8) {
    throw Error(ErrorCode::kUnsupported,
                fmt::format("cuda:{} is {} (sm_{}{}): this build's CUDA kernels need sm_80 or newer (Ampere, Ada, "
                            "Hopper); use --device cpu",
                            ordinal, prop.name, prop.major, prop.minor));
  }
  KPT_CUDA_CHECK(cudaSetDevice(ordinal_));
  KPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  const char* env = std::getenv("KPT_CUDA_GRAPHS");
  graphs_enabled_ = env == nullptr || std::string(env) != "0";
  const char* fuse = std::getenv("KPT_CUDA_FUSION");
  fusion_ = fuse == nullptr || std::string(fuse) != "0";
  const char* prof = std::getenv("KPT_CUDA_PROFILE");
  profile_ = prof != nullptr && std::string(prof) != "0";
  const char* gt = std::getenv("KPT_CUDA_GRAPH_TIMING");
  graph_timing_ = gt != nullptr && std::string(gt) != "0";
  if (profile_) {
    graphs_enabled_ = false;
    events_.resize(graph.nodes().size() + 1);
    for (auto& e : events_) KPT_CUDA_CHECK(cudaEventCreate(&e));
  }
  gemm_ = std::make_unique<CublasLtGemm>();
  last_use_.assign(graph.values().size(), -1);
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const auto& n = graph.nodes()[i];
    if (!supports(n)) {
      throw Error(ErrorCode::kUnsupported,
                  fmt::format("CUDA backend: op {} ({}) is not supported", graph::op_name(n.op), n.name));
    }
    if (n.op == OpKind::kAttention) has_attention_ = true;
  }
  plan_ = plan_fusions(graph_, fusion_, bf16_);
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const auto& n = graph.nodes()[i];
    for (int v : n.inputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(i);
  }
  // A deferred unary reads its input where its kMul runs, later than its own index.
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    if (plan_[i].act < 0) continue;
    const int x = graph.nodes()[static_cast<size_t>(plan_[i].act)].inputs[0];
    last_use_[static_cast<size_t>(x)] = std::max(last_use_[static_cast<size_t>(x)], static_cast<int>(i));
  }
  for (int v : graph.outputs()) last_use_[static_cast<size_t>(v)] = static_cast<int>(graph.nodes().size());
  k_.resize(static_cast<size_t>(kv.n_layers));
  v_.resize(static_cast<size_t>(kv.n_layers));
  upload_weights();
  const size_t n_vals = graph.values().size();
  bf16_reader_.assign(n_vals, 0);
  bf16_only_.assign(n_vals, 1);
  for (const auto& n : graph.nodes()) {
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const bool gemm_a = n.op == OpKind::kLinear && j == 0 && w_bf16_.count(n.inputs[1]) != 0;
      (gemm_a ? bf16_reader_ : bf16_only_)[static_cast<size_t>(n.inputs[j])] = gemm_a ? 1 : 0;
    }
  }
  for (int v : graph.outputs()) bf16_only_[static_cast<size_t>(v)] = 0;
  for (size_t v = 0; v < n_vals; ++v) bf16_only_[v] = bf16_only_[v] != 0 && bf16_reader_[v] != 0 ? 1 : 0;
}

CudaExecutable::~CudaExecutable() {
  for (const auto& [shape, prof] : profiles_) {
    double total = 0;
    for (const auto& [op, t] : prof.ops) total += t.ms;
    const double runs = static_cast<double>(prof.runs);
    std::string report = fmt::format("kpt cuda profile [{}]: {} runs after one warm-up, {:.3f} ms device time per run "
                                     "(node start to next node start, eager launches queued behind a spin kernel), "
                                     "host run() {:.3f} ms per run (spin included)\n",
                                     shape, prof.runs, total / runs, prof.host_ms / runs);
    std::vector<std::pair<std::string, OpTime>> rows(prof.ops.begin(), prof.ops.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    for (const auto& [op, t] : rows) {
      report += fmt::format("  {:<22} {:>5} launches/run {:>9.3f} ms/run {:>5.1f}% {:>8.2f} us/launch\n", op,
                            t.calls / prof.runs, t.ms / runs, 100.0 * t.ms / total,
                            1000.0 * t.ms / static_cast<double>(t.calls));
    }
    std::fputs(report.c_str(), stderr);
  }
  for (auto& e : events_) (void)cudaEventDestroy(e);
  graphs_.clear();
  if (stream_ != nullptr) {
    (void)cudaStreamSynchronize(stream_);
    (void)cudaStreamDestroy(stream_);
  }
}

void CudaExecutable::upload_weights() {
  // Which weights feed a GEMM as its [out, in] matrix, and which are read as fp32 (embedding
  // tables, norms, biases). A tied embedding is both and gets both copies.
  std::map<int, bool> gemm_use, f32_use;
  const auto& nodes = graph_.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const int v = n.inputs[j];
      if (!graph_.value(v).constant.defined()) continue;
      if (n.op == OpKind::kLinear && j == 1 && bf16_) {
        gemm_use[v] = true;
      } else {
        f32_use[v] = true;
      }
    }
    if (n.op == OpKind::kRope) {
      const auto& inv = n.attr_doubles("inv_freq");
      std::vector<float> f(inv.begin(), inv.end());
      DeviceBuffer buf(f.size() * sizeof(float));
      KPT_CUDA_CHECK(cudaMemcpy(buf.data(), f.data(), f.size() * sizeof(float), cudaMemcpyHostToDevice));
      inv_freq_.emplace(i, std::move(buf));
    }
  }
  auto upload_f32 = [&](int v) {
    const Tensor& c = graph_.value(v).constant;
    const Tensor f = c.dtype() == DType::kF32 ? c : c.to_f32();
    DeviceBuffer buf(f.size_bytes());
    KPT_CUDA_CHECK(cudaMemcpy(buf.data(), f.raw(), f.size_bytes(), cudaMemcpyHostToDevice));
    return buf;
  };
  for (const auto& [v, used] : f32_use) w_f32_.emplace(v, upload_f32(v));
  for (const auto& [v, used] : gemm_use) {
    // Convert on the device: the host conversion of a 1B-parameter model takes seconds.
    auto it = w_f32_.find(v);
    DeviceBuffer tmp;
    const float* src = nullptr;
    if (it != w_f32_.end()) {
      src = it->second.as<float>();
    } else {
      tmp = upload_f32(v);
      src = tmp.as<float>();
    }
    const int64_t numel = graph_.value(v).constant.numel();
    DeviceBuffer buf(static_cast<size_t>(numel) * sizeof(uint16_t));
    f32_to_bf16(src, numel, buf.as<uint16_t>(), stream_);
    KPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    w_bf16_.emplace(v, std::move(buf));
  }
}

void CudaExecutable::reserve_kv(int64_t n_blocks) {
  if (n_blocks <= n_blocks_) return;
  // The runtime's cache already doubles its block count, so following it exactly reallocates
  // O(log n) times over a long generation.
  const int64_t target = n_blocks;
  const size_t per_block = static_cast<size_t>(kv_.block_size * kv_.n_kv_heads * kv_.head_dim) * sizeof(float);
  for (size_t l = 0; l < k_.size(); ++l) {
    for (auto* pool : {&k_[l], &v_[l]}) {
      DeviceBuffer grown(per_block * static_cast<size_t>(target));
      if (pool->size_bytes() > 0) {
        KPT_CUDA_CHECK(cudaMemcpyAsync(grown.data(), pool->data(), pool->size_bytes(), cudaMemcpyDeviceToDevice, stream_));
        // The old pool is freed when `grown` replaces it; cudaFree waits for the copy.
      }
      *pool = std::move(grown);
    }
  }
  n_blocks_ = target;
}

// Block tables, past lengths and key validity of every row, padded to the batch maximum (or, for
// a captured graph, to the pool's capacity) and uploaded once per run: all layers share them.
void CudaExecutable::upload_attention_meta(const KvStep& kv, int64_t seq, bool full_capacity, bool reuse,
                                           AttentionMeta& m) {
  const size_t batch = kv.seqs.size();
  if (full_capacity) {
    m.max_blocks = n_blocks_;
    m.key_valid_stride = n_blocks_ * kv_.block_size;
  } else {
    m.max_blocks = 1;
    m.key_valid_stride = 1;
    for (const auto& s : kv.seqs) {
      m.max_blocks = std::max(m.max_blocks, s.n_blocks);
      m.key_valid_stride = std::max(m.key_valid_stride, s.past_len + seq);
    }
  }
  std::vector<int32_t> tables(batch * static_cast<size_t>(m.max_blocks), 0);  // [B, max_blocks]
  std::vector<int32_t> past(batch, 0);                                        // [B]
  std::vector<uint8_t> valid(batch * static_cast<size_t>(m.key_valid_stride), 0);  // [B, stride]
  for (size_t b = 0; b < batch; ++b) {
    const SequenceView& s = kv.seqs[b];
    KPT_CHECK(s.n_blocks * kv_.block_size >= s.past_len + seq, "KV step: a sequence holds too few blocks");
    KPT_CHECK(s.n_blocks <= m.max_blocks, "KV step: more blocks than the pool holds");
    for (int64_t i = 0; i < s.n_blocks; ++i) {
      KPT_CHECK(s.block_table[i] >= 0 && s.block_table[i] < n_blocks_, "KV step: block id beyond capacity_blocks");
      tables[b * static_cast<size_t>(m.max_blocks) + static_cast<size_t>(i)] = s.block_table[i];
    }
    past[b] = static_cast<int32_t>(s.past_len);
    std::copy(s.key_valid, s.key_valid + s.past_len + seq, valid.begin() + static_cast<int64_t>(b) * m.key_valid_stride);
  }
  auto upload = [&](ScratchBuffer& buf, const void* src, size_t bytes) {
    if (!reuse) buf = ScratchBuffer(*active_, bytes);
    // Pageable sources: cudaMemcpyAsync has staged them by the time it returns.
    KPT_CUDA_CHECK(cudaMemcpyAsync(buf.data(), src, bytes, cudaMemcpyHostToDevice, stream_));
  };
  upload(m.block_tables, tables.data(), tables.size() * sizeof(int32_t));
  upload(m.past_len, past.data(), past.size() * sizeof(int32_t));
  upload(m.key_valid, valid.data(), valid.size());
}

std::array<int64_t, graph::kNumSyms> CudaExecutable::bind_inputs(const std::map<std::string, Tensor>& inputs) const {
  return graph::bind_symbols(graph_, inputs);
}

// reuse: the buffers exist (a captured graph's) and have this step's sizes; only copy.
void CudaExecutable::upload_inputs(const std::map<std::string, Tensor>& inputs, std::vector<DevValue>& vals,
                                   bool reuse) {
  for (int id : graph_.inputs()) {
    const Tensor& t = inputs.at(graph_.value(id).name);
    DevValue& dv = vals[static_cast<size_t>(id)];
    if (!reuse) {
      dv.owned = ScratchBuffer(*active_, t.size_bytes());
      dv.data = dv.owned.data();
      dv.shape = t.shape();
    }
    KPT_CHECK(dv.shape == t.shape(), "graph replay with another input shape");
    KPT_CUDA_CHECK(cudaMemcpyAsync(dv.owned.data(), t.raw(), t.size_bytes(), cudaMemcpyHostToDevice, stream_));
  }
  for (const auto& [id, buf] : w_f32_) {
    vals[static_cast<size_t>(id)].data = buf.data();
    vals[static_cast<size_t>(id)].shape = graph_.value(id).constant.shape();
  }
  for (const auto& [id, buf] : w_bf16_) vals[static_cast<size_t>(id)].shape = graph_.value(id).constant.shape();
}

// The node loop: device work only (no host sync, no pageable copies), so it can be captured.
void CudaExecutable::execute(std::vector<DevValue>& vals, const AttentionMeta& meta,
                             const std::array<int64_t, graph::kNumSyms>& sym) {
  const auto& nodes = graph_.nodes();
  sym_ = sym;
  done_.assign(nodes.size(), 0);
  allocated_.assign(nodes.size(), 0);
  launches_ = 0;
  if (profile_) labels_.assign(nodes.size(), std::string());
  for (size_t ni = 0; ni < nodes.size(); ++ni) {
    const auto& n = nodes[ni];
    if (profile_) KPT_CUDA_CHECK(cudaEventRecord(events_[ni], stream_));
    if (done_[ni] == 0 && !plan_[ni].deferred) {
      float* o = ensure_output(ni, vals);
      run_node(ni, vals, meta, o);
      done_[ni] = 1;
    } else if (profile_) {
      labels_[ni] = std::string("(fused, no launch) ") + graph::op_name(n.op);
    }
    for (int v : n.inputs) {
      if (last_use_[static_cast<size_t>(v)] == static_cast<int>(ni) && !graph_.value(v).constant.defined() &&
          graph_.value(v).producer >= 0) {
        vals[static_cast<size_t>(v)].owned.reset();  // back to the cache; stream order keeps reuse safe
        vals[static_cast<size_t>(v)].owned16.reset();
      }
    }
  }
  g_last_run_launches.store(launches_);
}

// A node's output buffer, allocated on first request (a fused launch asks for its partners').
float* CudaExecutable::ensure_output(size_t ni, std::vector<DevValue>& vals) {
  const auto& n = graph_.nodes()[ni];
  DevValue& out = vals[static_cast<size_t>(n.output)];
  if (allocated_[ni] == 0) {
    Shape shape = graph::concrete_shape(graph_.value(n.output).shape, sym_);
    out.owned = ScratchBuffer(*active_, static_cast<size_t>(shape_numel(shape)) * sizeof(float));
    out.data = out.owned.data();
    out.shape = std::move(shape);
    out.owned16.reset();
    allocated_[ni] = 1;
  }
  return out.owned.as<float>();
}

PagedAttention CudaExecutable::attention_args(size_t node, const AttentionMeta& meta) const {
  const auto& n = graph_.nodes()[node];
  // q's shape [B, S, ...] from the symbols: the RoPE pair asks before q's buffer exists.
  const Shape qs = graph::concrete_shape(graph_.value(n.inputs[0]).shape, sym_);
  const int64_t layer = n.attr_int("layer");
  PagedAttention p;
  p.k_pool = k_[static_cast<size_t>(layer)].as<float>();
  p.v_pool = v_[static_cast<size_t>(layer)].as<float>();
  p.block_tables = meta.block_tables.as<int32_t>();
  p.max_blocks = meta.max_blocks;
  p.past_len = meta.past_len.as<int32_t>();
  p.key_valid = meta.key_valid.as<uint8_t>();
  p.key_valid_stride = meta.key_valid_stride;
  p.batch = qs[0];
  p.seq = qs[1];
  p.n_heads = n.attr_int("n_heads");
  p.n_kv_heads = kv_.n_kv_heads;
  p.head_dim = kv_.head_dim;
  p.block_size = kv_.block_size;
  p.causal = n.attr_int("causal") != 0;
  p.scale = static_cast<float>(n.attr_double("scale"));
  p.window = n.attr_int("window");
  p.tensor_cores = bf16_;
  return p;
}

uint16_t* CudaExecutable::ensure_bf16(size_t ni, std::vector<DevValue>& vals) {
  const int v = graph_.nodes()[ni].output;
  if (!fusion_ || bf16_reader_[static_cast<size_t>(v)] == 0) return nullptr;
  ensure_output(ni, vals);
  DevValue& dv = vals[static_cast<size_t>(v)];
  const int64_t numel = shape_numel(dv.shape);
  const int64_t last = dv.shape.empty() ? 1 : dv.shape.back();
  if (numel == 0 || numel / last <= kMaxGemvRows) return nullptr;  // the GEMV reads fp32 itself
  if (dv.owned16.data() == nullptr) dv.owned16 = ScratchBuffer(*active_, static_cast<size_t>(numel) * sizeof(uint16_t));
  return dv.owned16.as<uint16_t>();
}

std::vector<Tensor> CudaExecutable::download(const std::vector<DevValue>& vals) {
  std::vector<Tensor> outs;
  const DevValue& first = vals[static_cast<size_t>(graph_.outputs().at(0))];
  const int64_t n_last = first.shape.empty() ? 0 : first.shape.back();
  // k of the host sampler: top_k where set and below the vocabulary, else the whole vocabulary.
  const int64_t sample_k =
      sample_ == nullptr ? 0 : std::min(sample_->top_k > 0 ? sample_->top_k : n_last, n_last);
  if (argmax_ || (sample_ != nullptr && sample_k >= 1 && sample_k <= kMaxSampleTopK)) {
    const DevValue& dv = first;
    const int64_t n = n_last;
    const int64_t rows = n > 0 ? shape_numel(dv.shape) / n : 0;
    const size_t bytes = static_cast<size_t>(rows) * sizeof(int64_t);
    if (argmax_ids_.size_bytes() < bytes) argmax_ids_ = DeviceBuffer(bytes);  // new largest batch only
    if (sample_ != nullptr) {
      KPT_CHECK(static_cast<int64_t>(sample_->r.size()) == rows, "run_sample: one uniform draw per row");
      const size_t r_bytes = static_cast<size_t>(rows) * sizeof(double);
      if (sample_r_.size_bytes() < r_bytes) sample_r_ = DeviceBuffer(r_bytes);
      // Pageable source: staged by the time the call returns.
      KPT_CUDA_CHECK(cudaMemcpyAsync(sample_r_.data(), sample_->r.data(), r_bytes, cudaMemcpyHostToDevice, stream_));
      sample_rows(static_cast<const float*>(dv.data), rows, n, sample_->temperature, sample_k, sample_->top_p,
                  sample_r_.as<double>(), argmax_ids_.as<int64_t>(), stream_);
    } else {
      argmax_rows(static_cast<const float*>(dv.data), rows, n, argmax_ids_.as<int64_t>(), stream_);
    }
    Tensor ids = Tensor::empty(DType::kI64, {rows});
    KPT_CUDA_CHECK(cudaMemcpyAsync(ids.raw(), argmax_ids_.data(), bytes, cudaMemcpyDeviceToHost, stream_));
    KPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    outs.push_back(std::move(ids));
    return outs;
  }
  for (int v : graph_.outputs()) {
    const DevValue& dv = vals[static_cast<size_t>(v)];
    const size_t bytes = static_cast<size_t>(shape_numel(dv.shape)) * sizeof(float);
    Tensor host;
    // Large outputs (encoder hidden states, full logits) land in pinned memory: BERT-base at batch
    // 32 x 128 returns 12.6 MB, which took ~1.2 ms pageable (zero-fill included) on the H200 host.
    std::shared_ptr<void> pinned = bytes >= kPinnedMinBytes ? pinned_.acquire(bytes) : nullptr;
    if (pinned != nullptr) {
      host = Tensor(Storage::borrow(pinned.get(), bytes, pinned), DType::kF32, dv.shape);
    } else {
      host = Tensor::empty(DType::kF32, dv.shape);
    }
    KPT_CUDA_CHECK(cudaMemcpyAsync(host.raw(), dv.data, bytes, cudaMemcpyDeviceToHost, stream_));
    outs.push_back(std::move(host));
  }
  KPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return outs;
}

Tensor CudaExecutable::run_argmax(const std::map<std::string, Tensor>& inputs, const KvStep& kv) {
  struct Flag {
    bool& f;
    explicit Flag(bool& x) : f(x) { f = true; }
    ~Flag() { f = false; }
  } flag(argmax_);
  return run(inputs, kv).at(0);
}

Tensor CudaExecutable::run_sample(const std::map<std::string, Tensor>& inputs, const KvStep& kv,
                                  const SampleParams& p) {
  struct Scope {
    const SampleParams*& s;
    Scope(const SampleParams*& x, const SampleParams& v) : s(x) { s = &v; }
    ~Scope() { s = nullptr; }
  } scope(sample_, p);
  Tensor out = run(inputs, kv).at(0);
  // ids when sampled on the device; the logits when k was too large for it (then on the host).
  return out.dtype() == DType::kI64 ? out : sample_on_host(out, p);
}

std::vector<Tensor> CudaExecutable::run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) {
  KPT_CUDA_CHECK(cudaSetDevice(ordinal_));
  const int64_t blocks_before = n_blocks_;
  reserve_kv(kv.capacity_blocks);
  if (n_blocks_ != blocks_before) graphs_.clear();  // captured pool pointers and capacities are stale
  const auto sym = bind_inputs(inputs);
  const int64_t batch = sym[static_cast<size_t>(graph::Sym::kBatch)];
  const int64_t seq = sym[static_cast<size_t>(graph::Sym::kSeq)];
  if (graphs_enabled_) {
    const std::pair<int64_t, int64_t> key{batch, seq};
    if (graphs_.count(key) != 0 || (has_attention_ && seq == 1)) return run_graph(inputs, kv, batch, seq);
    size_t n_shape_graphs = 0;
    for (const auto& [k, g] : graphs_) n_shape_graphs += k.second != 1 ? 1 : 0;
    if (++shape_seen_[key] >= 2 && n_shape_graphs < kMaxShapeGraphs) return run_graph(inputs, kv, batch, seq);
  }

  std::vector<DevValue> vals(graph_.values().size());
  upload_inputs(inputs, vals, false);
  AttentionMeta meta;
  if (has_attention_) {
    KPT_CHECK(seq >= 0 && kv.seqs.size() == static_cast<size_t>(batch), "KV step does not match the batch");
    upload_attention_meta(kv, seq, false, false, meta);
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Profile: a 10 ms spin first, so every launch of the step is queued before the GPU reaches it
  // and the events between nodes time the kernels, not the host's launch rate.
  if (profile_) gpu_spin(10'000'000, stream_);
  execute(vals, meta, sym);
  if (profile_) KPT_CUDA_CHECK(cudaEventRecord(events_.back(), stream_));
  std::vector<Tensor> outs = download(vals);
  if (profile_) {
    ShapeProfile& prof = profiles_[fmt::format("batch {} x seq {}", batch, seq)];
    if (!prof.warm) {  // the first run of a shape loads modules lazily and builds GEMM plans
      prof.warm = true;
      return outs;
    }
    prof.host_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++prof.runs;
    const auto& nodes = graph_.nodes();
    for (size_t ni = 0; ni < nodes.size(); ++ni) {
      float ms = 0;
      KPT_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[ni], events_[ni + 1]));
      std::string key = graph::op_name(nodes[ni].op);
      if (nodes[ni].op == OpKind::kLinear) {
        key += fmt::format(" n={}", graph_.value(nodes[ni].inputs[1]).constant.shape()[0]);
      }
      if (!labels_[ni].empty()) key = labels_[ni];
      OpTime& t = prof.ops[key];
      t.ms += ms;
      ++t.calls;
    }
  }
  return outs;
}

std::vector<Tensor> CudaExecutable::run_graph(const std::map<std::string, Tensor>& inputs, const KvStep& kv,
                                              int64_t batch, int64_t seq) {
  if (has_attention_) KPT_CHECK(kv.seqs.size() == static_cast<size_t>(batch), "KV step does not match the batch");
  const std::pair<int64_t, int64_t> key{batch, seq};
  auto it = graphs_.find(key);
  if (it != graphs_.end()) {
    DecodeGraph& g = *it->second;
    upload_inputs(inputs, g.vals, true);
    if (has_attention_) upload_attention_meta(kv, seq, true, true, g.meta);
    if (graph_timing_) KPT_CUDA_CHECK(cudaEventRecord(g.start, stream_));
    KPT_CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
    g_last_run_launches.store(g.launches);
    if (graph_timing_) {
      KPT_CUDA_CHECK(cudaEventRecord(g.stop, stream_));
      std::vector<Tensor> outs = download(g.vals);
      float ms = 0;
      KPT_CUDA_CHECK(cudaEventElapsedTime(&ms, g.start, g.stop));
      g.replay_ms += ms;
      ++g.replays;
      return outs;
    }
    return download(g.vals);
  }
  auto g = std::make_unique<DecodeGraph>();
  g->batch = batch;
  g->seq = seq;
  if (graph_timing_) {
    KPT_CUDA_CHECK(cudaEventCreate(&g->start));
    KPT_CUDA_CHECK(cudaEventCreate(&g->stop));
  }
  g->vals.resize(graph_.values().size());
  active_ = &g->alloc;
  try {
    upload_inputs(inputs, g->vals, false);
    if (has_attention_) upload_attention_meta(kv, seq, true, false, g->meta);
    const auto sym = bind_inputs(inputs);
    // Relaxed: the allocator may cudaMalloc while the step is captured (not a stream operation).
    KPT_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
    try {
      execute(g->vals, g->meta, sym);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      (void)cudaStreamEndCapture(stream_, &broken);
      if (broken != nullptr) (void)cudaGraphDestroy(broken);
      throw;
    }
    cudaGraph_t graph = nullptr;
    KPT_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    const cudaError_t inst = cudaGraphInstantiate(&g->exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    KPT_CUDA_CHECK(inst);
  } catch (...) {
    active_ = &alloc_;
    throw;
  }
  active_ = &alloc_;
  g->launches = launches_;
  KPT_CUDA_CHECK(cudaGraphLaunch(g->exec, stream_));
  std::vector<Tensor> outs = download(g->vals);
  graphs_.emplace(key, std::move(g));
  return outs;
}

void CudaExecutable::run_node(size_t index, std::vector<DevValue>& vals, const AttentionMeta& meta, float* o) {
  const auto& n = graph_.nodes()[index];
  auto val = [&](size_t i) -> const DevValue& { return vals[static_cast<size_t>(n.inputs[i])]; };
  auto f = [&](size_t i) { return static_cast<const float*>(val(i).data); };
  auto i64 = [&](size_t i) { return static_cast<const int64_t*>(val(i).data); };
  const Shape& out_shape = vals[static_cast<size_t>(n.output)].shape;
  const int64_t numel = shape_numel(out_shape);
  const int64_t last = out_shape.empty() ? 1 : out_shape.back();
  const NodePlan& plan = plan_[index];
  const auto& nodes = graph_.nodes();
  auto label = [&](const std::string& text) {
    if (profile_) labels_[index] = text;
  };
  ++launches_;
  switch (n.op) {
    case OpKind::kEmbedding:
      embedding(f(0), val(0).shape[1], i64(1), shape_numel(val(1).shape), o, stream_);
      break;
    case OpKind::kAdd:
      if (plan.norm >= 0) {
        const auto& m = nodes[static_cast<size_t>(plan.norm)];
        auto c = [&](size_t i) { return static_cast<const float*>(vals[static_cast<size_t>(m.inputs[i])].data); };
        uint16_t* n16 = ensure_bf16(static_cast<size_t>(plan.norm), vals);
        float* normed = fp32_unless_bf16_only(static_cast<size_t>(plan.norm), vals, n16);
        const float eps = static_cast<float>(m.attr_double("eps"));
        if (m.op == OpKind::kRmsNorm) {
          add_rms_norm(f(0), f(1), c(1), numel / last, last, eps, o, normed, stream_, n16);
          label(n16 != nullptr ? "add+rms_norm(+bf16)" : "add+rms_norm");
        } else {
          add_layer_norm(f(0), f(1), c(1), c(2), numel / last, last, eps, o, normed, stream_, n16);
          label(n16 != nullptr ? "add+layer_norm(+bf16)" : "add+layer_norm");
        }
        done_[static_cast<size_t>(plan.norm)] = 1;
      } else {
        binary(Binary::kAdd, f(0), f(1), numel, o, stream_);
      }
      break;
    case OpKind::kMul:
      if (plan.act >= 0) {
        const auto& a = nodes[static_cast<size_t>(plan.act)];
        const int gated = graph_.value(n.inputs[0]).producer == plan.act ? 1 : 0;  // the input that is not act's output
        uint16_t* o16 = ensure_bf16(index, vals);
        unary_mul(unary_of(a.op), static_cast<const float*>(vals[static_cast<size_t>(a.inputs[0])].data),
                  f(static_cast<size_t>(gated)), numel, fp32_unless_bf16_only(index, vals, o16), stream_, o16);
        label(std::string(graph::op_name(a.op)) + "*mul" + (o16 != nullptr ? "(+bf16)" : ""));
      } else {
        binary(Binary::kMul, f(0), f(1), numel, o, stream_);
      }
      break;
    case OpKind::kGeluErf:
    case OpKind::kGeluTanh:
    case OpKind::kSilu:
    case OpKind::kRelu: {
      uint16_t* o16 = ensure_bf16(index, vals);
      unary(unary_of(n.op), f(0), numel, fp32_unless_bf16_only(index, vals, o16), stream_, o16);
      if (o16 != nullptr) label(std::string(graph::op_name(n.op)) + "(+bf16)");
      break;
    }
    case OpKind::kLayerNorm: {
      uint16_t* o16 = ensure_bf16(index, vals);
      layer_norm(f(0), f(1), f(2), numel / last, last, static_cast<float>(n.attr_double("eps")),
                 fp32_unless_bf16_only(index, vals, o16), stream_, o16);
      break;
    }
    case OpKind::kRmsNorm: {
      uint16_t* o16 = ensure_bf16(index, vals);
      rms_norm(f(0), f(1), numel / last, last, static_cast<float>(n.attr_double("eps")),
               fp32_unless_bf16_only(index, vals, o16), stream_, o16);
      break;
    }
    case OpKind::kLinear: {
      const Shape& xs = val(0).shape;
      const int64_t n_in = xs.back(), rows = shape_numel(xs) / n_in, n_out = val(1).shape[0];
      const float* bias = n.inputs.size() > 2 ? f(2) : nullptr;
      auto w16 = w_bf16_.find(n.inputs[1]);
      if (w16 != w_bf16_.end() && rows <= kMaxGluRows && fusion_ && plan.glu_mul >= 0) {
        // Decode-shaped gated MLP: both GEMVs and act(gate) * up in one launch.
        const size_t peer = static_cast<size_t>(plan.gemv_peers.at(0));
        const size_t mul = static_cast<size_t>(plan.glu_mul);
        const GemvOut gate = gemv_weight(plan.glu_gate_is_peer ? peer : index, vals);
        const GemvOut up = gemv_weight(plan.glu_gate_is_peer ? index : peer, vals);
        const auto& act = nodes[static_cast<size_t>(plan_[mul].act)];
        gemv_bf16_glu(f(0), rows, n_in, gate, up, unary_of(act.op), ensure_output(mul, vals), stream_);
        done_[peer] = 1;
        done_[mul] = 1;
        label(fmt::format("gemv n={} {}*mul", gate.n, graph::op_name(act.op)));
      } else if (w16 != w_bf16_.end() && rows <= kMaxGemvRows && fusion_) {
        // Decode-shaped: this linear and its peers on the same input in one GEMV launch.
        std::vector<size_t> members = {index};
        for (int p : plan.gemv_peers) members.push_back(static_cast<size_t>(p));
        std::array<GemvOut, kMaxGemvOuts> outs{};
        std::string what = "gemv";
        for (size_t i = 0; i < members.size(); ++i) {
          GemvOut& g = outs[i];
          g = gemv_weight(members[i], vals);
          what += fmt::format(" n={}", g.n);
          const int act = plan_[members[i]].gemv_act;
          if (act >= 0) {
            g.act = static_cast<int>(unary_of(nodes[static_cast<size_t>(act)].op));
            g.out = ensure_output(static_cast<size_t>(act), vals);
            done_[static_cast<size_t>(act)] = 1;
            what += std::string("+") + graph::op_name(nodes[static_cast<size_t>(act)].op);
          } else {
            g.out = members[i] == index ? o : ensure_output(members[i], vals);
          }
          done_[members[i]] = 1;
        }
        gemv_bf16(f(0), rows, n_in, outs.data(), static_cast<int>(members.size()), stream_);
        label(what);
      } else if (w16 != w_bf16_.end()) {
        // The A operand in bf16: the copy its producer wrote, else a cast here.
        ScratchBuffer cast;
        const void* xb = val(0).owned16.data();
        if (xb == nullptr) {
          ++launches_;  // the cast
          cast = ScratchBuffer(*active_, static_cast<size_t>(rows * n_in) * sizeof(uint16_t));  // [rows, n_in] bf16
          f32_to_bf16(f(0), rows * n_in, cast.as<uint16_t>(), stream_);
          xb = cast.data();
        }
        gemm_->linear(GemmType::kBF16, xb, w16->second.data(), bias, o, rows, n_out, n_in, stream_);
        // The GEMV group's peers (same input) reuse this cast: one cast for q/k/v instead of three.
        for (int p : plan.gemv_peers) {
          const auto& m = nodes[static_cast<size_t>(p)];
          const float* pb = m.inputs.size() > 2 ? static_cast<const float*>(vals[static_cast<size_t>(m.inputs[2])].data) : nullptr;
          gemm_->linear(GemmType::kBF16, xb, w_bf16_.at(m.inputs[1]).data(), pb,
                        ensure_output(static_cast<size_t>(p), vals), rows, graph_.value(m.inputs[1]).constant.shape()[0],
                        n_in, stream_);
          done_[static_cast<size_t>(p)] = 1;
          ++launches_;
        }
        const char* what = cast.data() != nullptr ? "cast+linear" : "linear";
        if (!plan.gemv_peers.empty()) label(fmt::format("{} x{}", what, plan.gemv_peers.size() + 1));
      } else {
        gemm_->linear(GemmType::kF32, f(0), f(1), bias, o, rows, n_out, n_in, stream_);
      }
      break;
    }
    case OpKind::kRope:
      if (plan.rope_kv >= 0) {
        // q and k rotated, rotated k and v written to the pools: one launch.
        const size_t j = static_cast<size_t>(plan.rope_peer);
        const size_t qn = plan.rope_q_is_peer ? j : index, kn = plan.rope_q_is_peer ? index : j;
        const auto& a = nodes[static_cast<size_t>(plan.rope_kv)];
        const PagedAttention p = attention_args(static_cast<size_t>(plan.rope_kv), meta);
        auto in0 = [&](size_t node) { return static_cast<const float*>(vals[static_cast<size_t>(nodes[node].inputs[0])].data); };
        rope_pair_kv_write(in0(qn), nodes[qn].attr_int("n_heads"), ensure_output(qn, vals), in0(kn), nullptr,
                           static_cast<const float*>(vals[static_cast<size_t>(a.inputs[2])].data), p, i64(1),
                           inv_freq_.at(index).as<float>(), stream_);
        done_[j] = 1;
        label("rope pair+kv write");
      } else if (plan.rope_peer >= 0) {
        const size_t j = static_cast<size_t>(plan.rope_peer);
        const auto& m = nodes[j];
        float* o2 = ensure_output(j, vals);
        rope_pair(f(0), n.attr_int("n_heads"), o, static_cast<const float*>(vals[static_cast<size_t>(m.inputs[0])].data),
                  m.attr_int("n_heads"), o2, i64(1), shape_numel(val(1).shape), n.attr_int("head_dim"),
                  inv_freq_.at(index).as<float>(), stream_);
        done_[j] = 1;
        label("rope pair");
      } else {
        rope(f(0), i64(1), shape_numel(val(1).shape), n.attr_int("n_heads"), n.attr_int("head_dim"),
             inv_freq_.at(index).as<float>(), o, stream_);
      }
      break;
    case OpKind::kAttention: {
      const PagedAttention p = attention_args(index, meta);
      if (!plan.kv_by_rope) {
        paged_kv_write(p, f(1), f(2), stream_);
        ++launches_;
      } else {
        label("attention (kv written)");
      }
      paged_attention(p, f(0), o, stream_);
      break;
    }
    case OpKind::kGatherRows:
      gather_rows(f(0), i64(1), val(0).shape[0], val(0).shape[1], val(1).shape[1], val(0).shape[2], o, stream_);
      break;
    default:
      KPT_CHECK(false, "node kind not accepted by supports()");
  }
}

}  // namespace

int64_t last_run_launches() { return g_last_run_launches.load(); }

void set_cuda_graphs(Executable& exec, bool enabled) {
  auto* e = dynamic_cast<CudaExecutable*>(&exec);
  KPT_CHECK(e != nullptr, "set_cuda_graphs: not a CUDA executable");
  e->set_graphs_enabled(enabled);
}

int64_t activation_allocations(const Executable& exec) {
  const auto* e = dynamic_cast<const CudaExecutable*>(&exec);
  KPT_CHECK(e != nullptr, "activation_allocations: not a CUDA executable");
  return e->n_device_allocations();
}

std::unique_ptr<Executable> compile(const graph::Graph& graph, const KvLayout& kv, int ordinal, Level level) {
  // The constructor names a missing or out-of-range device (kUnsupported) before anything asks
  // that device for its properties.
  return std::make_unique<CudaExecutable>(graph, kv, ordinal, level);
}

}  // namespace kpt::cuda
