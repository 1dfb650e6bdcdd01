#include "ionn/engine.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "kernel.h"

namespace ionn {

struct Engine::Impl {
  dnnl::engine cpu{dnnl::engine::kind::cpu, 0};
  std::unordered_map<std::string, int> layer_by_name;
  // A convolution and the batch norms, scales and ReLU that follow it alone,
  // run as one kernel when a Run covers all of them.
  struct Fusion {
    std::vector<int> members;  // the convolution first
    std::unique_ptr<Kernel> kernel;
  };
  std::vector<Fusion> fusions;
  std::vector<int> fusion_at;  // layer position -> fusion whose head it is, or -1

  // Output buffers of one Run, one per layer, kept for the next Run so that
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
  void Release(std::unique_ptr<Workspace> ws) {
    std::lock_guard<std::mutex> lock(pool_mu);
    pool.push_back(std::move(ws));
  }
};

float* ThreadScratch(int slot, size_t bytes) {
  struct Buffers {
    std::array<std::pair<void*, size_t>, 4> slots{};
    ~Buffers() {
      for (auto& s : slots) std::free(s.first);
    }
  };
  thread_local Buffers buffers;
  auto& [data, capacity] = buffers.slots[slot];
  if (!data || capacity < bytes) {
    std::free(data);
    capacity = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    data = std::aligned_alloc(64, capacity);
  }
  return static_cast<float*>(data);
}

namespace {

// The layers after convolution `k` that can fold into it: a chain of batch
// norm, scale and ReLU/Clip, each the only reader of the previous output.
std::vector<int> FusibleFollowers(const Graph& g, int k, const std::vector<std::vector<int>>& readers) {
  std::vector<int> chain;
  int cur = k;
  int stage = 0;  // 0: after conv, 1: after batch norm, 2: after scale
  while (true) {
    const auto& r = readers[cur];
    if (r.size() != 1 || std::count(g.outputs.begin(), g.outputs.end(), g.layers[cur].name)) break;
    const Layer& next = g.layers[r[0]];
    if (next.inputs.size() != 1) break;
    int next_stage;
    if (next.kind == LayerKind::kBatchNorm && stage < 1) {
      next_stage = 1;
    } else if (next.kind == LayerKind::kScale && stage < 2) {
      next_stage = 2;
    } else if (next.kind == LayerKind::kRelu || next.kind == LayerKind::kClip) {
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

}  // namespace

Engine::~Engine() = default;

dnnl::memory::desc PlainDesc(const Shape& shape) {
  using tag = dnnl::memory::format_tag;
  const tag t = shape.size() == 4 ? tag::nchw : shape.size() == 2 ? tag::nc : shape.size() == 3 ? tag::abc : tag::a;
  return dnnl::memory::desc(shape, dnnl::memory::data_type::f32, t);
}

Result<std::unique_ptr<Engine>> Engine::Create(const Graph& graph, const EngineOptions& options) {
  if (options.threads < 1) return Status::Invalid("threads must be >= 1");
  std::unique_ptr<Engine> e(new Engine());
  e->impl_ = std::make_unique<Impl>();
  e->options_ = options;
  e->graph_ = graph;
  KernelContext ctx{e->impl_->cpu};
  omp_set_num_threads(options.threads);
  const int n = static_cast<int>(e->graph_.layers.size());
  std::vector<std::vector<int>> readers(n);
  for (int k = 0; k < n; ++k) {
    e->impl_->layer_by_name[e->graph_.layers[k].name] = k;
  }
  for (int k = 0; k < n; ++k) {
    for (const auto& in : e->graph_.layers[k].inputs) {
      auto it = e->impl_->layer_by_name.find(in);
      if (it != e->impl_->layer_by_name.end()) readers[it->second].push_back(k);
    }
  }
  e->impl_->fusion_at.assign(n, -1);
  for (int k = 0; k < n && options.fuse; ++k) {
    const Layer& l = e->graph_.layers[k];
    if (l.kind != LayerKind::kConv) continue;
    const std::vector<int> followers = FusibleFollowers(e->graph_, k, readers);
    if (followers.empty()) continue;
    bool has_data = l.weights[0].data.size() == static_cast<size_t>(ElementCount(l.weights[0].shape));
    std::vector<const Layer*> f;
    for (int m : followers) {
      f.push_back(&e->graph_.layers[m]);
      for (const auto& w : e->graph_.layers[m].weights) has_data = has_data && !w.data.empty();
    }
    if (!has_data) continue;  // reported below, layer by layer
    Impl::Fusion fusion;
    fusion.members.push_back(k);
    fusion.members.insert(fusion.members.end(), followers.begin(), followers.end());
    try {
      fusion.kernel = MakeFusedConvKernel(l, f, *e->graph_.TensorShape(l.inputs[0]), ctx);
    } catch (const dnnl::error&) {
      continue;  // run unfused
    }
    e->impl_->fusion_at[k] = static_cast<int>(e->impl_->fusions.size());
    e->impl_->fusions.push_back(std::move(fusion));
  }
  for (size_t k = 0; k < e->graph_.layers.size(); ++k) {
    Layer& l = e->graph_.layers[k];
    for (const auto& w : l.weights) {
      if (static_cast<int64_t>(w.data.size()) != ElementCount(w.shape)) {
        return Status::Invalid("layer '" + l.name + "': weight '" + w.name + "' holds no data (a shapes-only graph)");
      }
    }
    std::vector<Shape> in;
    for (const auto& name : l.inputs) in.push_back(*e->graph_.TensorShape(name));
    std::unique_ptr<Kernel> kernel;
    try {
      switch (l.kind) {
        case LayerKind::kConv: kernel = MakeConvKernel(l, in, ctx); break;
        case LayerKind::kFc: kernel = MakeFullyConnectedKernel(l, in, ctx); break;
        case LayerKind::kLrn: kernel = MakeLrnKernel(l, in, ctx); break;
        case LayerKind::kMaxPool:
        case LayerKind::kAvgPool:
        case LayerKind::kGlobalAvgPool: kernel = MakePoolingKernel(l, in, ctx); break;
        case LayerKind::kRelu:
        case LayerKind::kClip: kernel = MakeActivationKernel(l, in, ctx); break;
        case LayerKind::kBatchNorm:
        case LayerKind::kScale: kernel = MakeBatchNormKernel(l, in, ctx); break;
        case LayerKind::kConcat: kernel = MakeConcatKernel(l, in, ctx); break;
        case LayerKind::kAdd: kernel = MakeAddKernel(l, in, ctx); break;
        case LayerKind::kSoftmax: kernel = MakeSoftmaxKernel(l, in, ctx); break;
        case LayerKind::kFlatten:
        case LayerKind::kReshape:
        case LayerKind::kDropout: kernel = MakeCopyKernel(l, in, ctx); break;
      }
    } catch (const dnnl::error& err) {
      return Status::Unsupported("layer '" + l.name + "': oneDNN cannot run it: " + err.what());
    }
    e->kernels_.push_back(std::move(kernel));
  }
  return e;
}

Result<TensorMap> Engine::Run(const std::vector<int>& layers, const TensorMap& inputs,
                              const std::vector<std::string>& wanted) const {
  std::vector<int> order = layers;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  const int n = static_cast<int>(graph_.layers.size());
  for (int k : order) {
    if (k < 0 || k >= n) return Status::Invalid("layer index " + std::to_string(k) + " out of range");
  }
  for (const auto& [name, t] : inputs) {
    const Shape* s = graph_.TensorShape(name);
    if (!s) return Status::Invalid("input tensor '" + name + "' is not a tensor of the model");
    if (t.shape != *s || static_cast<int64_t>(t.data.size()) != ElementCount(*s)) {
      return Status::Invalid("input tensor '" + name + "' has shape " + ShapeToString(t.shape) + ", expected " +
                             ShapeToString(*s));
    }
  }
  omp_set_num_threads(options_.threads);
  // Plan: which kernel runs for which layers (fusions when a Run covers all
  // their layers and wants none of their intermediate tensors).
  struct Step {
    const Kernel* kernel;
    int first, last;  // the layer whose inputs it reads, the layer whose output it writes
    bool native_in = false, native_out = false;
  };
  std::vector<Step> steps;
  std::vector<uint8_t> requested(n, 0), done(n, 0);
  for (int k : order) requested[k] = 1;
  auto is_wanted = [&](const std::string& name) { return std::find(wanted.begin(), wanted.end(), name) != wanted.end(); };
  for (int k : order) {
    if (done[k]) continue;
    Step step{kernels_[k].get(), k, k};
    if (impl_->fusion_at[k] >= 0) {
      const Impl::Fusion& f = impl_->fusions[impl_->fusion_at[k]];
      bool whole = true;
      for (size_t i = 0; i < f.members.size(); ++i) {
        whole = whole && requested[f.members[i]] && (i + 1 == f.members.size() || !is_wanted(graph_.layers[f.members[i]].name));
      }
      if (whole) {
        step = Step{f.kernel.get(), k, f.members.back()};
        for (int m : f.members) done[m] = 1;
      }
    }
    steps.push_back(step);
  }
  // A tensor stays in a convolution's blocked layout when every reader in
  // this Run takes that layout: convolutions that compute in it, and
  // element-wise kernels whose inputs all share it. Start from every
  // candidate and drop those a reader cannot take, until none changes.
  std::unordered_map<std::string, std::vector<size_t>> readers;
  for (size_t i = 0; i < steps.size(); ++i) {
    for (const auto& name : graph_.layers[steps[i].first].inputs) readers[name].push_back(i);
  }
  std::unordered_map<std::string, const dnnl::memory::desc*> native;
  auto shared_layout = [&](const Step& st) -> const dnnl::memory::desc* {
    const dnnl::memory::desc* d = nullptr;
    for (const auto& name : graph_.layers[st.first].inputs) {
      auto it = native.find(name);
      if (it == native.end() || (d && !(*d == *it->second))) return nullptr;
      d = it->second;
    }
    return d;
  };
  for (const Step& st : steps) {
    const std::string& name = graph_.layers[st.last].name;
    if (!options_.blocked_layouts || is_wanted(name) || !readers.count(name)) continue;
    const dnnl::memory::desc* d = st.kernel->native_dst();
    if (!d && st.kernel->elementwise()) d = shared_layout(st);
    if (d) native[name] = d;
  }
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<std::string> drop;
    for (const Step& st : steps) {
      const std::string& name = graph_.layers[st.last].name;
      auto it = native.find(name);
      if (it == native.end()) continue;
      bool ok = st.kernel->native_dst() || (shared_layout(st) && *shared_layout(st) == *it->second);
      for (size_t i : readers[name]) {
        const Step& r = steps[i];
        if (const dnnl::memory::desc* src = r.kernel->native_src()) {
          ok = ok && *src == *it->second && graph_.layers[r.first].inputs.size() == 1;
        } else {
          // An element-wise reader writes in its inputs' layout, so its
          // output must stay in this layout too.
          auto out = native.find(graph_.layers[r.last].name);
          ok = ok && r.kernel->elementwise() && shared_layout(r) && *shared_layout(r) == *it->second &&
               out != native.end() && *out->second == *it->second;
        }
      }
      if (!ok) drop.push_back(name);
    }
    for (const auto& name : drop) native.erase(name), changed = true;
  }
  for (Step& st : steps) {
    st.native_out = native.count(graph_.layers[st.last].name) > 0;
    st.native_in = native.count(graph_.layers[st.first].inputs[0]) > 0;
  }

  std::unique_ptr<Impl::Workspace> ws = impl_->Acquire(n);
  struct Return {
    Impl* impl;
    std::unique_ptr<Impl::Workspace>& ws;
    ~Return() { impl->Release(std::move(ws)); }
  } give_back{impl_.get(), ws};
  std::vector<const Tensor*> produced(n, nullptr);
  auto find_produced = [&](const std::string& name) -> const Tensor* {
    auto it = impl_->layer_by_name.find(name);
    return it == impl_->layer_by_name.end() ? nullptr : produced[it->second];
  };
  dnnl::stream stream(impl_->cpu);
  for (const Step& step : steps) {
    const Layer& l = graph_.layers[step.first];
    std::vector<const Tensor*> in;
    for (const auto& name : l.inputs) {
      if (const Tensor* p = find_produced(name)) {
        in.push_back(p);
        continue;
      }
      auto g = inputs.find(name);
      if (g == inputs.end()) {
        return Status::Invalid("layer '" + l.name + "' reads tensor '" + name +
                               "', which is neither given nor produced by the layers run");
      }
      in.push_back(&g->second);
    }
    const Layer& last = graph_.layers[step.last];
    Tensor& out = ws->tensors[step.last];  // capacity kept from earlier Runs
    out.shape = last.output_shape;
    out.data.resize(step.native_out ? native.at(last.name)->get_size() / sizeof(float)
                                    : static_cast<size_t>(ElementCount(last.output_shape)));
    if (step.kernel->elementwise()) {
      step.kernel->Run(in, &out, stream);  // inputs and output share one layout
    } else if (step.native_in || step.native_out) {
      step.kernel->RunNative(in[0]->data.data(), step.native_in, out.data.data(), step.native_out, stream);
    } else {
      step.kernel->Run(in, &out, stream);
    }
    produced[step.last] = &out;
  }
  TensorMap result;
  for (const auto& name : wanted) {
    if (const Tensor* p = find_produced(name)) {
      result[name] = *p;
      continue;
    }
    auto g = inputs.find(name);
    if (g == inputs.end()) return Status::Invalid("wanted tensor '" + name + "' was neither given nor produced");
    result[name] = g->second;
  }
  return result;
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
  omp_set_num_threads(options_.threads);
  dnnl::stream stream(impl_->cpu);
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
      const auto t0 = std::chrono::steady_clock::now();
      kernels_[k]->Run(in, &out, stream);
      const auto t1 = std::chrono::steady_clock::now();
      if (r >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
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
