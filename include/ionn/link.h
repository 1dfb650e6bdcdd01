// A link emulator in user space (`ionn link`): a TCP proxy that shapes both
// directions of every connection through it, so that a client and a server
// on one machine see a link of a chosen rate and round-trip time. No root
// needed; `scripts/netlab.sh` makes the same link with the kernel (tc in a
// network namespace) for runs as root.
//
// Each direction of a connection is a pipeline of small stages on a byte
// stream, after Toxiproxy's bandwidth and latency toxics:
//
//   read (small socket buffers) -> TokenBucket (the rate) -> DelayLine
//   (one-way delay = rtt/2, a queue) -> write
//
// "Uplink" is the direction from the side that connects to the proxy (the
// client) to the --connect side (the server); downlink the reverse. The
// token bucket of a direction is shared by every connection through the
// proxy: they share one link, as an upload and the queries beside it do on
// a real one. The delay is a queue (a reader stamps each chunk with the
// time it is due, a writer sends it then), so it does not cut throughput.
//
// Units: rates in Mbps with the project's 1 Mbps = kBytesPerMsPerMbps bytes
// per ms (include/ionn/model_costs.h); times in ms; sizes in bytes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ionn/clock.h"
#include "ionn/link_trace.h"
#include "ionn/status.h"

namespace ionn {

// The rate stage: a token bucket of `burst_bytes` that fills at `mbps`.
// Reserve(n) takes n bytes' tokens at once, going into debt if it must, and
// says how long the caller has to wait before passing the bytes on; callers
// that reserve one after another are served in that order, so a bucket
// shared by several streams splits the rate among those that have bytes to
// send. Thread-safe. The clock is not owned and must outlive the bucket.
class TokenBucket {
 public:
  // mbps > 0 and finite; burst_bytes >= 1. The bucket starts full.
  TokenBucket(double mbps, uint64_t burst_bytes, Clock* clock);
  // At the rate `trace` says (link_trace.h), its time 0 now; the depth is
  // 2 ms at the rate of the moment, at least `burst_bytes`.
  TokenBucket(std::shared_ptr<const RateTrace> trace, uint64_t burst_bytes, Clock* clock);

  // Takes `bytes` tokens; returns the ms to wait (0 when they were there).
  double Reserve(uint64_t bytes);
  double bytes_per_ms() const { return bytes_per_ms_; }  // with a trace: its mean
  uint64_t burst_bytes() const { return burst_bytes_; }

 private:
  const double bytes_per_ms_;
  const std::shared_ptr<const RateTrace> trace_;
  const uint64_t burst_bytes_;
  Clock* const clock_;
  std::mutex mu_;
  double tokens_;   // bytes; negative while in debt
  double start_ms_;  // the trace's time 0
  double last_ms_;  // when tokens_ was last brought up to date
};

// The delay stage: a bounded FIFO of chunks between one reader and one
// writer, each chunk due `delay_ms` after it was pushed. An empty chunk
// with `end` set stands for the end of the stream (the writer half-closes
// its socket when it is due). Push blocks while more than `capacity_bytes`
// wait (the reader then stops reading and the sender feels it); Pop blocks
// until a chunk is there. Close() wakes both for good: Push returns false
// and Pop nullopt from then on, and what was queued is dropped. Thread-safe.
class DelayLine {
 public:
  struct Chunk {
    std::vector<char> bytes;
    double due_ms = 0;  // on the line's clock
    bool end = false;
  };

  DelayLine(double delay_ms, uint64_t capacity_bytes, Clock* clock);

  // Stamps `chunk` due now + delay_ms and queues it. False once closed.
  bool Push(Chunk chunk);
  // The oldest chunk (not waiting for its due time: that is the writer's
  // job, so that it can be interrupted). nullopt once closed.
  std::optional<Chunk> Pop();
  void Close();

  double delay_ms() const { return delay_ms_; }

 private:
  const double delay_ms_;
  const uint64_t capacity_bytes_;
  Clock* const clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> chunks_;
  uint64_t queued_bytes_ = 0;
  bool closed_ = false;
};

struct LinkOptions {
  std::string listen = "127.0.0.1:7071";   // host:port; port 0 picks a free one
  std::string connect = "127.0.0.1:7070";  // host:port of the server
  double uplink_mbps = 80;                 // client -> server; > 0, finite
  double downlink_mbps = 80;               // server -> client; > 0, finite
  double rtt_ms = 0;                       // >= 0; rtt/2 is added to each direction
  // A link whose rate changes (link_trace.h): each direction at its trace's
  // rate instead of the constant one, the traces' time 0 when the proxy
  // starts. Null: constant.
  std::shared_ptr<const RateTrace> uplink_trace, downlink_trace;
  // SO_RCVBUF and SO_SNDBUF of the proxy's sockets (the kernel doubles
  // them): small, so that the sender feels the rate rather than filling
  // the proxy's buffers. 4 KiB .. 16 MiB.
  int socket_buffer_bytes = 32 << 10;
  // TCP_MAXSEG of the proxy's sockets, announced to both peers: the segment
  // size of an Ethernet link (1448 = 1500 - IPv4, TCP and timestamps), so
  // that a peer on loopback (64 KiB segments) sizes its send buffer as it
  // would on a real link rather than queueing megabytes ahead of the rate.
  // 0 keeps the kernel's; else 536 .. 65495.
  int segment_bytes = 1448;
  // Token bucket depth per direction; 0 picks max(64 KiB, 4 ms at the rate).
  uint64_t burst_bytes = 0;
  int max_connections = 1024;        // beyond it, new connections are refused
  double connect_timeout_ms = 5000;  // for each connection to the server
  Clock* clock = nullptr;            // null: Clock::System()
  // One line per connection when it ends ("connection 3 from 127.0.0.1:5123
  // closed after 2.1 s: 10485760 bytes up, 12 down"). Called from the
  // proxy's threads, one call at a time.
  std::function<void(const std::string&)> log;
};

struct LinkStats {
  uint64_t connections_accepted = 0;  // since start
  uint64_t connections_open = 0;      // now
  uint64_t connections_failed = 0;    // the server refused, or too many at once
  uint64_t connections_reset = 0;     // closed by an error or a reset on either side
  uint64_t uplink_bytes = 0;          // delivered to the server, since start
  uint64_t downlink_bytes = 0;        // delivered to the client, since start
};

// Threading: Start returns once the proxy listens; it accepts on its own
// thread and runs five threads per connection (a setup thread, then a
// reader and a writer per direction). stats() and port() may be called from
// any thread; Stop from any thread but the log callback.
class LinkProxy {
 public:
  // Checks the options (rates > 0 and finite, rtt >= 0, addresses that
  // resolve) and binds the listening socket.
  static Result<std::unique_ptr<LinkProxy>> Start(const LinkOptions& options);
  ~LinkProxy();  // Stop()

  int port() const;  // the bound port
  LinkStats stats() const;
  // Stops accepting, closes every connection (data in flight is dropped)
  // and joins every thread. Idempotent.
  void Stop();
  // Resets every open connection (data in flight is dropped), as a link
  // that goes down for a moment; new connections are accepted as before.
  // Returns how many were cut.
  int CutAll();
  // Stalls the link (true): no byte moves either way, connections stay
  // open, as on a link that loses every packet for a while; false resumes,
  // and what was sent before arrives intact.
  void Stall(bool stalled);

  struct Impl;

 private:
  LinkProxy() = default;
  std::unique_ptr<Impl> impl_;
};

// Checks the rate and delay options alone (what the CLI validates before
// it binds): InvalidArgument naming the option.
Status ValidateLinkOptions(const LinkOptions& options);

}  // namespace ionn
