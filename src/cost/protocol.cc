#include "ionn/protocol.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace ionn {

const char* LinkSharingName(LinkSharing s) {
  switch (s) {
    case LinkSharing::kNone: return "none";
    case LinkSharing::kFair: return "fair";
    case LinkSharing::kPriority: return "priority";
  }
  return "?";
}

Result<LinkSharing> ParseLinkSharing(const std::string& name) {
  for (LinkSharing s : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
    if (name == LinkSharingName(s)) return s;
  }
  return Status::Invalid("unknown link sharing '" + name + "' (expected none, fair or priority)");
}

namespace {

// A finite number >= 0 spelled in full (no trailing characters).
bool ParseNonNegative(const std::string& text, double* value) {
  if (text.empty() || text.size() > 64) return false;
  size_t used = 0;
  try {
    *value = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == text.size() && std::isfinite(*value) && *value >= 0;
}

}  // namespace

Result<Arrivals> ParseArrivals(const std::string& spec) {
  Arrivals a;
  const std::string expected =
      " (expected back-to-back, periodic:FPS, poisson:RATE_PER_S[:SEED] or trace:FILE)";
  if (spec == "back-to-back") return a;
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon), rest = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "periodic" || kind == "poisson") {
    const size_t second = rest.find(':');
    const std::string rate = rest.substr(0, second);
    if (!ParseNonNegative(rate, &a.per_s) || !(a.per_s > 0) || a.per_s > 1e6) {
      return Status::Invalid("arrivals '" + spec.substr(0, 80) + "': the rate per second must be a number in (0, 1e6]");
    }
    a.kind = kind == "periodic" ? Arrivals::Kind::kPeriodic : Arrivals::Kind::kPoisson;
    if (second != std::string::npos) {
      const std::string seed = rest.substr(second + 1);
      if (kind == "periodic" || seed.empty() || seed.size() > 19 ||
          seed.find_first_not_of("0123456789") != std::string::npos) {
        return Status::Invalid("arrivals '" + spec.substr(0, 80) + "': " +
                               (kind == "periodic" ? "periodic takes no seed" : "the seed must be a whole number"));
      }
      a.seed = std::stoull(seed);
    }
    return a;
  }
  if (kind == "trace") {
    return Status::Invalid("arrivals '" + spec.substr(0, 80) + "': a trace's times are read from its file");
  }
  return Status::Invalid("unknown arrivals '" + spec.substr(0, 80) + "'" + expected);
}

Result<std::vector<double>> ParseArrivalTrace(const std::string& text) {
  std::vector<double> times;
  size_t line_no = 0, begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    double t = 0;
    if (!ParseNonNegative(line, &t)) {
      return Status::Invalid("line " + std::to_string(line_no) + ": '" + line.substr(0, 40) +
                             "' is not an arrival time in ms (a finite number >= 0)");
    }
    if (!times.empty() && t < times.back()) {
      return Status::Invalid("line " + std::to_string(line_no) + ": " + line.substr(0, 40) +
                             " ms comes before the line above's " + std::to_string(times.back()) +
                             " ms (times must not decrease)");
    }
    if (times.size() >= 10000000) return Status::Invalid("more than 10 million arrivals");
    times.push_back(t);
  }
  if (times.empty()) return Status::Invalid("no arrival times (one time in ms per line)");
  return times;
}

std::string ArrivalsName(const Arrivals& a) {
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", a.per_s);
  switch (a.kind) {
    case Arrivals::Kind::kBackToBack: return "back-to-back";
    case Arrivals::Kind::kPeriodic: return std::string("periodic:") + rate;
    case Arrivals::Kind::kPoisson: return std::string("poisson:") + rate + ":" + std::to_string(a.seed);
    case Arrivals::Kind::kTrace: return "trace";
  }
  return "?";
}

Status SetMaxQueue(Arrivals* arrivals, int max_queue) {
  if (max_queue >= 0 && arrivals->kind == Arrivals::Kind::kBackToBack) {
    return Status::Invalid("needs arrivals other than back-to-back (back to back, none waits)");
  }
  arrivals->max_queue = max_queue;
  return Status::Ok();
}

ArrivalQueue::ArrivalQueue(Arrivals arrivals) : arrivals_(std::move(arrivals)), state_(arrivals_.seed) { Advance(); }

void ArrivalQueue::Advance() {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  const int64_t i = index_++;
  switch (arrivals_.kind) {
    case Arrivals::Kind::kBackToBack:
      next_ms_ = kNone;  // not queued: the protocol raises them itself
      break;
    case Arrivals::Kind::kPeriodic:
      next_ms_ = static_cast<double>(i) * 1000.0 / arrivals_.per_s;
      break;
    case Arrivals::Kind::kPoisson: {
      // Exponential gaps by inversion of a splitmix64 uniform: the same
      // times on every platform for a seed (std::exponential_distribution's
      // algorithm is the library's choice).
      uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      const double u = static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
      next_ms_ = (i == 0 ? 0.0 : next_ms_) - std::log1p(-u) * 1000.0 / arrivals_.per_s;
      break;
    }
    case Arrivals::Kind::kTrace:
      next_ms_ = i < static_cast<int64_t>(arrivals_.times_ms.size()) ? arrivals_.times_ms[i] : kNone;
      break;
  }
}

double ArrivalQueue::Take(double now_ms, double free_since_ms) {
  // Those that arrived while a query ran (before `free_since_ms`) wait, at
  // most max_queue of them; of those that arrived since, the first starts
  // at once and is not waiting.
  while (next_ms_ <= now_ms) {
    const bool limited = arrivals_.max_queue >= 0;
    const size_t bound = static_cast<size_t>(std::max(arrivals_.max_queue, 0)) + (next_ms_ >= free_since_ms ? 1 : 0);
    if (limited && waiting() >= bound) {
      ++dropped_;
      if (bound > 0) ++head_;  // the oldest waiting one makes room
      if (bound == 0) {        // no room at all: this one
        Advance();
        continue;
      }
    }
    waiting_.push_back(next_ms_);
    if (head_ > 4096 && head_ * 2 > waiting_.size()) {  // what was taken or dropped goes
      waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    Advance();
  }
  if (head_ == waiting_.size()) return -1;
  return waiting_[head_++];
}

namespace {

constexpr double kSnap = 1e-9;  // relative: what is left within rounding of the whole is done

// Counts one finished query: during the upload when it ends no later than
// the last arrival (`upload_end`, or still uploading), else the done share
// of the one in flight when the upload ended.
void Finish(const ProtocolQuery& q, bool uploading_still, double upload_end, const ProtocolOptions& options,
            ProtocolRun* r) {
  if (uploading_still || q.end_ms <= upload_end) {
    ++r->queries_during_upload;
  } else if (q.start_ms < upload_end) {
    r->queries_during_upload_fractional = (upload_end - q.start_ms) / (q.end_ms - q.start_ms);
  }
  if (options.keep_queries) r->queries.push_back(q);
}

}  // namespace

// Without link sharing, queries and the upload do not slow each other
// down: arrivals are running sums of the upload times and every query
// lasts its latency. The same protocol as the event loop of
// ReplayProtocol, evaluated without events.
Status ReplayProtocolWithoutSharing(const std::vector<double>& upload_ms, const std::vector<double>& latency_ms,
                                    const ProtocolOptions& options, ProtocolRun* r) {
  const int num_parts = static_cast<int>(upload_ms.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  if (static_cast<int>(latency_ms.size()) != num_parts) return Status::Internal("one latency per partition expected");
  r->queries.clear();
  r->partition_done_ms.clear();
  r->queries_dropped = 0;  // none wait back to back
  double t = 0;
  for (int p = 0; p < num_parts; ++p) {
    if (!(latency_ms[p] > 0)) return Status::Invalid("queries take no time; nothing to replay");
    r->partition_done_ms.push_back(t += upload_ms[p]);
  }
  const double* arrival = r->partition_done_ms.data();
  const double upload_end = arrival[num_parts - 1];
  // The first query waits for the first partition (and those arriving with it).
  int arrived = 0;
  t = arrival[0];
  int finished = 0, raised_after_upload = 0, during = 0;
  double fraction = 0;
  const int after_upload = options.queries_after_upload, min_queries = options.min_queries;
  const int max_queries = options.max_queries;
  const bool keep = options.keep_queries;
  const double near_end = kSnap * upload_end;
  while (true) {
    while (arrived < num_parts && arrival[arrived] - t <= kSnap * upload_ms[arrived]) ++arrived;
    const bool upload_done = arrived == num_parts;
    if (upload_done && raised_after_upload >= after_upload && finished >= min_queries &&
        t >= options.raise_until_ms) {
      break;
    }
    if (finished >= max_queries) return Status::Invalid("more than max_queries queries; stopping");
    raised_after_upload += upload_done;
    const double end = t + latency_ms[arrived - 1];
    if (!upload_done && end - upload_end <= near_end) {
      ++during;
    } else if (t < upload_end) {
      fraction = (upload_end - t) / (end - t);
    }
    if (keep) r->queries.push_back(ProtocolQuery{t, end, arrived});
    ++finished;
    t = end;
  }
  r->queries_during_upload = during;
  r->queries_during_upload_fractional = fraction;
  r->upload_ms = upload_end;
  r->queries_during_upload_fractional += r->queries_during_upload;
  return Status::Ok();
}


Result<ProtocolRun> ReplayProtocol(const std::vector<double>& upload_ms,
                                   const std::vector<std::vector<QueryStep>>& steps_after,
                                   const ProtocolOptions& options) {
  ProtocolRun run;
  IONN_RETURN_IF_ERROR(ReplayProtocol(upload_ms, steps_after, options, &run));
  return run;
}

Status ReplayProtocol(const std::vector<double>& upload_ms, const std::vector<std::vector<QueryStep>>& steps_after,
                      const ProtocolOptions& options, ProtocolRun* out) {
  const int num_parts = static_cast<int>(upload_ms.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  if (static_cast<int>(steps_after.size()) != num_parts + 1) {
    return Status::Internal("steps_after needs one entry per count of arrived partitions");
  }
  const bool back_to_back = options.arrivals.kind == Arrivals::Kind::kBackToBack;
  for (int p = back_to_back ? 1 : 0; p <= num_parts; ++p) {
    if (steps_after[p].empty()) return Status::Invalid("queries take no time; nothing to replay");
  }
  if (options.sharing == LinkSharing::kNone && back_to_back && !options.uplink_factor && !options.downlink_factor &&
      !options.observer) {
    thread_local std::vector<double> latency;
    latency.resize(num_parts);
    for (int p = 1; p <= num_parts; ++p) {
      double d = 0;
      for (const QueryStep& step : steps_after[p]) d += step.ms;
      latency[p - 1] = d;
    }
    return ReplayProtocolWithoutSharing(upload_ms, latency, options, out);
  }
  return ReplayProtocolEvents(upload_ms, steps_after, options, out);
}

namespace {

// A schedule fits what ran: one step list per count of partitions, steps
// for every count a query may still start at, and at least the arrived
// partitions and the one in flight, that one as long as before.
// Against `was`, the schedule that ran so far: `in_flight` says whether
// partition `arrived` is on its way (false: one has just arrived).
Status CheckSchedule(const ProtocolSchedule& s, const std::vector<double>& was, int arrived, bool in_flight,
                     bool back_to_back) {
  const int n = static_cast<int>(s.upload_ms.size());
  if (n == 0 || static_cast<int>(s.steps_after.size()) != n + 1) {
    return Status::Internal("a new schedule has " + std::to_string(n) + " upload times and " +
                            std::to_string(s.steps_after.size()) + " step lists (one more than upload times)");
  }
  const int keep = arrived + (in_flight ? 1 : 0);
  if (n < keep) {
    return Status::Internal("a new schedule has " + std::to_string(n) + " partitions, fewer than the " +
                            std::to_string(keep) + " arrived or on their way");
  }
  for (int p = 0; p < keep; ++p) {
    if (s.upload_ms[p] != was[p]) {
      return Status::Internal("a new schedule changed partition " + std::to_string(p) + " (arrived or on its way) from " +
                              std::to_string(was[p]) + " ms to " + std::to_string(s.upload_ms[p]) + " ms");
    }
  }
  for (int p = std::max(arrived, back_to_back ? 1 : 0); p <= n; ++p) {
    if (s.steps_after[p].empty()) return Status::Invalid("queries take no time; nothing to replay");
  }
  for (double ms : s.upload_ms) {
    if (!(ms >= 0) || !std::isfinite(ms)) return Status::Internal("a schedule's upload time is not a finite ms >= 0");
  }
  return Status::Ok();
}

}  // namespace

Status ReplayProtocolEvents(const std::vector<double>& upload_ms_given,
                            const std::vector<std::vector<QueryStep>>& steps_after_given,
                            const ProtocolOptions& options, ProtocolRun* out) {
  // What runs: as given, or as the observer last changed it.
  const std::vector<double>* upload = &upload_ms_given;
  const std::vector<std::vector<QueryStep>>* after = &steps_after_given;
  int num_parts = static_cast<int>(upload->size());
  if (num_parts == 0 || static_cast<int>(after->size()) != num_parts + 1) {
    return Status::Internal("ReplayProtocolEvents: one upload time per partition, one step list per count of them");
  }
  ProtocolRun& r = *out;
  r.queries.clear();
  r.partition_done_ms.clear();
  r.queries_during_upload = 0;
  r.queries_during_upload_fractional = 0;
  r.queries_dropped = 0;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const bool back_to_back = options.arrivals.kind == Arrivals::Kind::kBackToBack;
  for (int p = back_to_back ? 1 : 0; p <= num_parts; ++p) {
    if ((*after)[p].empty()) return Status::Invalid("queries take no time; nothing to replay");
  }
  ArrivalQueue queue(options.arrivals);
  UploadObserver* observer = options.observer;
  const double ack_ms = observer ? observer->ack_ms() : kInf;
  if (!(ack_ms > 0)) return Status::Internal("an upload observer's ack_ms must be > 0");
  double total_ms = 0;
  for (double ms : upload_ms_given) total_ms += ms;
  if (observer && total_ms / ack_ms > 1e8) {
    return Status::Invalid("more than 100 million acknowledgements in the upload: acknowledge larger amounts");
  }
  int64_t acks = 0;  // acknowledgements so far: the next is at (acks + 1) * ack_ms
  ProtocolSchedule owned;  // the observer's last schedule, copied: the loop's own
  std::vector<QueryStep> query_steps;  // with an observer, the running query's steps, copied
  double upload_sent = 0, query_sent = 0;  // progress on the uplink, in ms at the planned rate
  double next_ack = ack_ms;
  const RateTrace* up_trace = options.uplink_factor.get();
  const RateTrace* down_trace = options.downlink_factor.get();
  double free_since = 0;  // when the last query ended
  double now = 0;
  int stuck = 0;  // steps in a row that a trace's change kept at dt 0
  int part = 0;  // partition being uploaded; num_parts when done
  double part_left = (*upload)[0];
  bool query_active = false;
  int step = 0, raised_after_upload = 0;
  double step_left = 0;
  ProtocolQuery q;
  const std::vector<QueryStep>* steps = nullptr;
  int finished = 0;
  r.partition_done_ms.reserve(num_parts);
  // Tells the observer; follows the schedule it returns.
  const auto observe = [&](bool in_flight) -> Status {
    // The next acknowledgement: the next multiple of ack_ms past what was sent.
    while (static_cast<double>(acks + 1) * ack_ms <= upload_sent) ++acks;
    next_ack = static_cast<double>(acks + 1) * ack_ms;
    const ProtocolSchedule* next = observer->OnProgress(now, upload_sent, query_sent, part, in_flight);
    if (!next) return Status::Ok();
    IONN_RETURN_IF_ERROR(CheckSchedule(*next, *upload, part, in_flight, back_to_back));
    owned = *next;
    upload = &owned.upload_ms;
    after = &owned.steps_after;
    num_parts = static_cast<int>(upload->size());
    return Status::Ok();
  };
  while (true) {
    while (part < num_parts && part_left <= 0) {  // zero-length partitions arrive at once
      r.partition_done_ms.push_back(now);
      ++part;
      // An arrival is acknowledged: the observer may change what follows.
      if (observer) IONN_RETURN_IF_ERROR(observe(/*in_flight=*/false));
      if (part < num_parts) part_left = (*upload)[part];
    }
    if (observer && part < num_parts && upload_sent >= next_ack) IONN_RETURN_IF_ERROR(observe(/*in_flight=*/true));
    if (!query_active) {
      const bool upload_done = part == num_parts;
      const bool enough = raised_after_upload >= options.queries_after_upload && finished >= options.min_queries &&
                          now >= options.raise_until_ms;
      if (upload_done && (enough || (!back_to_back && queue.Exhausted()))) break;
      if (finished >= options.max_queries) return Status::Invalid("more than max_queries queries; stopping");
      // Back to back: a query is always waiting once a partition arrived.
      const double arrival = back_to_back ? (part > 0 ? now : -1) : queue.Take(now, free_since);
      if (queue.waiting() > 10000000) {
        return Status::Invalid("more than 10 million queries waiting: arrivals outpace the queries (bound the "
                               "queue with max_queue)");
      }
      if (arrival >= 0) {
        raised_after_upload += upload_done;
        q = ProtocolQuery{now, 0, part, back_to_back ? -1.0 : arrival};
        steps = &(*after)[part];
        if (observer) {  // a later schedule may change the list: the query keeps its own
          query_steps = *steps;
          steps = &query_steps;
        }
        step = 0;
        step_left = (*steps)[0].ms;
        query_active = true;
      }
    }
    const bool uploading = part < num_parts;
    const bool query_up = query_active && (*steps)[step].uplink;
    const bool query_down = query_active && (*steps)[step].downlink;
    // The links' rates now (a multiple of the planned one) and until when.
    const double up = up_trace ? up_trace->RateAt(now) : 1, down = down_trace ? down_trace->RateAt(now) : 1;
    double dt_trace = kInf;
    if (up_trace && (uploading || query_up)) dt_trace = up_trace->NextChange(now) - now;
    if (down_trace && query_down) dt_trace = std::min(dt_trace, down_trace->NextChange(now) - now);
    double upload_rate = uploading ? up : 0;
    double query_rate = !query_active ? 0 : query_up ? up : query_down ? down : 1;
    if (uploading && query_up) {
      if (options.sharing == LinkSharing::kFair) upload_rate = query_rate = 0.5 * up;
      if (options.sharing == LinkSharing::kPriority) upload_rate = 0;
    }
    const double dt_upload = upload_rate > 0 ? part_left / upload_rate : kInf;
    const double dt_query = query_rate > 0 ? step_left / query_rate : kInf;
    const double dt_arrival = query_active || back_to_back ? kInf : queue.NextArrivalMs() - now;
    const double dt_ack = observer && upload_rate > 0 ? std::max(0.0, next_ack - upload_sent) / upload_rate : kInf;
    const double dt = std::min({dt_upload, dt_query, dt_arrival, std::max(0.0, dt_trace), dt_ack});
    if (dt == kInf) return Status::Internal("replay stalled");
    // A trace's change that time cannot pass (past what doubles resolve).
    if (dt_trace <= 0 && dt <= 0 && ++stuck > 1000) {
      return Status::Invalid("the replay reached times the link trace's changes cannot be told apart at");
    }
    if (dt > 0) stuck = 0;
    now += dt;
    // What is left within rounding of the whole is done: a query that ends
    // exactly when a partition arrives must see it arrived.
    const double upload_step = dt == dt_upload ? part_left : upload_rate * dt;
    upload_sent = dt == dt_ack && dt != dt_upload ? next_ack : upload_sent + upload_step;
    if (query_up) query_sent += query_rate * dt;
    part_left = dt == dt_upload ? 0 : part_left - upload_step;
    if (part < num_parts && part_left <= kSnap * (*upload)[part]) part_left = 0;
    step_left = dt == dt_query ? 0 : step_left - query_rate * dt;
    if (query_active && step_left <= kSnap * (*steps)[step].ms) step_left = 0;
    if (query_active && step_left <= 0) {
      if (++step < static_cast<int>(steps->size())) {
        step_left = (*steps)[step].ms;
      } else {
        q.end_ms = now;
        // While partitions are still on their way the upload ends later
        // (or now); once all arrived, partition_done_ms.back() is its end.
        const bool uploading_still = part < num_parts;
        Finish(q, uploading_still, uploading_still ? now : r.partition_done_ms.back(), options, &r);
        ++finished;
        query_active = false;
        free_since = now;
      }
    }
  }
  r.upload_ms = r.partition_done_ms.back();
  r.queries_during_upload_fractional += r.queries_during_upload;
  r.queries_dropped = queue.dropped();
  return Status::Ok();
}

double NearestRank(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()) - 1e-9);
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[i];
}

QueryCounts CountQueries(const std::vector<ProtocolQuery>& queries, const std::vector<double>& partition_done_ms,
                         double upload_ms, bool upload_complete, double window_ms, double deadline_ms) {
  QueryCounts c;
  c.queries = static_cast<int>(queries.size());
  std::vector<double> latency;
  double first_start = 0, last_end = 0, sum = 0, wait = 0;
  int met = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    const ProtocolQuery& q = queries[i];
    c.during_upload += FinishedDuringUpload(q.end_ms, upload_ms, upload_complete);
    c.in_window += q.end_ms <= window_ms;
    latency.push_back(q.latency_ms());
    sum += latency.back();
    wait += q.start_ms - q.arrived_ms();
    met += deadline_ms >= 0 && latency.back() <= deadline_ms * (1 + kSnap);  // a tie (within rounding) meets it
    first_start = i == 0 ? q.start_ms : std::min(first_start, q.start_ms);
    last_end = i == 0 ? q.end_ms : std::max(last_end, q.end_ms);
  }
  if (!queries.empty()) {
    c.first_query_end_ms = queries.front().end_ms;
    c.latency_mean_ms = sum / static_cast<double>(queries.size());
    c.latency_p50_ms = NearestRank(latency, 0.5);
    c.latency_p90_ms = NearestRank(latency, 0.9);
    c.latency_p95_ms = NearestRank(latency, 0.95);
    c.latency_p99_ms = NearestRank(latency, 0.99);
    c.wait_mean_ms = wait / static_cast<double>(queries.size());
    c.deadline_met_share = static_cast<double>(met) / static_cast<double>(queries.size());
    c.throughput_qps = last_end > first_start ? 1000.0 * static_cast<double>(queries.size()) / (last_end - first_start) : 0;
  }
  if (upload_complete) {  // halves of an upload that ended
    for (double t : partition_done_ms) (t <= upload_ms / 2 ? c.partitions_first_half : c.partitions_second_half)++;
  }
  return c;
}

}  // namespace ionn
