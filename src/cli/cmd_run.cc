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
    std::string model, zoo, input, output, format = "table", image, labels;
    int threads = 1, repeats = 10, top = 5;
    ImageOptions image_options;
    InputShapeOptions input_shapes;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("run", "Run a whole model here: top classes and latency (median of repeats)");
  cmd->add_option("model", args->model, "Model file (.onnx)");
  cmd->add_option("--zoo", args->zoo, "A zoo model instead of a file");
  args->input_shapes.Add(cmd);
  CLI::Option* input = cmd->add_option(
      "--input", args->input, "Input: a .npy file (float32), or raw float32 NCHW bytes (default: a seeded random input)");
  cmd->add_option("--image", args->image,
                  "Input: a photo (JPEG, PNG, ...), resized, center-cropped to the model's input and normalized as "
                  "torchvision's ImageNet models expect")
      ->excludes(input)
      ->check(CLI::ExistingFile);
  cmd->add_option("--resize", args->image_options.resize,
                  "--image: the shorter side before the center crop (0: resize straight to the input size)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536));
  cmd->add_option("--mean", args->image_options.mean, "--image: per-channel mean, after scaling to [0,1]")
      ->delimiter(',')
      ->expected(3)
      ->capture_default_str();
  cmd->add_option("--std", args->image_options.std, "--image: per-channel standard deviation")
      ->delimiter(',')
      ->expected(3)
      ->capture_default_str();
  cmd->add_option("--pixel-scale", args->image_options.scale,
                  "--image: pixel values (0-255) times this before mean and std (1 for Caffe models)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--bgr", args->image_options.bgr, "--image: channels in BGR order (Caffe models), not RGB");
  cmd->add_option("--labels", args->labels, "Class names, one per line (e.g. ImageNet's synset_words.txt)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--output", args->output, "Write the first model output here (.npy, float32)")->check(OutputFile());
  cmd->add_option("--threads", args->threads, "Engine threads")->capture_default_str()->check(CLI::Range(1, kMaxEngineThreads));
  cmd->add_option("--repeats", args->repeats, "Timed runs")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--top", args->top, "Classes to print")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--format", args->format, "table or json")->capture_default_str()->check(CLI::IsMember({"table", "json"}));
  return [args]() {
    auto g = LoadCommandModel(args->model, args->zoo, /*with_weights=*/true, args->input_shapes);
    if (!g.ok()) return Fail(g.status());
    if (g->inputs.size() != 1) return Fail(Status::Unsupported("ionn run takes models with one input"));
    Tensor input = SeededInput(g->inputs[0].shape, 1);
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
    if (!args->image.empty()) {
      auto t = LoadImageInput(args->image, input.shape, args->image_options);
      if (!t.ok()) return Fail(t.status());
      input = std::move(t).value();
    }
    const auto ends_with_npy = [](const std::string& p) { return p.size() > 4 && p.compare(p.size() - 4, 4, ".npy") == 0; };
    if (!args->input.empty() && ends_with_npy(args->input)) {
      auto t = ReadNpyFile(args->input);
      if (!t.ok()) return Fail(t.status());
      if (t->shape != input.shape) {
        return Fail(Status::Invalid("'" + args->input + "' has shape " + ShapeToString(t->shape) + ", the model's input '" +
                                    g->inputs[0].name + "' is " + ShapeToString(input.shape)));
      }
      input = std::move(t).value();
    } else if (!args->input.empty()) {
      std::ifstream in(args->input, std::ios::binary);
      if (!in) return Fail(Status::NotFound("cannot open '" + args->input + "'"));
      in.read(reinterpret_cast<char*>(input.data.data()), static_cast<std::streamsize>(input.data.size() * 4));
      if (in.gcount() != static_cast<std::streamsize>(input.data.size() * 4) || in.peek() != EOF) {
        return Fail(Status::Invalid("'" + args->input + "' must hold exactly " + std::to_string(input.data.size()) +
                                    " float32 values (" + ShapeToString(input.shape) + ")"));
      }
    }
    auto engine = Engine::Create(*g, EngineOptions{args->threads});
    if (!engine.ok()) return Fail(engine.status());
    const TensorMap inputs = {{g->inputs[0].name, input}};
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
    if (!args->output.empty()) {
      Status s = WriteNpyFile(args->output, y);
      if (!s.ok()) return FailOutput(s);
    }
    std::vector<int> order(y.data.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    const int top = std::min<int>(args->top, static_cast<int>(order.size()));
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int a, int b) { return y.data[a] > y.data[b]; });
    if (args->format == "json") {
      nlohmann::json doc = {{"model", g->name}, {"output", g->outputs[0]}, {"shape", y.shape},
                            {"threads", args->threads}, {"median_ms", ms[ms.size() / 2]},
                            {"min_ms", ms.front()}, {"max_ms", ms.back()}};
      for (int i = 0; i < top; ++i) {
        nlohmann::json entry = {{"index", order[i]}, {"value", y.data[order[i]]}};
        if (!labels.empty()) entry["label"] = labels[order[i] % labels.size()];  // each sample's classes
        doc["top"].push_back(entry);
      }
      std::cout << doc.dump(1) << "\n";
      return 0;
    }
    std::printf("%s: output %s %s, %d thread(s), median %.2f ms (min %.2f, max %.2f, %d runs)\n", g->name.c_str(),
                g->outputs[0].c_str(), ShapeToString(y.shape).c_str(), args->threads, ms[ms.size() / 2], ms.front(),
                ms.back(), args->repeats);
    for (int i = 0; i < top; ++i) {
      const std::string label = labels.empty() ? "" : "  " + labels[order[i] % labels.size()];
      std::printf("  #%d  index %6d  %.6g%s\n", i + 1, order[i], y.data[order[i]], label.c_str());  // 1e-09, not 0.000000
    }
    return 0;
  };
}

}  // namespace ionn::cli
