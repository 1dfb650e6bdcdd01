#include <cstdio>
#include <iostream>

#include "commands.h"
#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

namespace ionn::cli {

Action RegisterZoo(CLI::App& app) {
  struct Args {
    std::string name, out;
    uint64_t seed = 1;
    bool list = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("zoo", "Write a model of the zoo as ONNX (seeded weights), or --list them");
  cmd->add_option("name", args->name, "alexnet, googlenet, resnet50, inception_bn or mobilenet");
  cmd->add_option("-o,--output", args->out, "Write the model to this file (.onnx)")
      ->type_name("FILE")
      ->check(OutputFile())
      ->group(kOutputGroup);
  cmd->add_option("--weights-seed", args->seed, "Seed of the deterministic weights")->capture_default_str();
  cmd->add_flag("--list", args->list, "List the models");
  return [args]() {
    if (args->list || args->name.empty()) {
      std::printf("%-14s %8s %12s  %s\n", "model", "layers", "parameters", "description");
      for (const auto& e : ZooModels()) {
        auto g = BuildZooModel(e.name, 1, false);
        if (!g.ok()) return Fail(g.status());
        std::printf("%-14s %8zu %12lld  %s\n", e.name.c_str(), g->layers.size(),
                    static_cast<long long>(g->ParameterCount()), e.description.c_str());
      }
      if (!args->list) std::fprintf(stderr, "\nto write one: ionn zoo NAME -o FILE.onnx\n");
      return 0;
    }
    if (args->out.empty()) return Fail(Status::Invalid("give an output file: ionn zoo " + args->name + " -o FILE.onnx"));
    auto g = BuildZooModel(args->name, args->seed);
    if (!g.ok()) return Fail(g.status());
    Status s = WriteOnnxFile(*g, args->out);
    if (!s.ok()) return FailOutput(s);
    std::fprintf(stderr, "wrote %s: %zu layers, %lld parameters\n", args->out.c_str(), g->layers.size(),
                 static_cast<long long>(g->ParameterCount()));
    return 0;
  };
}

}  // namespace ionn::cli
