// What preparing a layer set once saves: per zoo model (whole model, one
// thread), the median time of Engine::Run (Prepare + Execute on every
// call, as before the engine grew Prepare), of Execute on a PreparedRun
// made once (what the server does per query step), and of Prepare alone.
// Usage: prepare_bench [--seconds S] [--model NAME]
#include <cstring>

#include "bench_util.h"
#include "ionn/engine.h"

using namespace ionn;

int main(int argc, char** argv) {
  double seconds = 1.0;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
  }
  std::printf("whole model, 1 thread, median ms\n%-14s %10s %12s %12s %14s\n", "model", "Run", "Execute", "Prepare",
              "Execute/Run");
  for (const auto& e : ZooModels()) {
    if (!only.empty() && e.name != only) continue;
    const Graph g = BuildZooModel(e.name, 1).value();
    auto engine = Engine::Create(g, EngineOptions{1}).value();
    std::vector<int> all(g.layers.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
    const TensorMap in = {{g.inputs[0].name, SeededInput(g.inputs[0].shape, 1)}};
    auto prepared = engine->Prepare(all, g.outputs).value();
    const double run_us = bench::MedianUs([&] { (void)engine->Run(all, in, g.outputs); }, 5, seconds);
    const double exec_us = bench::MedianUs([&] { (void)engine->Execute(*prepared, in); }, 5, seconds);
    const double prep_us = bench::MedianUs([&] { (void)engine->Prepare(all, g.outputs); }, 5, seconds / 4);
    std::printf("%-14s %10.3f %12.3f %12.3f %14.3f\n", e.name.c_str(), run_us / 1000, exec_us / 1000, prep_us / 1000,
                exec_us / run_us);
    std::fflush(stdout);
  }
  return 0;
}
