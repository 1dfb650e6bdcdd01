// A link whose rate changes (DESIGN.md, "A link whose rate changes"): the
// rate of one direction as a step function of the time since the upload
// started, read from mahimahi's trace format (the one cellular-network
// research uses: one line per 1500-byte delivery opportunity, in ms,
// looping) or from a simple CSV (`t_ms,mbps`). The simulator replays it for
// the upload and every query tensor. Pure code: no I/O, no clocks.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "ionn/status.h"

namespace ionn {

class RateTrace {
 public:
  struct Step {
    double start_ms = 0;      // from here (within a period) until the next step's start
    double bytes_per_ms = 0;  // >= 0
  };
  // `steps` start at 0 and strictly increase; `period_ms` > 0: the trace
  // loops with that period (every start below it); 0: the last step's rate
  // holds for ever (it must be > 0). Errors say what is wrong.
  static Result<RateTrace> Create(std::vector<Step> steps, double period_ms);

  // The rate at `t_ms` (>= 0).
  double RateAt(double t_ms) const;
  // The first time after `t_ms` at which the rate may change (infinity:
  // never). RateAt and NextChange agree at a step's start within 1e-9 ms,
  // so a caller stepping from change to change never straddles one.
  double NextChange(double t_ms) const;
  // When `bytes` (>= 0) have crossed, sending at the full rate from
  // `start_ms`.
  double FinishMs(double start_ms, double bytes) const;
  // The bytes that cross from `t0_ms` to `t1_ms` (>= t0_ms) at the full rate.
  double BytesBetween(double t0_ms, double t1_ms) const;
  double MaxBytesPerMs() const;
  // The mean rate: over a period when it loops; otherwise over the time up
  // to the last step's start (the last rate alone when it is the only one).
  double MeanBytesPerMs() const;
  // The constant rate a planner that does not know the future assumes: a
  // looping trace's mean (a link that fluctuates), else the first rate (a
  // client plans with the rate it meets).
  double PlanningBytesPerMs() const { return period_ms_ > 0 ? MeanBytesPerMs() : steps_[0].bytes_per_ms; }
  // The same trace with every rate divided by `bytes_per_ms` (> 0): a
  // multiple of the rate that transfer times were computed at.
  RateTrace Relative(double bytes_per_ms) const;

  const std::vector<Step>& steps() const { return steps_; }
  double period_ms() const { return period_ms_; }

 private:
  size_t StepAt(double local_ms) const;
  std::vector<Step> steps_;
  double period_ms_ = 0;
};

// mahimahi's format: one delivery opportunity of 1500 bytes per line, its
// time a whole number of ms (non-decreasing); the last time is the period
// and the trace loops (an opportunity at the period is one at 0 of the
// next loop). Within each ms the rate is 1500 bytes times the opportunities
// there. Errors name the line.
Result<RateTrace> ParseMahimahiTrace(const std::string& text);
// `t_ms,mbps` per line (an optional header `t_ms,mbps`; blank lines and
// lines starting with '#' skipped): the rate in Mbps as ionn counts them
// (1 Mbps = 1024*1024/8000 bytes per ms) from t_ms until the next line's;
// the first t_ms is 0, each later one larger; the last rate holds for ever
// and must be > 0. Errors name the line.
Result<RateTrace> ParseRateCsv(const std::string& text);
// Either, by content: CSV when the first line that is not blank or a
// comment holds a comma.
Result<RateTrace> ParseRateTrace(const std::string& text);

}  // namespace ionn
