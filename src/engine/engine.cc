#include "ionn/engine.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "kernel.h"
#include "xnnpack/xnnpack.h"

namespace ionn {

namespace {

// One oneDNN CPU engine for the process, so that kernels made by one Engine
// may run on another's streams (a server's layer store shares them).
const dnnl::engine& CpuEngine() {
  static const dnnl::engine cpu(dnnl::engine::kind::cpu, 0);
  return cpu;
}

}  // namespace

struct Engine::Impl {
  dnnl::engine cpu = CpuEngine();
  std::unordered_map<std::string, int> layer_by_name;
  std::vector<std::vector<int>> readers;  // layer position -> the layers reading its output

  mutable std::mutex mu;  // guards kernels, fusions' kernels and held weights
  std::vector<std::shared_ptr<const Kernel>> kernels;  // per layer; null until built
  std::vector<uint8_t> provisional;                    // per layer: built from approximate weights
  int built = 0;
  // Layers run as one kernel when a Run covers all of them (a convolution
  // and what folds into it, and the fusions EngineOptions::fuse lists).
  // Found from the architecture; its kernel is made once every member is built.
  struct Fusion {
    std::vector<int> members;  // in graph order: the first reads the input, the last writes the output
    std::shared_ptr<const Kernel> kernel;
    bool failed = false;   // oneDNN cannot fuse it: run the members one by one
    bool adopted = false;  // a member came from another engine: its fused kernel can only be adopted too
  };
  std::vector<Fusion> fusions;
  std::vector<int> fusion_of;  // layer position -> its fusion, or -1
  // Weights of built members of a fusion whose kernel is not made yet.
  std::unordered_map<int, std::vector<Weight>> held_for_fusion;

  // Output buffers of one Execute, one per layer, kept for the next so that
  // queries after the first allocate (and page-fault) nothing.
  struct Workspace {
    std::vector<Tensor> tensors;
  };
  std::mutex pool_mu;
  std::vector<std::unique_ptr<Workspace>> pool;

  std::unique_ptr<Workspace> Acquire(size_t layers) {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        auto ws = std::move(pool.back());
        pool.pop_back();
        return ws;
      }
    }
    auto ws = std::make_unique<Workspace>();
    ws->tensors.resize(layers);
    return ws;
  }
  void Release(std::unique_ptr<Workspace> ws) noexcept {
    std::lock_guard<std::mutex> lock(pool_mu);
    try {
      pool.push_back(std::move(ws));
    } catch (...) {
      // Out of memory: drop the buffers instead of keeping them.
    }
  }
};

bool IsReference(const dnnl::primitive_desc_base& pd) {
  const std::string impl = pd.impl_info_str();
  return impl.rfind("ref", 0) == 0 || impl.rfind("simple", 0) == 0 || impl.find(":ref") != std::string::npos;
}

float* ThreadScratch(int slot, size_t bytes) {
  struct Buffers {
    std::array<std::pair<void*, size_t>, 4> slots{};
    ~Buffers() {
      for (auto& s : slots) std::free(s.first);
    }
  };
  thread_local Buffers buffers;
  auto& [data, capacity] = buffers.slots[slot];
  if (!data || capacity < bytes + kReadSlackBytes) {
    std::free(data);
    capacity = (bytes + kReadSlackBytes + 63) / 64 * 64;
    data = std::aligned_alloc(64, capacity);
    if (!data) {
      capacity = 0;
      throw std::bad_alloc();  // Execute turns it into a Status
    }
  }
  return static_cast<float*>(data);
}

namespace {

bool IsOutput(const Graph& g, int k) { return std::count(g.outputs.begin(), g.outputs.end(), g.layers[k].name) > 0; }

// x * act(x), as exporters write SiLU (Sigmoid) and hard swish at opsets
// before 14 (HardSigmoid with alpha 1/6, beta 1/2): `cur`'s readers are the
// activation and the Mul, and the activation's only reader is that Mul.
// Returns {activation, mul}, or nothing.
std::vector<int> GatedActivation(const Graph& g, int cur, const std::vector<std::vector<int>>& readers) {
  const auto& r = readers[cur];
  if (r.size() != 2) return {};
  for (int i = 0; i < 2; ++i) {
    const int act = r[i], mul = r[1 - i];
    const Layer& a = g.layers[act];
    const Layer& m = g.layers[mul];
    const bool hard = a.kind == LayerKind::kHardSigmoid && std::fabs(a.alpha - 1.0f / 6) < 1e-6f && a.beta == 0.5f;
    if ((a.kind != LayerKind::kSigmoid && !hard) || a.inputs.size() != 1 || IsOutput(g, act)) continue;
    if (readers[act].size() != 1 || readers[act][0] != mul) continue;
    const std::string& x = g.layers[cur].name;
    if (m.kind != LayerKind::kMul || !m.weights.empty() || m.inputs.size() != 2) continue;
    if (!((m.inputs[0] == x && m.inputs[1] == a.name) || (m.inputs[1] == x && m.inputs[0] == a.name))) continue;
    return {act, mul};
  }
  return {};
}

// The layers after convolution `k` that can fold into it: a chain of batch
// norm, scale and an activation (ReLU, Clip, Sigmoid, HardSwish; or SiLU or
// hard swish as x * act(x)), each the only reader of the previous output.
std::vector<int> FusibleFollowers(const Graph& g, int k, const std::vector<std::vector<int>>& readers) {
  std::vector<int> chain;
  int cur = k;
  int stage = 0;  // 0: after conv, 1: after batch norm, 2: after scale
  while (true) {
    if (!IsOutput(g, cur)) {
      const std::vector<int> gated = GatedActivation(g, cur, readers);
      if (!gated.empty()) {
        chain.insert(chain.end(), gated.begin(), gated.end());
        break;
      }
    }
    const auto& r = readers[cur];
    if (r.size() != 1 || std::count(g.outputs.begin(), g.outputs.end(), g.layers[cur].name)) break;
    const Layer& next = g.layers[r[0]];
    if (next.inputs.size() != 1) break;
    int next_stage;
    if (next.kind == LayerKind::kBatchNorm && stage < 1) {
      next_stage = 1;
    } else if (next.kind == LayerKind::kScale && stage < 2) {
      next_stage = 2;
    } else if (next.kind == LayerKind::kRelu || next.kind == LayerKind::kClip || next.kind == LayerKind::kSigmoid ||
               next.kind == LayerKind::kHardSwish) {
      next_stage = 3;
    } else {
      break;
    }
    chain.push_back(r[0]);
    cur = r[0];
    stage = next_stage;
    if (stage == 3) break;
  }
  return chain;
}

// ShuffleNet's channel shuffle as exporters write it: Reshape [N, C, H, W]
// to [N, g, C/g, H, W], Transpose (0, 2, 1, 3, 4), Reshape back to
// [N, C, H, W], each the only reader of the one before. Returns the three
// layers, or nothing.
std::vector<int> ChannelShuffle(const Graph& g, int k, const std::vector<std::vector<int>>& readers) {
  const Layer& split = g.layers[k];
  if (split.kind != LayerKind::kReshape || IsOutput(g, k) || readers[k].size() != 1) return {};
  const Shape* x = g.TensorShape(split.inputs[0]);
  const Shape& s = split.output_shape;
  if (!x || x->size() != 4 || s.size() != 5 || s[0] != (*x)[0] || s[1] * s[2] != (*x)[1] || s[3] != (*x)[2] ||
      s[4] != (*x)[3]) {
    return {};
  }
  const int t = readers[k][0];
  const Layer& transpose = g.layers[t];
  if (transpose.kind != LayerKind::kTranspose || IsOutput(g, t) || readers[t].size() != 1 ||
      transpose.perm != Shape{0, 2, 1, 3, 4}) {
    return {};
  }
  const int merge = readers[t][0];
  if (g.layers[merge].kind != LayerKind::kReshape || g.layers[merge].output_shape != *x) return {};
  return {k, t, merge};
}

// A batch norm (or scale) that no convolution absorbs, and the ReLU that is
// its only reader (DenseNet's pre-activation): {norm, relu}, or nothing.
std::vector<int> BatchNormRelu(const Graph& g, int k, const std::vector<std::vector<int>>& readers) {
  const Layer& norm = g.layers[k];
  if ((norm.kind != LayerKind::kBatchNorm && norm.kind != LayerKind::kScale) || IsOutput(g, k) ||
      readers[k].size() != 1) {
    return {};
  }
  const int relu = readers[k][0];
  if (g.layers[relu].kind != LayerKind::kRelu || g.layers[relu].inputs.size() != 1) return {};
  return {k, relu};
}

// A zero Pad whose only reader is an average pool without padding of its
// own (how PyTorch exports count_include_pad): {pad, pool}, run as one pool
// that pads, and counts the padding.
std::vector<int> PaddedAveragePool(const Graph& g, int k, const std::vector<std::vector<int>>& readers) {
  const Layer& pad = g.layers[k];
  if (pad.kind != LayerKind::kPad || pad.pad_value != 0.0f || IsOutput(g, k) || readers[k].size() != 1) return {};
  const int pool = readers[k][0];
  const Layer& p = g.layers[pool];
  if (p.kind != LayerKind::kAvgPool || p.inputs.size() != 1 || p.pad_top != 0 || p.pad_left != 0 ||
      p.pad_bottom != 0 || p.pad_right != 0) {
    return {};
  }
  return {k, pool};
}

}  // namespace

Engine::~Engine() = default;

Shape ChannelsLastShape(const Shape& s) { return {s[0], s[2], s[3], s[1]}; }
int ChannelsLastAxis(int axis) { return axis == 0 ? 0 : axis == 1 ? 3 : axis - 1; }

dnnl::memory::desc PlainDesc(const Shape& shape) {
  using tag = dnnl::memory::format_tag;
  const tag t = shape.size() == 4 ? tag::nchw : shape.size() == 2 ? tag::nc : shape.size() == 3 ? tag::abc : tag::a;
  return dnnl::memory::desc(shape, dnnl::memory::data_type::f32, t);
}

const char* EngineBackendName(EngineBackend backend) {
  switch (backend) {
    case EngineBackend::kAuto: return "auto";
    case EngineBackend::kOneDnn: return "onednn";
    case EngineBackend::kXnnpack: return "xnnpack";
  }
  return "?";
}

Result<EngineBackend> ParseEngineBackend(const std::string& name) {
  for (EngineBackend b : {EngineBackend::kAuto, EngineBackend::kOneDnn, EngineBackend::kXnnpack}) {
    if (name == EngineBackendName(b)) return b;
  }
  return Status::Invalid("unknown backend '" + name + "' (auto, onednn or xnnpack)");
}

bool EngineBackendAvailable(EngineBackend backend) {
  return backend != EngineBackend::kXnnpack || XnnpackAvailable();
}

Status CheckEngineBackend(EngineBackend backend) {
  if (EngineBackendAvailable(backend)) return Status::Ok();
  return Status::Unsupported(
      "backend xnnpack: this build has no XNNPACK, or it does not run on this CPU (install libxnnpack-dev, e.g. "
      "with scripts/setup.sh, and rebuild; or use the backend onednn)");
}

Result<std::unique_ptr<Engine>> Engine::Create(const Graph& graph, const EngineOptions& options) {
  if (options.threads < 1 || options.threads > kMaxEngineThreads) {
    return Status::Invalid("threads must be 1 to " + std::to_string(kMaxEngineThreads) + ", not " +
                           std::to_string(options.threads));
  }
  EngineOptions o = options;
  // IONN_BACKEND picks the backend of every engine left at auto (as
  // ONEDNN_MAX_CPU_ISA caps oneDNN): the test suite runs once with it set.
  if (const char* env = std::getenv("IONN_BACKEND"); env && *env && o.backend == EngineBackend::kAuto) {
    auto b = ParseEngineBackend(env);
    if (!b.ok()) return Status::Invalid("IONN_BACKEND: " + b.status().message());
    o.backend = *b;
  }
  IONN_RETURN_IF_ERROR(CheckEngineBackend(o.backend));
  std::unique_ptr<Engine> e(new Engine());
  e->impl_ = std::make_unique<Impl>();
  Impl& impl = *e->impl_;
  e->options_ = o;
  e->graph_ = graph;
  const int n = static_cast<int>(e->graph_.layers.size());
  impl.readers.resize(n);
  for (int k = 0; k < n; ++k) impl.layer_by_name[e->graph_.layers[k].name] = k;
  for (int k = 0; k < n; ++k) {
    for (const auto& in : e->graph_.layers[k].inputs) {
      auto it = impl.layer_by_name.find(in);
      if (it != impl.layer_by_name.end()) impl.readers[it->second].push_back(k);
    }
  }
  impl.kernels.resize(n);
  impl.provisional.assign(n, 0);
  impl.fusion_of.assign(n, -1);
  for (int k = 0; k < n && options.fuse; ++k) {
    if (e->graph_.layers[k].kind != LayerKind::kConv) continue;
    const std::vector<int> followers = FusibleFollowers(e->graph_, k, impl.readers);
    if (followers.empty()) continue;
    Impl::Fusion fusion;
    fusion.members.push_back(k);
    fusion.members.insert(fusion.members.end(), followers.begin(), followers.end());
    for (int m : fusion.members) impl.fusion_of[m] = static_cast<int>(impl.fusions.size());
    impl.fusions.push_back(std::move(fusion));
  }
  for (int k = 0; k < n && options.fuse; ++k) {
    Impl::Fusion fusion;
    fusion.members = ChannelShuffle(e->graph_, k, impl.readers);
    if (fusion.members.empty()) fusion.members = BatchNormRelu(e->graph_, k, impl.readers);
    if (fusion.members.empty()) fusion.members = PaddedAveragePool(e->graph_, k, impl.readers);
    if (fusion.members.empty() || impl.fusion_of[fusion.members[0]] >= 0 || impl.fusion_of[fusion.members.back()] >= 0) {
      continue;
    }
    for (int m : fusion.members) impl.fusion_of[m] = static_cast<int>(impl.fusions.size());
    impl.fusions.push_back(std::move(fusion));
  }
  // Layers whose weights are all here are built now; a layer with some
  // weight data but not all is malformed.
  for (int k = 0; k < n; ++k) {
    Layer& l = e->graph_.layers[k];
    size_t with_data = 0;
    for (const auto& w : l.weights) {
      if (w.data.empty()) continue;
      if (static_cast<int64_t>(w.data.size()) != ElementCount(w.shape)) {
        return Status::Invalid("layer '" + l.name + "': weight '" + w.name + "' holds " + std::to_string(w.data.size()) +
                               " values, its shape needs " + std::to_string(ElementCount(w.shape)));
      }
      ++with_data;
    }
    if (with_data != 0 && with_data != l.weights.size()) {
      return Status::Invalid("layer '" + l.name + "': some of its weights hold data and some do not");
    }
    Layer full = l;
    for (auto& w : l.weights) std::vector<float>().swap(w.data);  // the architecture keeps shapes only
    if (with_data == l.weights.size()) IONN_RETURN_IF_ERROR(e->BuildLayer(k, std::move(full), false, false));
  }
  return e;
}

Status Engine::CheckWeights(int k, const std::vector<Weight>& weights) const {
  const int n = static_cast<int>(graph_.layers.size());
  if (k < 0 || k >= n) return Status::Invalid("layer index " + std::to_string(k) + " out of range");
  const Layer& decl = graph_.layers[k];
  const std::string where = "layer '" + decl.name + "' (" + LayerKindName(decl.kind) + ", index " + std::to_string(k) + ")";
  if (weights.size() != decl.weights.size()) {
    return Status::Invalid(where + ": " + std::to_string(weights.size()) + " weights given, expected " +
                           std::to_string(decl.weights.size()));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    const Weight& w = weights[i];
    const Weight& d = decl.weights[i];
    if (w.name != d.name) return Status::Invalid(where + ": weight " + std::to_string(i) + " is '" + w.name + "', expected '" + d.name + "'");
    if (w.shape != d.shape) {
      return Status::Invalid(where + ": weight '" + d.name + "' has shape " + ShapeToString(w.shape) + ", expected " +
                             ShapeToString(d.shape));
    }
    if (static_cast<int64_t>(w.data.size()) != ElementCount(d.shape)) {
      return Status::Invalid(where + ": weight '" + d.name + "' holds " + std::to_string(w.data.size()) +
                             " values, its shape needs " + std::to_string(ElementCount(d.shape)));
    }
  }
  return Status::Ok();
}

Status Engine::AddLayer(int k, std::vector<Weight> weights, bool provisional) {
  IONN_RETURN_IF_ERROR(CheckWeights(k, weights));
  Layer full = graph_.layers[k];
  full.weights = std::move(weights);
  return BuildLayer(k, std::move(full), provisional, /*replace=*/false);
}

Status Engine::ReplaceLayer(int k, std::vector<Weight> weights) {
  IONN_RETURN_IF_ERROR(CheckWeights(k, weights));
  Layer full = graph_.layers[k];
  full.weights = std::move(weights);
  return BuildLayer(k, std::move(full), /*provisional=*/false, /*replace=*/true);
}

bool Engine::is_provisional(int layer) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return layer >= 0 && layer < static_cast<int>(impl_->provisional.size()) && impl_->provisional[layer];
}

namespace {

// oneDNN fixes a kernel's thread count when the kernel is made, so every
// kernel is made with the engine's count set (and the caller's restored).
class OmpThreads {
 public:
  explicit OmpThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~OmpThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

Status Engine::BuildLayer(int k, Layer l, bool provisional, bool replace) {
  Impl& impl = *impl_;
  const std::string where = "layer '" + l.name + "'";
  KernelContext ctx{impl.cpu, options_.winograd, options_.threads, options_.backend};
  const int f = impl.fusion_of[k];
  std::vector<Layer> members;  // filled when this layer completes its fusion
  try {
    std::vector<Shape> in;
    for (const auto& name : l.inputs) in.push_back(*graph_.TensorShape(name));
    std::vector<Weight> keep;
    if (f >= 0) keep = l.weights;  // the fused kernel needs them once every member is here
    const auto refused = [&]() -> std::string {  // under impl.mu
      if (!replace) return impl.kernels[k] ? where + " is already built" : "";
      return impl.kernels[k] && impl.provisional[k] ? "" : where + " is not built provisionally: nothing to replace";
    };
    {
      std::lock_guard<std::mutex> lock(impl.mu);
      if (const std::string why = refused(); !why.empty()) return Status::Invalid(why);
    }
    std::unique_ptr<Kernel> kernel;
    {
      OmpThreads threads(options_.threads);
      switch (l.kind) {
        case LayerKind::kConv: kernel = MakeConvKernel(l, in, ctx); break;
        case LayerKind::kFc: kernel = MakeFullyConnectedKernel(l, in, ctx); break;
        case LayerKind::kLrn: kernel = MakeLrnKernel(l, in, ctx); break;
        case LayerKind::kMaxPool:
        case LayerKind::kAvgPool: kernel = MakePoolingKernel(l, in, ctx); break;
        case LayerKind::kGlobalAvgPool:  // one mean per plane: the spatial ReduceMean's kernel
          kernel = MakeSpatialMeanKernel(in[0]);
          break;
        case LayerKind::kRelu:
        case LayerKind::kClip: kernel = MakeActivationKernel(l, in, ctx); break;
        case LayerKind::kBatchNorm:
        case LayerKind::kScale: kernel = MakeBatchNormKernel(l, in, ctx); break;
        case LayerKind::kConcat: kernel = MakeConcatKernel(l, in, ctx); break;
        case LayerKind::kAdd:  // two tensors of one shape: the layout-free sum ResNets need
          kernel = l.weights.empty() && in[0] == in[1] ? MakeAddKernel(l, in, ctx) : MakeBinaryKernel(l, in, ctx);
          break;
        case LayerKind::kMul:
        case LayerKind::kSub:
        case LayerKind::kDiv: kernel = MakeBinaryKernel(l, in, ctx); break;
        case LayerKind::kSigmoid:
        case LayerKind::kHardSigmoid:
        case LayerKind::kHardSwish: kernel = MakeSigmoidKernel(l, in, ctx); break;
        case LayerKind::kTranspose: kernel = MakeTransposeKernel(l, in, ctx); break;
        case LayerKind::kSlice: kernel = MakeSliceKernel(l, in, ctx); break;
        case LayerKind::kPad: kernel = MakePadKernel(l, in, ctx); break;
        case LayerKind::kSoftmax: kernel = MakeSoftmaxKernel(l, in, ctx); break;
        case LayerKind::kFlatten:
        case LayerKind::kReshape:
        case LayerKind::kDropout: kernel = MakeCopyKernel(l, in, ctx); break;
#define IONN_OP_KERNEL(e, onnx, caffe) \
  case LayerKind::e:                   \
    kernel = e##Kernel.make(l, in, ctx); \
    break;
          IONN_OP_KINDS(IONN_OP_KERNEL)
#undef IONN_OP_KERNEL
      }
    }
    std::lock_guard<std::mutex> lock(impl.mu);
    if (const std::string why = refused(); !why.empty()) return Status::Invalid(why);
    if (f >= 0) impl.held_for_fusion[k] = std::move(keep);
    impl.kernels[k] = std::move(kernel);
    impl.provisional[k] = provisional;
    if (!replace) ++impl.built;
    if (f < 0) return Status::Ok();
    for (int m : impl.fusions[f].members) {
      if (!impl.kernels[m] || impl.provisional[m]) return Status::Ok();  // the rest has not arrived (exactly) yet
    }
    if (impl.fusions[f].adopted) {  // some members' weights are not here to fuse
      for (int m : impl.fusions[f].members) impl.held_for_fusion.erase(m);
      return Status::Ok();
    }
    // This layer completes the fusion: take the members' weights and make
    // the fused kernel outside the lock.
    for (int m : impl.fusions[f].members) {
      members.push_back(graph_.layers[m]);
      members.back().weights = std::move(impl.held_for_fusion[m]);
      impl.held_for_fusion.erase(m);
    }
  } catch (const dnnl::error& err) {
    return Status::Unsupported(where + ": oneDNN cannot run it: " + err.what());
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted(where + ": out of memory while building it");
  } catch (const std::exception& err) {
    return Status::Internal(where + ": " + err.what());
  }
  std::unique_ptr<Kernel> fused;
  try {
    std::vector<const Layer*> followers;
    for (size_t i = 1; i < members.size(); ++i) followers.push_back(&members[i]);
    OmpThreads threads(options_.threads);
    const Shape& in = *graph_.TensorShape(members[0].inputs[0]);
    switch (members[0].kind) {
      case LayerKind::kReshape: fused = MakeChannelShuffleKernel(in, members[0].output_shape[1], ctx); break;
      case LayerKind::kBatchNorm:
      case LayerKind::kScale: fused = MakeBatchNormReluKernel(members[0], in, ctx); break;
      case LayerKind::kPad: {
        Layer pool = members[1];
        pool.pad_top = members[0].pad_top, pool.pad_left = members[0].pad_left;
        pool.pad_bottom = members[0].pad_bottom, pool.pad_right = members[0].pad_right;
        pool.count_include_pad = true;
        fused = MakePoolingKernel(pool, {in}, ctx);
        break;
      }
      default: fused = MakeFusedConvKernel(members[0], followers, in, ctx); break;
    }
  } catch (const std::exception&) {
    fused.reset();  // run the members one by one
  }
  std::lock_guard<std::mutex> lock(impl.mu);
  if (impl.fusions[f].kernel) return Status::Ok();  // adopted meanwhile: prepared runs may point at it
  impl.fusions[f].kernel = std::move(fused);
  impl.fusions[f].failed = impl.fusions[f].kernel == nullptr;
  return Status::Ok();
}

Engine::SharedKernel Engine::LayerKernel(int layer) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (layer < 0 || layer >= static_cast<int>(impl_->kernels.size())) return nullptr;
  return impl_->kernels[layer];
}

Status Engine::AdoptLayer(int layer, SharedKernel kernel) {
  Impl& impl = *impl_;
  if (layer < 0 || layer >= static_cast<int>(impl.kernels.size())) {
    return Status::Invalid("layer index " + std::to_string(layer) + " out of range");
  }
  if (!kernel) return Status::Invalid("layer '" + graph_.layers[layer].name + "': no kernel to adopt");
  std::lock_guard<std::mutex> lock(impl.mu);
  if (impl.kernels[layer]) return Status::Invalid("layer '" + graph_.layers[layer].name + "' is already built");
  impl.kernels[layer] = std::move(kernel);
  ++impl.built;
  const int f = impl.fusion_of[layer];
  if (f < 0) return Status::Ok();
  impl.fusions[f].adopted = true;
  for (int m : impl.fusions[f].members) {
    if (!impl.kernels[m]) return Status::Ok();
  }
  for (int m : impl.fusions[f].members) impl.held_for_fusion.erase(m);  // no fusing here: the weights are not needed
  return Status::Ok();
}

std::vector<std::vector<int>> Engine::FusionGroups() const {
  std::vector<std::vector<int>> groups;
  for (const auto& f : impl_->fusions) groups.push_back(f.members);
  return groups;
}

uint64_t Engine::KernelExtraBytes(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(graph_.layers.size())) return 0;
  const Layer& l = graph_.layers[layer];
  std::vector<Shape> in;
  for (const auto& name : l.inputs) in.push_back(*graph_.TensorShape(name));
  switch (l.kind) {
#define IONN_OP_EXTRA(e, onnx, caffe) \
  case LayerKind::e:                  \
    return e##Kernel.extra_bytes ? e##Kernel.extra_bytes(l, in) : 0;
    IONN_OP_KINDS(IONN_OP_EXTRA)
#undef IONN_OP_EXTRA
    default: break;
  }
  if (l.kind != LayerKind::kConv) return 0;
  return ConvKernelExtraBytes(l, *graph_.TensorShape(l.inputs[0]),
                              KernelContext{impl_->cpu, options_.winograd, options_.threads, options_.backend});
}

Engine::SharedKernel Engine::FusedKernel(int group) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (group < 0 || group >= static_cast<int>(impl_->fusions.size())) return nullptr;
  return impl_->fusions[group].kernel;
}

Status Engine::AdoptFused(int group, SharedKernel kernel) {
  Impl& impl = *impl_;
  if (group < 0 || group >= static_cast<int>(impl.fusions.size())) {
    return Status::Invalid("fusion group " + std::to_string(group) + " out of range");
  }
  if (!kernel) return Status::Invalid("fusion group " + std::to_string(group) + ": no kernel to adopt");
  std::lock_guard<std::mutex> lock(impl.mu);
  Impl::Fusion& fusion = impl.fusions[group];
  for (int m : fusion.members) {
    if (!impl.kernels[m] || impl.provisional[m]) {
      return Status::Invalid("fusion group " + std::to_string(group) + ": layer '" + graph_.layers[m].name +
                             (impl.kernels[m] ? "' is provisional" : "' is not built yet"));
    }
  }
  if (fusion.kernel) return Status::Ok();  // fused already (same layers, same result)
  fusion.kernel = std::move(kernel);
  fusion.failed = false;
  return Status::Ok();
}

bool Engine::is_built(int layer) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return layer >= 0 && layer < static_cast<int>(impl_->kernels.size()) && impl_->kernels[layer] != nullptr;
}

int Engine::num_built() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->built;
}

Result<std::shared_ptr<const PreparedRun>> Engine::Prepare(const std::vector<int>& layers,
                                                          const std::vector<std::string>& wanted) const {
  auto run = std::make_shared<PreparedRun>();
  std::vector<int>& order = run->layers_;
  order = layers;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  const int n = static_cast<int>(graph_.layers.size());
  for (int k : order) {
    if (k < 0 || k >= n) return Status::Invalid("layer index " + std::to_string(k) + " out of range");
  }
  using Step = PreparedRun::Step;
  std::vector<Step>& steps = run->steps_;
  std::vector<uint8_t> requested(n, 0), done(n, 0);
  for (int k : order) requested[k] = 1;
  auto is_wanted = [&](const std::string& name) { return std::find(wanted.begin(), wanted.end(), name) != wanted.end(); };
  {
    // Which kernel runs which layers: a fusion when the run covers all its
    // layers and wants none of their intermediate tensors.
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (int k : order) {
      if (!impl_->kernels[k]) {
        return Status::Invalid("layer '" + graph_.layers[k].name + "' is not built yet (its weights have not arrived)");
      }
    }
    for (int k : order) {
      if (done[k]) continue;
      Step step;
      step.kernel = impl_->kernels[k];
      step.first = step.last = k;
      const int f = impl_->fusion_of[k];
      if (f >= 0 && impl_->fusions[f].members[0] == k && impl_->fusions[f].kernel) {
        const Impl::Fusion& fusion = impl_->fusions[f];
        bool whole = true;
        for (size_t i = 0; i < fusion.members.size(); ++i) {
          whole = whole && requested[fusion.members[i]] &&
                  (i + 1 == fusion.members.size() || !is_wanted(graph_.layers[fusion.members[i]].name));
        }
        if (whole) {
          step.kernel = fusion.kernel;
          step.last = fusion.members.back();
          for (int m : fusion.members) done[m] = 1;
        }
      }
      steps.push_back(std::move(step));
    }
  }
  // Where every step reads from: a layer of this run, or a given tensor.
  std::vector<uint8_t> produced(n, 0);
  auto given_index = [&](const std::string& name, const std::string& reader) -> Result<int> {
    for (size_t i = 0; i < run->given_.size(); ++i) {
      if (run->given_[i] == name) return static_cast<int>(i);
    }
    const Shape* shape = graph_.TensorShape(name);
    if (!shape) return Status::Invalid("tensor '" + name + "' is not a tensor of the model");
    run->given_.push_back(name);
    run->given_shapes_.push_back(*shape);
    run->given_reader_.push_back(reader);
    return static_cast<int>(run->given_.size()) - 1;
  };
  for (Step& step : steps) {
    for (const auto& name : graph_.layers[step.first].inputs) {
      auto it = impl_->layer_by_name.find(name);
      if (it != impl_->layer_by_name.end() && produced[it->second]) {
        step.reads.push_back(it->second);
        continue;
      }
      IONN_ASSIGN_OR_RETURN(const int g, given_index(name, graph_.layers[step.first].name));
      step.reads.push_back(-1 - g);
    }
    produced[step.last] = 1;
  }
  for (const auto& name : wanted) {
    auto it = impl_->layer_by_name.find(name);
    if (it != impl_->layer_by_name.end() && produced[it->second]) {
      run->wanted_from_.push_back(it->second);
    } else {
      IONN_ASSIGN_OR_RETURN(const int g, given_index(name, ""));
      run->wanted_from_.push_back(-1 - g);
    }
    run->wanted_.push_back(name);
  }

  // A tensor stays in a convolution's blocked layout when every reader in
  // this run takes that layout: convolutions that compute in it, element-wise
  // kernels whose inputs all share it, and, when it is NHWC, kernels that
  // run channels last. Start from every candidate and drop those a reader
  // cannot take, until none changes.
  std::unordered_map<std::string, std::vector<size_t>> readers;
  for (size_t i = 0; i < steps.size(); ++i) {
    for (const auto& name : graph_.layers[steps[i].first].inputs) readers[name].push_back(i);
  }
  std::unordered_map<std::string, const dnnl::memory::desc*> native;
  std::deque<dnnl::memory::desc> nhwc;  // the channels-last layouts of tensors kept in them
  auto shared_layout = [&](const Step& st) -> const dnnl::memory::desc* {
    const dnnl::memory::desc* d = nullptr;
    for (const auto& name : graph_.layers[st.first].inputs) {
      auto it = native.find(name);
      if (it == native.end() || (d && !(*d == *it->second))) return nullptr;
      d = it->second;
    }
    return d;
  };
  auto is_nhwc = [](const dnnl::memory::desc& d, const Shape& s) {
    return s.size() == 4 && d == dnnl::memory::desc(s, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc);
  };
  // NHWC bytes = NCHW bytes: one channel or one pixel, after numpy's
  // alignment to rank 4 (a lower-rank operand of broadcasting arithmetic).
  auto layout_free = [](const Shape& s) {
    if (s.size() > 4) return false;
    Shape a(4 - s.size(), 1);
    a.insert(a.end(), s.begin(), s.end());
    return a[1] == 1 || a[2] * a[3] == 1;
  };
  auto shape_of = [&](const std::string& name) -> const Shape& { return *graph_.TensorShape(name); };
  // Whether a channels-last kernel can read this tensor: kept in NHWC, or
  // plain with the same bytes.
  auto cl_readable = [&](const std::string& name) {
    auto it = native.find(name);
    return it != native.end() ? is_nhwc(*it->second, shape_of(name)) : layout_free(shape_of(name));
  };
  // Whether a step runs channels last: its kernel can, it reads every input
  // so, one of them is kept in NHWC, and its output is kept in NHWC or has
  // the same bytes in both layouts.
  auto runs_cl = [&](const Step& st) {
    if (!st.kernel->channels_last()) return false;
    bool some = false;
    for (const auto& name : graph_.layers[st.first].inputs) {
      if (!cl_readable(name)) return false;
      some = some || native.count(name) > 0;
    }
    const Layer& last = graph_.layers[st.last];
    return some && (layout_free(last.output_shape) || native.count(last.name) > 0);
  };
  for (const Step& st : steps) {
    const Layer& last = graph_.layers[st.last];
    if (!options_.blocked_layouts || is_wanted(last.name) || !readers.count(last.name)) continue;
    const dnnl::memory::desc* d = st.kernel->native_dst();
    if (!d && st.kernel->elementwise()) d = shared_layout(st);
    if (!d && st.kernel->channels_last() && !layout_free(last.output_shape)) {
      bool some = false, all = true;
      for (const auto& name : graph_.layers[st.first].inputs) {
        all = all && cl_readable(name);
        some = some || native.count(name) > 0;
      }
      if (all && some) {
        d = &nhwc.emplace_back(last.output_shape, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc);
      }
    }
    if (d) native[last.name] = d;
  }
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<std::string> drop;
    for (const Step& st : steps) {
      const std::string& name = graph_.layers[st.last].name;
      auto it = native.find(name);
      if (it == native.end()) continue;
      bool ok = st.kernel->native_dst() || (shared_layout(st) && *shared_layout(st) == *it->second) || runs_cl(st);
      for (size_t i : readers[name]) {
        const Step& r = steps[i];
        if (const dnnl::memory::desc* src = r.kernel->native_src()) {
          ok = ok && *src == *it->second && graph_.layers[r.first].inputs.size() == 1;
        } else if (r.kernel->elementwise()) {
          // An element-wise reader writes in its inputs' layout, so its
          // output must stay in this layout too.
          auto out = native.find(graph_.layers[r.last].name);
          ok = ok && shared_layout(r) && *shared_layout(r) == *it->second && out != native.end() &&
               *out->second == *it->second;
        } else {
          ok = ok && runs_cl(r);
        }
      }
      if (!ok) drop.push_back(name);
    }
    for (const auto& name : drop) native.erase(name), changed = true;
  }
  for (Step& st : steps) {
    const Layer& last = graph_.layers[st.last];
    st.channels_last = runs_cl(st);
    st.native_out = native.count(last.name) > 0;
    st.native_in = !st.channels_last && native.count(graph_.layers[st.first].inputs[0]) > 0;
    st.out_floats = st.native_out ? native.at(last.name)->get_size() / sizeof(float)
                                  : static_cast<size_t>(ElementCount(last.output_shape));
  }
  return std::shared_ptr<const PreparedRun>(std::move(run));
}

int PreparedRun::backend_kernels(const std::string& backend) const {
  return static_cast<int>(
      std::count_if(steps_.begin(), steps_.end(), [&](const Step& s) { return s.kernel->backend() == backend; }));
}

int PreparedRun::channels_last_kernels() const {
  return static_cast<int>(std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return s.channels_last; }));
}

Result<TensorMap> Engine::Execute(const PreparedRun& run, const TensorMap& inputs) const {
  for (const auto& [name, t] : inputs) {
    const Shape* s = graph_.TensorShape(name);
    if (!s) return Status::Invalid("input tensor '" + name + "' is not a tensor of the model");
    if (t.shape != *s || static_cast<int64_t>(t.data.size()) != ElementCount(*s)) {
      return Status::Invalid("input tensor '" + name + "' has shape " + ShapeToString(t.shape) + ", expected " +
                             ShapeToString(*s));
    }
  }
  std::vector<const Tensor*> given(run.given_.size());
  for (size_t i = 0; i < given.size(); ++i) {
    auto it = inputs.find(run.given_[i]);
    if (it == inputs.end()) {
      const std::string& reader = run.given_reader_[i];
      if (reader.empty()) return Status::Invalid("wanted tensor '" + run.given_[i] + "' was neither given nor produced");
      return Status::Invalid("layer '" + reader + "' reads tensor '" + run.given_[i] +
                             "', which is neither given nor produced by the layers run");
    }
    given[i] = &it->second;
  }
  omp_set_num_threads(options_.threads);
  const int n = static_cast<int>(graph_.layers.size());
  const PreparedRun::Step* current = nullptr;
  try {
    std::unique_ptr<Impl::Workspace> ws = impl_->Acquire(n);
    struct Return {
      Impl* impl;
      std::unique_ptr<Impl::Workspace>& ws;
      ~Return() { impl->Release(std::move(ws)); }
    } give_back{impl_.get(), ws};
    auto tensor = [&](int from) -> const Tensor* { return from >= 0 ? &ws->tensors[from] : given[-1 - from]; };
    dnnl::stream stream(impl_->cpu);
    std::vector<const Tensor*> in;
    for (const auto& step : run.steps_) {
      current = &step;
      in.clear();
      for (int from : step.reads) in.push_back(tensor(from));
      Tensor& out = ws->tensors[step.last];  // capacity kept from earlier runs
      out.shape = graph_.layers[step.last].output_shape;
      out.data.reserve(step.out_floats + kReadSlackBytes / sizeof(float));  // room a kernel may read past the end
      out.data.resize(step.out_floats);
      if (step.channels_last) {
        step.kernel->RunChannelsLast(in, &out, stream);
      } else if (step.kernel->elementwise()) {
        step.kernel->Run(in, &out, stream);  // inputs and output share one layout
      } else if (step.native_in || step.native_out) {
        step.kernel->RunNative(in[0]->data.data(), step.native_in, out.data.data(), step.native_out, stream);
      } else {
        step.kernel->Run(in, &out, stream);
      }
    }
    TensorMap result;
    for (size_t i = 0; i < run.wanted_.size(); ++i) result[run.wanted_[i]] = *tensor(run.wanted_from_[i]);
    return result;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory running layer '" +
                                     graph_.layers[current ? current->first : 0].name + "'");
  } catch (const std::exception& err) {
    return Status::Internal("layer '" + graph_.layers[current ? current->first : 0].name + "': execution failed: " +
                            err.what());
  }
}

Result<TensorMap> Engine::Run(const std::vector<int>& layers, const TensorMap& inputs,
                              const std::vector<std::string>& wanted) const {
  IONN_ASSIGN_OR_RETURN(auto run, Prepare(layers, wanted));
  return Execute(*run, inputs);
}

Result<TensorMap> Engine::RunAll(const TensorMap& inputs) const {
  std::vector<int> all(graph_.layers.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  return Run(all, inputs, graph_.outputs);
}

Result<std::vector<Engine::LayerTiming>> Engine::ProfileLayers(const TensorMap& inputs, int warmup,
                                                                int repeats) const {
  if (repeats < 1 || warmup < 0) return Status::Invalid("repeats must be >= 1 and warmup >= 0");
  std::vector<std::string> every;
  for (const auto& l : graph_.layers) every.push_back(l.name);
  std::vector<int> all(graph_.layers.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  auto tensors = Run(all, inputs, every);
  if (!tensors.ok()) return tensors.status();
  std::vector<const Kernel*> kernels;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& k : impl_->kernels) kernels.push_back(k.get());
  }
  omp_set_num_threads(options_.threads);
  dnnl::stream stream(impl_->cpu);
  Clock& clock = options_.clock ? *options_.clock : Clock::System();
  std::vector<LayerTiming> timings;
  for (size_t k = 0; k < graph_.layers.size(); ++k) {
    const Layer& l = graph_.layers[k];
    std::vector<const Tensor*> in;
    for (const auto& name : l.inputs) {
      auto p = tensors->find(name);
      in.push_back(p != tensors->end() ? &p->second : &inputs.at(name));
    }
    Tensor out{l.output_shape, std::vector<float>(ElementCount(l.output_shape))};
    std::vector<double> ms;
    for (int r = 0; r < warmup + repeats; ++r) {
      const double t0 = clock.NowMs();
      kernels[k]->Run(in, &out, stream);
      const double t1 = clock.NowMs();
      if (r >= warmup) ms.push_back(t1 - t0);
    }
    std::sort(ms.begin(), ms.end());
    timings.push_back({ms[ms.size() / 2], ms.front(), ms.back()});
  }
  return timings;
}

Tensor SeededInput(const Shape& shape, uint64_t seed) {
  Tensor t{shape, std::vector<float>(ElementCount(shape))};
  uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (float& v : t.data) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    v = static_cast<float>(static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0);
  }
  return t;
}

}  // namespace ionn
