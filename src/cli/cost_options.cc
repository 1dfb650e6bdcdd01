#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "ionn/slices.h"
#include "ionn/granularity.h"
#include "ionn/model_costs.h"
#include "ionn/model_source.h"

namespace ionn::cli {

int Fail(const Status& status) {
  std::cerr << "ionn: error: " << status.message() << "\n";
  return 2;
}

void WarnNonPositivePredictions(const Graph& graph, const ServerRegression& regression, const std::string& source) {
  for (const auto& [type, p] : NonPositivePredictions(graph, regression)) {
    std::fprintf(stderr,
                 "ionn: warning: %s predicts %.4g ms for %s layer '%s'%s: floored at 0 ms, taken as free on the "
                 "server (a fit with a negative intercept; refit with more small %s layers, or edit its b_ms)\n",
                 source.c_str(), p.first_ms, type.c_str(), p.first.c_str(),
                 p.layers > 1 ? (" and " + std::to_string(p.layers - 1) + " more").c_str() : "", type.c_str());
  }
}

int FailOutput(const Status& status) {
  std::cerr << "ionn: error: " << status.message() << "\n";
  return 2;
}

std::string DataDir() {
  if (const char* env = std::getenv("IONN_DATA_DIR")) return env;
  return IONN_DEFAULT_DATA_DIR;
}

std::string PaperProfileDir() { return DataDir() + "/profiles/odroid-xu4_gtx1080ti/"; }

Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) return Status::Io("cannot write '" + path + "': " + std::strerror(errno));
  out << text;
  out.flush();
  return out ? Status::Ok() : Status::Io("cannot write '" + path + "': " + std::strerror(errno));
}

Result<std::string> ReadSmallFile(const std::string& path, const std::string& what, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(what + ": cannot open '" + path + "'");
  std::string bytes(max_bytes + 1, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.bad()) return Status::Invalid(what + ": cannot read '" + path + "'");
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (bytes.size() > max_bytes) {
    return Status::Invalid(what + ": '" + path + "' is larger than " + std::to_string(max_bytes) + " bytes");
  }
  if (bytes.empty()) return Status::Invalid(what + ": '" + path + "' is empty");
  return bytes;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  IONN_ASSIGN_OR_RETURN(std::string secret, ReadSmallFile(path, "--secret-file", 4096));
  const size_t end = secret.find_first_of("\r\n");
  if (end != std::string::npos) secret.resize(end);
  return secret;  // checked where it is used (printable, 16 to 1024 bytes)
}

Status RunGnuplot(const std::string& folder) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::Io(std::string("cannot start gnuplot: ") + std::strerror(errno));
  if (pid == 0) {
    if (chdir(folder.c_str()) != 0) _exit(126);
    execlp("gnuplot", "gnuplot", "plots.gp", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return Status::Io("gnuplot is not installed (scripts/setup.sh installs it; --no-plots skips the figures)");
  }
  return Status::Io("gnuplot failed on '" + folder + "/plots.gp' (exit " +
                    std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
}

std::function<void(const std::string&)> StderrLog(const std::string& who) {
  return [who](const std::string& line) {
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
    std::fprintf(stderr, "%s %s: %s\n", stamp, who.c_str(), line.c_str());
  };
}

StopSignals::StopSignals(std::initializer_list<int> more) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  for (int sig : more) sigaddset(&set_, sig);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

std::string StopSignals::Wait() {
  int sig = 0;
  sigwait(&set_, &sig);
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(sig);
  }
}

}  // namespace ionn::cli

namespace ionn::cli {

Result<PlannedModel> LoadAndPlan(const CostOptions& costs, const PlanOptions& plan) {
  const auto plan_for = [&](const CostGraph& g) { return plan.Make(g); };
  if (costs.SliceCount() == 0) {  // --slices auto: what finishes the most queries in the window
    IONN_ASSIGN_OR_RETURN(SlicedPlan best,
                          PlanBestSlices([&](int n) { return costs.LoadSliced(n); }, plan_for));
    return PlannedModel{std::move(best.costs), std::move(best.plan), best.slices};
  }
  IONN_ASSIGN_OR_RETURN(CostGraph g, costs.Load());
  IONN_ASSIGN_OR_RETURN(UploadPlan made, plan_for(g));
  return PlannedModel{std::move(g), std::move(made), costs.SliceCount()};
}

}  // namespace ionn::cli
