#include "ionn/link_trace.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "ionn/model_costs.h"

namespace ionn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// A step's start is reached within this (ms): RateAt and NextChange agree.
constexpr double kEdgeMs = 1e-9;
constexpr double kMahimahiPacketBytes = 1500;
// A trace's times stay within this (11.6 days), so that replaying one stays
// far from where doubles lose whole ms.
constexpr int64_t kMaxTraceMs = 1000000000;

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// Calls `f(number, line)` for every line of `text` (numbered from 1, trimmed),
// blank and '#' ones skipped, until `f` returns an error.
template <typename F>
Status ForEachLine(const std::string& text, F f) {
  size_t at = 0;
  for (int n = 1; at < text.size(); ++n) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = Trim(text.substr(at, end - at));
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    IONN_RETURN_IF_ERROR(f(n, line));
  }
  return Status::Ok();
}

Status LineError(int line, const std::string& what) { return Status::Invalid("line " + std::to_string(line) + ": " + what); }

// A finite number filling all of `s`.
bool ParseNumber(const std::string& s, double* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*v);
}

}  // namespace

Result<RateTrace> RateTrace::Create(std::vector<Step> steps, double period_ms) {
  if (steps.empty()) return Status::Invalid("a trace needs at least one rate");
  if (!(period_ms >= 0) || !std::isfinite(period_ms)) return Status::Invalid("a trace's period must be >= 0 ms");
  if (steps[0].start_ms != 0) return Status::Invalid("a trace starts at 0 ms");
  if (period_ms > kMaxTraceMs || steps.back().start_ms > kMaxTraceMs) {
    return Status::Invalid("a trace's times stay within 1e9 ms");
  }
  bool any = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!(steps[i].bytes_per_ms >= 0) || !std::isfinite(steps[i].bytes_per_ms)) {
      return Status::Invalid("a trace's rates are finite and >= 0");
    }
    if (i > 0 && !(steps[i].start_ms > steps[i - 1].start_ms)) return Status::Invalid("a trace's times increase");
    if (period_ms > 0 && !(steps[i].start_ms < period_ms)) return Status::Invalid("a trace's times lie within its period");
    any = any || steps[i].bytes_per_ms > 0;
  }
  if (!any || (period_ms == 0 && !(steps.back().bytes_per_ms > 0))) {
    return Status::Invalid("the trace's rate is 0 for ever: nothing would ever cross");
  }
  RateTrace t;
  t.steps_ = std::move(steps);
  t.period_ms_ = period_ms;
  return t;
}

size_t RateTrace::StepAt(double local_ms) const {
  const auto it = std::upper_bound(steps_.begin(), steps_.end(), local_ms + kEdgeMs,
                                   [](double t, const Step& s) { return t < s.start_ms; });
  return it == steps_.begin() ? 0 : static_cast<size_t>(it - steps_.begin()) - 1;
}

double RateTrace::RateAt(double t_ms) const {
  double local = std::max(0.0, t_ms);
  if (period_ms_ > 0) {
    local = std::fmod(local + kEdgeMs, period_ms_) - kEdgeMs;
  }
  return steps_[StepAt(local)].bytes_per_ms;
}

double RateTrace::NextChange(double t_ms) const {
  const double t = std::max(0.0, t_ms);
  double base = 0, local = t;
  if (period_ms_ > 0) {
    base = std::floor((t + kEdgeMs) / period_ms_) * period_ms_;
    local = t - base;
  }
  const size_t i = StepAt(local);
  if (i + 1 < steps_.size()) return base + steps_[i + 1].start_ms;
  return period_ms_ > 0 ? base + period_ms_ : kInf;
}

double RateTrace::FinishMs(double start_ms, double bytes) const {
  double t = std::max(0.0, start_ms), left = bytes;
  if (!(left > 0)) return t;
  // Whole periods at once: a long upload on a short trace.
  if (period_ms_ > 0) {
    const double per_period = MeanBytesPerMs() * period_ms_;
    const double whole = std::floor(left / per_period) - 1;
    if (whole > 0) t += whole * period_ms_, left -= whole * per_period;
  }
  while (true) {
    const double rate = RateAt(t), next = NextChange(t);
    if (rate > 0 && t + left / rate <= next) return t + left / rate;
    if (!(next > t) || next == kInf) return kInf;  // past what doubles resolve; (Create refuses 0 for ever)
    left -= rate * (next - t);
    t = next;
  }
}

double RateTrace::BytesBetween(double t0_ms, double t1_ms) const {
  double t = std::max(0.0, t0_ms), bytes = 0;
  const double end = std::max(t, t1_ms);
  if (period_ms_ > 0 && end - t > 2 * period_ms_) {  // whole periods at once
    const double whole = std::floor((end - t) / period_ms_) - 1;
    bytes += whole * MeanBytesPerMs() * period_ms_;
    t += whole * period_ms_;
  }
  while (t < end) {
    const double next = std::min(end, NextChange(t));
    if (!(next > t)) break;  // past what doubles resolve
    bytes += RateAt(t) * (next - t);
    t = next;
  }
  return bytes;
}

double RateTrace::MaxBytesPerMs() const {
  double most = 0;
  for (const Step& s : steps_) most = std::max(most, s.bytes_per_ms);
  return most;
}

double RateTrace::MeanBytesPerMs() const {
  const double span = period_ms_ > 0 ? period_ms_ : steps_.back().start_ms;
  if (!(span > 0)) return steps_.back().bytes_per_ms;
  double bytes = 0;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const double end = i + 1 < steps_.size() ? steps_[i + 1].start_ms : span;
    bytes += steps_[i].bytes_per_ms * (end - steps_[i].start_ms);
  }
  return bytes / span;
}

RateTrace RateTrace::Relative(double bytes_per_ms) const {
  RateTrace t = *this;
  for (Step& s : t.steps_) s.bytes_per_ms /= bytes_per_ms;
  return t;
}

Result<RateTrace> ParseMahimahiTrace(const std::string& text) {
  // Distinct times and their opportunities, in order (the times do not
  // decrease): memory per distinct ms, not per line.
  std::vector<std::pair<int64_t, int64_t>> per_ms;
  IONN_RETURN_IF_ERROR(ForEachLine(text, [&](int n, const std::string& line) -> Status {
    if (line.size() > 10 || line.find_first_not_of("0123456789") != std::string::npos ||
        std::strtoll(line.c_str(), nullptr, 10) > kMaxTraceMs) {
      return LineError(n, "'" + line.substr(0, 40) + "' is not a time in whole ms from 0 to 1e9 (mahimahi: one "
                          "delivery opportunity per line)");
    }
    const int64_t t = std::strtoll(line.c_str(), nullptr, 10);
    if (!per_ms.empty() && t < per_ms.back().first) {
      return LineError(n, std::to_string(t) + " ms comes before the line above's " +
                              std::to_string(per_ms.back().first) + " ms (times must not decrease)");
    }
    if (!per_ms.empty() && per_ms.back().first == t) {
      ++per_ms.back().second;
    } else {
      per_ms.emplace_back(t, 1);
    }
    return Status::Ok();
  }));
  if (per_ms.empty()) return Status::Invalid("the trace is empty (mahimahi: one time in ms per line)");
  const int64_t period = per_ms.back().first;
  if (period <= 0) return Status::Invalid("the trace's last time is 0 ms: it is the period, and must be > 0");
  // An opportunity at the period is one at 0 of the next loop.
  const int64_t wrapped = per_ms.back().second;
  per_ms.pop_back();
  if (!per_ms.empty() && per_ms.front().first == 0) {
    per_ms.front().second += wrapped;
  } else {
    per_ms.insert(per_ms.begin(), {0, wrapped});
  }
  std::vector<RateTrace::Step> steps;
  auto add = [&](int64_t ms, double rate) {
    if (steps.empty() || steps.back().bytes_per_ms != rate) steps.push_back({static_cast<double>(ms), rate});
  };
  int64_t at = 0;
  for (const auto& [ms, count] : per_ms) {
    if (ms > at) add(at, 0);  // no opportunity in between
    add(ms, kMahimahiPacketBytes * static_cast<double>(count));
    at = ms + 1;
  }
  if (at < period) add(at, 0);
  return RateTrace::Create(std::move(steps), static_cast<double>(period));
}

Result<RateTrace> ParseRateCsv(const std::string& text) {
  std::vector<RateTrace::Step> steps;
  int last_line = 0;
  bool header = true;
  IONN_RETURN_IF_ERROR(ForEachLine(text, [&](int n, const std::string& line) -> Status {
    const bool is_header = header && line == "t_ms,mbps";
    header = false;
    if (is_header) return Status::Ok();
    const size_t comma = line.find(',');
    double t = 0, mbps = 0;
    if (comma == std::string::npos || !ParseNumber(Trim(line.substr(0, comma)), &t) ||
        !ParseNumber(Trim(line.substr(comma + 1)), &mbps)) {
      return LineError(n, "'" + line.substr(0, 40) + "' is not t_ms,mbps (two finite numbers)");
    }
    const std::string time = Trim(line.substr(0, comma)), rate = Trim(line.substr(comma + 1));
    if (steps.empty() && t != 0) return LineError(n, "the first time is " + time + " ms; it must be 0");
    if (!steps.empty() && !(t > steps.back().start_ms)) {
      return LineError(n, "time " + time + " ms does not come after the line above's");
    }
    if (t > kMaxTraceMs) return LineError(n, "time " + time + " ms is past 1e9 ms");
    if (mbps != 0 && !(mbps >= 1e-3 && mbps <= 1e6)) {
      return LineError(n, "rate " + rate + " Mbps is neither 0 nor in 0.001 to 1e6");
    }
    steps.push_back({t, mbps * kBytesPerMsPerMbps});
    last_line = n;
    return Status::Ok();
  }));
  if (steps.empty()) return Status::Invalid("the trace is empty (t_ms,mbps per line)");
  if (!(steps.back().bytes_per_ms > 0)) {
    return LineError(last_line, "the last rate holds for ever and is 0: nothing would cross after it");
  }
  return RateTrace::Create(std::move(steps), 0);
}

Result<RateTrace> ParseRateTrace(const std::string& text) {
  bool csv = false;
  (void)ForEachLine(text, [&](int, const std::string& line) {
    csv = line.find(',') != std::string::npos;
    return Status::Invalid("the first line decides");  // stops the walk
  });
  return csv ? ParseRateCsv(text) : ParseMahimahiTrace(text);
}

}  // namespace ionn
