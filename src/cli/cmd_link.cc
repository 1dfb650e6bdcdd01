// `ionn link`: a link emulator as a TCP proxy (include/ionn/link.h). Shapes
// both directions until SIGINT or SIGTERM, then closes every connection and
// exits 0. SIGUSR1 cuts every open connection (a link down for a moment);
// SIGUSR2 stalls the link, or resumes it (every packet lost for a while).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>

#include "commands.h"
#include "ionn/link.h"

namespace ionn::cli {

Action RegisterLink(CLI::App& app) {
  struct Args {
    LinkOptions proxy;
    LinkRateOptions link;
    LinkTraceOptions traces;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "link",
      "Emulate a link on one machine: a TCP proxy that shapes rate and delay of both directions (no root needed)");
  cmd->footer(
      "Uplink is client -> --connect side, downlink the reverse; all connections through the proxy share\n"
      "one rate per direction. 1 Mbps = 1024*1024/8000 bytes per ms, as everywhere in ionn. Example:\n"
      "  ionn serve --listen 127.0.0.1:7070 &\n"
      "  ionn link --listen 127.0.0.1:7071 --connect 127.0.0.1:7070 --uplink-mbps 80 --downlink-mbps 80 --rtt-ms 2 &\n"
      "  ionn client --zoo alexnet --paper-profiles --server 127.0.0.1:7071\n"
      "Faults: `kill -USR1 PID` resets every open connection (data in flight is lost); new ones are accepted.\n"
      "        `kill -USR2 PID` stalls the link (no byte moves, connections stay open); again resumes it.");
  LinkOptions& o = args->proxy;
  cmd->add_option("--listen", o.listen, "host:port the clients connect to")->capture_default_str();
  cmd->add_option("--connect", o.connect, "host:port of the server")->capture_default_str();
  args->link.Add(cmd);
  args->traces.Add(cmd);
  args->traces.options[0]->excludes(args->link.options[0]);  // --uplink-trace replaces --uplink-mbps
  args->traces.options[1]->excludes(args->link.options[1]);
  args->traces.options[0]->description(
      "The uplink's rate over time, from the proxy's start (mahimahi's format, or t_ms,mbps CSV: "
      "data/traces/), instead of --uplink-mbps");
  args->traces.options[1]->description("The downlink's rate over time, as --uplink-trace, instead of --downlink-mbps");
  cmd->add_option("--socket-buffer-bytes", o.socket_buffer_bytes, "SO_RCVBUF/SO_SNDBUF of the proxy's sockets")
      ->capture_default_str()
      ->check(CLI::Range(4 << 10, 16 << 20));
  cmd->add_option("--segment-bytes", o.segment_bytes,
                  "TCP segment size announced to both peers (as on a 1500-byte MTU link); 0: the kernel's")
      ->capture_default_str()
      ->check(CLI::Range(0, 65495));
  cmd->add_option("--max-connections", o.max_connections, "Connections open at once; more are refused")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  return [args]() {
    auto log = StderrLog("link");
    LinkOptions o = args->proxy;
    // With a trace, the other direction's rate as a planner assumes it (as
    // `ionn simulate` does).
    auto loaded = args->traces.Load(&args->link);
    if (!loaded.ok()) return Fail(loaded.status());
    o.uplink_trace = loaded->uplink;
    o.downlink_trace = loaded->downlink;
    o.uplink_mbps = args->link.uplink_mbps;
    o.downlink_mbps = args->link.downlink();
    o.rtt_ms = args->link.rtt_ms;
    o.log = log;
    StopSignals stop({SIGUSR1, SIGUSR2});  // before the proxy starts its threads
    auto proxy = LinkProxy::Start(o);
    if (!proxy.ok()) return Fail(proxy.status());
    const auto number = [](double v) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", v);
      return std::string(text);
    };
    const auto rate = [&](double mbps, const std::string& trace) {
      return trace.empty() ? number(mbps) + " Mbps" : "trace " + trace;
    };
    log("listening on " + o.listen + " (port " + std::to_string((*proxy)->port()) + ") -> " + o.connect + ": up " +
        rate(o.uplink_mbps, args->traces.uplink) + ", down " + rate(o.downlink_mbps, args->traces.downlink) +
        ", rtt " + number(o.rtt_ms) + " ms" +
        (args->traces.any() ? "; the traces' time 0 at unix ms " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count())
                            : std::string()));
    std::string sig;
    bool stalled = false;
    while ((sig = stop.Wait()) == "SIGUSR1" || sig == "SIGUSR2") {
      if (sig == "SIGUSR1") {
        log("got SIGUSR1: cut " + std::to_string((*proxy)->CutAll()) + " connections");
      } else {
        stalled = !stalled;
        (*proxy)->Stall(stalled);
        log(std::string("got SIGUSR2: link ") + (stalled ? "stalled" : "resumed"));
      }
    }
    log("got " + sig + "; closing every connection");
    (*proxy)->Stop();
    const LinkStats st = (*proxy)->stats();
    log(std::to_string(st.connections_accepted) + " connections (" + std::to_string(st.connections_failed) +
        " refused, " + std::to_string(st.connections_reset) + " reset), " + std::to_string(st.uplink_bytes) +
        " bytes up, " + std::to_string(st.downlink_bytes) + " bytes down");
    return 0;
  };
}

}  // namespace ionn::cli
