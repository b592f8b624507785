#include "tests/unit/scrape_live.h"
#include "tests/unit/tick_clock.h"
#include "exporter/metrics/flows.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>

namespace execflow {
namespace {

tcp_flow_key Key(int af, const char* s, uint16_t sport, const char* d, uint16_t dport) {
  tcp_flow_key k{};
  k.family = af == AF_INET ? EXECFLOW_AF_INET : EXECFLOW_AF_INET6;
  inet_pton(af, s, k.saddr);
  inet_pton(af, d, k.daddr);
  k.sport = sport;
  k.dport = dport;
  return k;
}

tcp_flow_key V4(const char* s, uint16_t sport, const char* d, uint16_t dport) {
  return Key(AF_INET, s, sport, d, dport);
}

tcp_flow_key V6(const char* s, uint16_t sport, const char* d, uint16_t dport) {
  return Key(AF_INET6, s, sport, d, dport);
}

// label values joined by "|" -> bytes
std::map<std::string, double> Exported(const FlowTable& t) {
  std::map<std::string, double> m;
  for (const auto& s : t.Export()) {
    std::string k;
    for (const auto& l : s.label) k += (k.empty() ? "" : "|") + l.value;
    m[k] = s.counter.value;
  }
  return m;
}

const FlowLabels kAll{};

TEST(FormatAddress, V4V6AndMapped) {
  EXPECT_EQ(FormatAddress(EXECFLOW_AF_INET, V4("10.1.2.3", 0, "0.0.0.0", 0).saddr), "10.1.2.3");
  EXPECT_EQ(FormatAddress(EXECFLOW_AF_INET6, V6("::1", 0, "::", 0).saddr), "::1");
  EXPECT_EQ(FormatAddress(EXECFLOW_AF_INET6, V6("fd00::1:2", 0, "::", 0).saddr), "fd00::1:2");
  EXPECT_EQ(FormatAddress(EXECFLOW_AF_INET6, V6("::ffff:192.0.2.7", 0, "::", 0).saddr), "192.0.2.7");
}

TEST(FlowLabels, NamesInFixedOrder) {
  EXPECT_EQ(kAll.Names(), (std::vector<std::string>{"saddr", "sport", "daddr", "dport"}));
  EXPECT_EQ((FlowLabels{true, false, true, true}.Names()),
            (std::vector<std::string>{"saddr", "daddr", "dport"}));
}

TEST(FlowTable, LiveFlowsAreExportedWithTheirBytes) {
  FlowTable t(kAll, 100, std::chrono::seconds(1), nullptr, TickPerScrape());
  ScrapeLive(t, {{V4("127.0.0.1", 40000, "127.0.0.1", 80), 1234567}}, 0);
  EXPECT_EQ(Exported(t), (std::map<std::string, double>{{"127.0.0.1|40000|127.0.0.1|80", 1234567}}));
  const auto samples = t.Export();
  ASSERT_EQ(samples.size(), 1u);
  std::vector<std::string> names;
  for (const auto& l : samples[0].label) names.push_back(l.name);
  EXPECT_EQ(names, kAll.Names());
  EXPECT_EQ(t.folded(), 0u);
}

TEST(FlowTable, Ipv4MappedFlowsAreReportedAsIpv4AndShareTheSeries) {
  FlowTable t({true, false, true, true}, 100, std::chrono::seconds(1), nullptr, TickPerScrape());
  ScrapeLive(t, {{V6("::ffff:10.0.0.1", 1, "::ffff:10.0.0.2", 443), 10},
            {V4("10.0.0.1", 2, "10.0.0.2", 443), 5}},
           0);
  EXPECT_EQ(Exported(t), (std::map<std::string, double>{{"10.0.0.1|10.0.0.2|443", 15}}));
}

TEST(FlowTable, DroppingSportSumsFlowsAndClosedTotalsStayIn) {
  FlowTable t({true, false, true, true}, 100, std::chrono::seconds(1), nullptr, TickPerScrape());
  const auto a = V4("10.0.0.1", 50001, "10.0.0.9", 443);
  const auto b = V4("10.0.0.1", 50002, "10.0.0.9", 443);
  ScrapeLive(t, {{a, 100}, {b, 50}}, 0);
  EXPECT_EQ(Exported(t)["10.0.0.1|10.0.0.9|443"], 150);
  t.Closed(a, 130);  // 30 more bytes arrived before it closed
  ScrapeLive(t, {{b, 60}}, 0);
  EXPECT_EQ(Exported(t)["10.0.0.1|10.0.0.9|443"], 190);
}

tcp_flow_key Directed(tcp_flow_key k, uint16_t direction) {
  k.direction = direction;
  return k;
}

// saddr, daddr, port, direction: one series per service edge, whatever the client ports.
TEST(FlowTable, EdgeLabelsKeepTheServersPortAndDropTheClients) {
  FlowLabels edge{true, false, true, false, /*port=*/true, /*direction=*/true};
  EXPECT_EQ(edge.Names(), (std::vector<std::string>{"saddr", "daddr", "port", "direction"}));
  FlowTable t(edge, 100, std::chrono::seconds(1), nullptr, TickPerScrape());
  ScrapeLive(t,
             {// this node connected to 10.0.0.9:443 twice
              {Directed(V4("10.0.0.1", 50001, "10.0.0.9", 443), TCP_DIR_OUT), 100},
              {Directed(V4("10.0.0.1", 50002, "10.0.0.9", 443), TCP_DIR_OUT), 50},
              // 10.0.0.9 connected to this node's port 8080 twice: its ports are the ephemeral ones
              {Directed(V4("10.0.0.1", 8080, "10.0.0.9", 41000), TCP_DIR_IN), 7},
              {Directed(V4("10.0.0.1", 8080, "10.0.0.9", 41001), TCP_DIR_IN), 3},
              // opened before the programs were attached: no port is guessed
              {V4("10.0.0.1", 22, "10.0.0.9", 51000), 11},
              {V4("10.0.0.1", 22, "10.0.0.9", 51001), 1}},
             0);
  EXPECT_EQ(Exported(t), (std::map<std::string, double>{{"10.0.0.1|10.0.0.9|443|out", 150},
                                                        {"10.0.0.1|10.0.0.9|8080|in", 10},
                                                        {"10.0.0.1|10.0.0.9||unknown", 12}}));
}

TEST(FlowTable, ClosedFlowIsShownForRetentionScrapesThenRemoved) {
  for (uint32_t retention : {1u, 3u}) {
    FlowTable t(kAll, 100, std::chrono::seconds(retention), nullptr, TickPerScrape());
    const auto a = V4("10.0.0.1", 50001, "10.0.0.9", 443);
    ScrapeLive(t, {{a, 100}}, 0);
    t.Closed(a, 100);  // no new bytes, but it closed
    // Shown by the first scrape after the close, then for the retention.
    for (uint32_t i = 0; i <= retention; ++i) {
      ScrapeLive(t, {}, 0);
      EXPECT_EQ(Exported(t)["10.0.0.1|50001|10.0.0.9|443"], 100) << retention << " " << i;
    }
    ScrapeLive(t, {}, 0);
    EXPECT_TRUE(Exported(t).empty()) << retention;
  }
}

TEST(FlowTable, ShortFlowBetweenScrapesIsStillCounted) {
  FlowTable t(kAll, 100, std::chrono::seconds(1), nullptr, TickPerScrape());
  t.Closed(V4("10.0.0.1", 1, "10.0.0.2", 2), 777);
  ScrapeLive(t, {}, 0);
  EXPECT_EQ(Exported(t)["10.0.0.1|1|10.0.0.2|2"], 777);
}

TEST(FlowTable, ClosedFlowIsExportedForItsRetentionHoweverManyScrape) {
  // Two Prometheus servers and a curl scrape the same exporter: each scrape
  // within the retention (here 300 s, a scrape a second) still shows the
  // final total, so none of them misses it.
  FlowTable t(kAll, 100, std::chrono::seconds(300), nullptr, TickPerScrape());
  const auto flow = V4("10.0.0.1", 1, "10.0.0.2", 2);
  ScrapeLive(t, {{flow, 100}}, 0);
  t.Closed(flow, 150);
  for (int i = 0; i <= 300; ++i) {  // the first scrape that shows it, then 300 s
    ScrapeLive(t, {}, 0);
    ASSERT_EQ(Exported(t)["10.0.0.1|1|10.0.0.2|2"], 150) << "scrape " << i;
  }
  ScrapeLive(t, {}, 0);
  EXPECT_EQ(Exported(t).count("10.0.0.1|1|10.0.0.2|2"), 0u) << "gone after its retention";
}

TEST(FlowTable, ClosedSeriesNeverTakeTheRoomOfLiveOnes) {
  FlowTable t(kAll, 2, std::chrono::seconds(300), nullptr, TickPerScrape());
  const auto a = V4("10.0.0.1", 1, "10.0.0.2", 80), b = V4("10.0.0.1", 2, "10.0.0.2", 80);
  const auto c = V4("10.0.0.1", 3, "10.0.0.2", 80), d = V4("10.0.0.1", 4, "10.0.0.2", 80);
  ScrapeLive(t, {{a, 1}, {b, 2}}, 0);
  t.Closed(a, 1);
  t.Closed(b, 2);
  ScrapeLive(t, {}, 0);  // a and b are retained now
  ScrapeLive(t, {{c, 3}, {d, 4}}, 0);
  auto e = Exported(t);
  EXPECT_EQ(t.folded(), 0u) << "two live flows, two live series";
  EXPECT_EQ(e["10.0.0.1|3|10.0.0.2|80"], 3);
  EXPECT_EQ(e["10.0.0.1|4|10.0.0.2|80"], 4);
  EXPECT_EQ(e["10.0.0.1|1|10.0.0.2|80"], 1) << "still retained";
  EXPECT_EQ(e["10.0.0.1|2|10.0.0.2|80"], 2) << "still retained";
  EXPECT_EQ(e.count("other|other|other|other"), 0u);
}

TEST(FlowTable, RetainedSeriesBeyondMaxSeriesGoOldestFirst) {
  FlowTable t(kAll, 2, std::chrono::seconds(300), nullptr, TickPerScrape());
  for (uint16_t p = 1; p <= 4; ++p) {  // four flows, one closing per scrape
    const auto f = V4("10.0.0.1", p, "10.0.0.2", 80);
    ScrapeLive(t, {{f, p}}, 0);
    t.Closed(f, p);
  }
  ScrapeLive(t, {}, 0);
  auto e = Exported(t);
  EXPECT_EQ(e.size(), 2u) << "room for two retained series";
  EXPECT_EQ(e["10.0.0.1|3|10.0.0.2|80"], 3);
  EXPECT_EQ(e["10.0.0.1|4|10.0.0.2|80"], 4);
}

TEST(FlowTable, OverMaxSeriesFoldsIntoOtherAndTotalsStayExact) {
  FlowTable t(kAll, 2, std::chrono::seconds(1), nullptr, TickPerScrape());
  std::vector<Live<tcp_flow_key>> live;
  for (uint16_t p = 1; p <= 5; ++p) live.push_back({V4("10.0.0.1", p, "10.0.0.2", 80), 10u * p});
  ScrapeLive(t, live, 0);
  auto e = Exported(t);
  EXPECT_EQ(e.size(), 3u);
  EXPECT_EQ(t.folded(), 3u);
  double total = 0;
  for (const auto& [_, v] : e) total += v;
  EXPECT_EQ(total, 10 + 20 + 30 + 40 + 50);
  EXPECT_GT(e["other|other|other|other"], 0);
}

TEST(FlowTable, KernelOverflowBytesGoToOther) {
  FlowTable t(kAll, 10, std::chrono::seconds(1), nullptr, TickPerScrape());
  ScrapeLive(t, {{V4("10.0.0.1", 1, "10.0.0.2", 80), 5}}, 1000);
  EXPECT_EQ(Exported(t)["other|other|other|other"], 1000);
  ScrapeLive(t, {{V4("10.0.0.1", 1, "10.0.0.2", 80), 5}}, 1500);
  EXPECT_EQ(Exported(t)["other|other|other|other"], 1500);
}

TEST(FlowTable, NoSeriesEverDecreasesAcrossFoldingAndCloses) {
  // Two series slots, flows coming and going, random-ish totals.
  FlowTable t({false, false, true, true}, 2, std::chrono::seconds(1), nullptr, TickPerScrape());
  std::map<std::string, double> last;
  uint64_t bytes[8] = {};
  for (int round = 0; round < 200; ++round) {
    std::vector<Live<tcp_flow_key>> live;
    for (uint16_t f = 0; f < 8; ++f) {
      auto key = V4("10.0.0.1", 1000 + f, "10.0.0.2", 80 + (f % 4));
      const uint64_t add = (round * 7 + f * 13) % 11;
      bytes[f] += add;
      if ((round + f) % 9 == 0) {
        t.Closed(key, bytes[f]);
        bytes[f] = 0;  // the 4-tuple is reused by a new connection
      } else if (bytes[f]) {
        live.push_back({key, bytes[f]});
      }
    }
    ScrapeLive(t, live, 0);
    auto now = Exported(t);
    for (const auto& [k, v] : now) {
      if (last.count(k)) {
        EXPECT_GE(v, last[k]) << k << " round " << round;
      }
    }
    last = now;
  }
}

TEST(FlowTable, ARestartSeededWithTheStateExportsTheSameAndGoesOnExactly) {
  const FlowLabels no_sport{true, false, true, true};
  FlowTable old(no_sport, 100, std::chrono::seconds(60), nullptr, TickPerScrape());
  // Three short connections to one server port closed; one still open.
  ScrapeLive(old, {{V4("10.0.0.1", 40001, "10.0.0.2", 80), 100}, {V4("10.0.0.1", 40002, "10.0.0.2", 80), 200}}, 0);
  old.Closed(V4("10.0.0.1", 40001, "10.0.0.2", 80), 150);
  old.Closed(V4("10.0.0.1", 40002, "10.0.0.2", 80), 250);
  old.Closed(V4("10.0.0.1", 40003, "10.0.0.2", 80), 1000);  // never seen live
  const std::vector<Live<tcp_flow_key>> live = {{V4("10.0.0.1", 40004, "10.0.0.2", 80), 7}};
  ScrapeLive(old, live, 0);
  const auto before = Exported(old);
  EXPECT_EQ(before, (std::map<std::string, double>{{"10.0.0.1|10.0.0.2|80", 1407}}));

  const SeriesTableState state = old.ExportState();
  ASSERT_EQ(state.series.size(), 1u);
  EXPECT_EQ(state.series[0].retired, 1400) << "the closed flows' totals: what the kernel no longer holds";
  EXPECT_EQ(state.other_labels, (std::vector<std::string>{"saddr", "daddr", "dport"}));

  FlowTable fresh(no_sport, 100, std::chrono::seconds(60), nullptr, TickPerScrape());
  ASSERT_TRUE(fresh.ImportState(state));
  ScrapeLive(fresh, live, 0);
  EXPECT_EQ(Exported(fresh), before);

  for (FlowTable* t : {&old, &fresh}) {
    t->Closed(V4("10.0.0.1", 40004, "10.0.0.2", 80), 10);
    ScrapeLive(*t, {{V4("10.0.0.1", 40005, "10.0.0.2", 80), 5}}, 0);
  }
  EXPECT_EQ(Exported(fresh), Exported(old));
  EXPECT_EQ(Exported(fresh), (std::map<std::string, double>{{"10.0.0.1|10.0.0.2|80", 1415}}));

  FlowTable all_labels(kAll, 100, std::chrono::seconds(60), nullptr, TickPerScrape());
  EXPECT_FALSE(all_labels.ImportState(state)) << "tcp.labels changed: not seeded";
}

TEST(FlowTable, SumOfSeriesEqualsBytesSentWhileNothingExpires) {
  FlowTable t({false, false, true, true}, 3, std::chrono::seconds(1000000), nullptr, TickPerScrape());
  uint64_t bytes[6] = {};
  double sent = 0;
  for (int round = 0; round < 100; ++round) {
    std::vector<Live<tcp_flow_key>> live;
    for (uint16_t f = 0; f < 6; ++f) {
      auto key = V4("10.0.0.1", 2000 + f, "10.0.0.2", 8000 + f);
      bytes[f] += round + f;
      sent += round + f;
      if (round % 10 == f) {
        t.Closed(key, bytes[f]);
        bytes[f] = 0;
      } else {
        live.push_back({key, bytes[f]});
      }
    }
    ScrapeLive(t, live, 0);
    double total = 0;
    for (const auto& s : t.Export()) total += s.counter.value;
    EXPECT_EQ(total, sent) << round;
  }
}

}  // namespace
}  // namespace execflow
