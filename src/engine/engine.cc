#include "ionn/engine.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "kernel.h"

namespace ionn {

struct Engine::Impl {
  dnnl::engine cpu{dnnl::engine::kind::cpu, 0};
  std::unordered_map<std::string, int> layer_by_name;
};

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
    e->impl_->layer_by_name[l.name] = static_cast<int>(k);
  }
  return e;
}

void Engine::RunLayer(int k, const std::vector<const Tensor*>& in, Tensor* out) const {
  dnnl::stream s(impl_->cpu);
  kernels_[k]->Run(in, out, s);
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
  std::unordered_map<std::string, Tensor> produced;
  dnnl::stream stream(impl_->cpu);
  for (int k : order) {
    const Layer& l = graph_.layers[k];
    std::vector<const Tensor*> in;
    for (const auto& name : l.inputs) {
      auto p = produced.find(name);
      if (p != produced.end()) {
        in.push_back(&p->second);
        continue;
      }
      auto g = inputs.find(name);
      if (g == inputs.end()) {
        return Status::Invalid("layer '" + l.name + "' reads tensor '" + name +
                               "', which is neither given nor produced by the layers run");
      }
      in.push_back(&g->second);
    }
    Tensor out{l.output_shape, std::vector<float>(ElementCount(l.output_shape))};
    kernels_[k]->Run(in, &out, stream);
    produced[l.name] = std::move(out);
  }
  TensorMap result;
  for (const auto& name : wanted) {
    auto p = produced.find(name);
    if (p != produced.end()) {
      result[name] = p->second;
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
