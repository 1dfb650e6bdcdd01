// `ionn run`: whole-model inference on this machine, with a seeded input or
// raw float32 NCHW bytes from a file; prints the top classes and latency.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "image_input.h"
#include "ionn/engine.h"
#include "ionn/npy.h"

namespace ionn::cli {

Action RegisterRun(CLI::App& app) {
  struct Args {
    ModelOptions model;
    InputOptions input;
    EngineFlags engine;
    OutputOptions out;
    OutputTensorOptions tensors;
    std::string labels;
    int repeats = 10, top = 5;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("run", "Run a whole model here: top classes and latency (median of repeats)");
  args->model.Add(cmd);
  args->input.Add(cmd);
  args->engine.Add(cmd);
  cmd->add_option("--repeats", args->repeats, "Timed runs")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--top", args->top, "Classes to print")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--labels", args->labels, "Class names, one per line (e.g. ImageNet's synset_words.txt)")
      ->type_name("FILE")
      ->check(CLI::Validator(CLI::ExistingFile).description(""));
  args->out.Add(cmd, {"table", "json"});
  args->tensors.Add(cmd, "the model's");
  return args->out.Wrap([args]() {
    auto g = args->model.Load(/*with_weights=*/true);
    if (!g.ok()) return Fail(g.status());
    if (auto files = args->tensors.Get(*g); !files.ok()) return Fail(files.status());
    auto inputs_or = args->input.Get(*g);
    if (!inputs_or.ok()) return Fail(inputs_or.status());
    const TensorMap inputs = std::move(inputs_or).value();
    std::vector<std::string> labels;
    if (!args->labels.empty()) {
      auto l = ReadLabels(args->labels);
      if (!l.ok()) return Fail(l.status());
      labels = std::move(l).value();
      // One label per value of one sample (the output's batch dimension apart).
      const Shape& out = *g->TensorShape(g->outputs[0]);
      const int64_t values = ElementCount(out), per_sample = out.size() >= 2 && out[0] > 0 ? values / out[0] : values;
      if (static_cast<int64_t>(labels.size()) != per_sample && static_cast<int64_t>(labels.size()) != values) {
        return Fail(Status::Invalid("--labels '" + args->labels + "' has " + std::to_string(labels.size()) +
                                    " labels; the model's output '" + g->outputs[0] + "' has " +
                                    std::to_string(per_sample) + " values a sample (one label a line, for each)"));
      }
    }
    auto eo = args->engine.Get();
    if (!eo.ok()) return Fail(eo.status());
    auto engine = Engine::Create(*g, *eo);
    if (!engine.ok()) return Fail(engine.status());
    Result<TensorMap> out = (*engine)->RunAll(inputs);  // warm-up, and the result
    if (!out.ok()) return Fail(out.status());
    std::vector<double> ms;
    for (int r = 0; r < args->repeats; ++r) {
      const double t0 = Clock::System().NowMs();
      Result<TensorMap> again = (*engine)->RunAll(inputs);
      if (!again.ok()) return Fail(again.status());
      ms.push_back(Clock::System().NowMs() - t0);
    }
    std::sort(ms.begin(), ms.end());
    const Tensor& y = out->at(g->outputs[0]);
    if (Status s = args->tensors.Write(*g, *out); !s.ok()) return FailOutput(s);
    std::vector<int> order(y.data.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    const int top = std::min<int>(args->top, static_cast<int>(order.size()));
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int a, int b) { return y.data[a] > y.data[b]; });
    // Which library computed how many of the run's kernels (a fused
    // convolution and what folds into it count once).
    std::vector<int> all(g->layers.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
    auto prepared = (*engine)->Prepare(all, g->outputs);
    if (!prepared.ok()) return Fail(prepared.status());
    nlohmann::json kernels;
    std::string kernel_line;
    for (const char* b : {"onednn", "xnnpack", "ionn"}) {
      kernels[b] = (*prepared)->backend_kernels(b);
      kernel_line +=
          std::string(kernel_line.empty() ? "" : ", ") + std::to_string((*prepared)->backend_kernels(b)) + " " + b;
    }
    if (args->out.format == "json") {
      nlohmann::json doc = {{"format", "ionn-run/1"},
                            {"output", g->outputs[0]},
                            {"shape", y.shape},
                            {"outputs", nlohmann::json::array()},
                            {"threads", args->engine.threads},
                            {"backend", EngineBackendName((*engine)->options().backend)},
                            {"kernels", kernels},
                            {"median_ms", ms[ms.size() / 2]},
                            {"min_ms", ms.front()},
                            {"max_ms", ms.back()}};
      RunSetting setting;
      setting.model = args->model.Name();  // Load succeeded: a model was given
      setting.model_sha256 = args->model.FileSha256();
      AddRunSetting(setting, &doc);
      for (const auto& name : g->outputs) doc["outputs"].push_back({{"name", name}, {"shape", out->at(name).shape}});
      for (int i = 0; i < top; ++i) {
        nlohmann::json entry = {{"index", order[i]}, {"value", y.data[order[i]]}};
        if (!labels.empty()) entry["label"] = labels[order[i] % labels.size()];  // each sample's classes
        doc["top"].push_back(entry);
      }
      std::cout << doc.dump(1) << "\n";
      return 0;
    }
    std::printf("%s: output %s %s, %d thread(s), median %.2f ms (min %.2f, max %.2f, %d runs)\n", g->name.c_str(),
                g->outputs[0].c_str(), ShapeToString(y.shape).c_str(), args->engine.threads, ms[ms.size() / 2],
                ms.front(), ms.back(), args->repeats);
    for (size_t i = 1; i < g->outputs.size(); ++i) {
      std::printf("  output %s %s\n", g->outputs[i].c_str(), ShapeToString(out->at(g->outputs[i]).shape).c_str());
    }
    std::printf("  backend %s: kernels %s\n", EngineBackendName((*engine)->options().backend), kernel_line.c_str());
    for (int i = 0; i < top; ++i) {
      const std::string label = labels.empty() ? "" : "  " + labels[order[i] % labels.size()];
      std::printf("  #%d  index %6d  %.6g%s\n", i + 1, order[i], y.data[order[i]],
                  label.c_str());  // 1e-09, not 0.000000
    }
    return 0;
  });
}

}  // namespace ionn::cli
