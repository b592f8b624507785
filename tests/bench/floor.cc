// The serializer floor for tests/bench/bench.py: what prometheus-cpp itself
// takes to serve the series of an execflow scrape when they were built ahead
// of time, so that execflow's scrape is compared with the stack it runs on.
//
//   execflow_bench_floor FAMILIES.json BODY_OUT COPIES
//       FAMILIES.json holds the families of one execflow /metrics body (bench.py
//       writes it). Writes what prometheus-cpp's TextSerializer makes of them to
//       BODY_OUT (bench.py checks that it is that body, byte for byte). Serves
//       them at http://127.0.0.1:PORT/metrics through prometheus-cpp's Exposer,
//       with execflow's civetweb options, from COPIES copies built before the
//       first scrape: each scrape moves one out (the Exposer consumes what
//       Collect() returns), so a scrape costs what prometheus-cpp and civetweb
//       do and nothing else. The exposer_* families are left to this Exposer's
//       own registry. Prints "ready port=P". Then, for each line "time" on
//       stdin, times one TextSerializer::Serialize of the families and one gzip
//       of that text the way prometheus-cpp 1.0.1's handler does it, and prints
//       "serialize_s=S gzip_s=G bytes=B gzip_bytes=Z". When stdin closes, prints
//       "served=K missed=M" (M: scrapes that found no prebuilt copy left and
//       were served one copied then, which bench.py treats as a failure).
//
// FAMILIES.json: [{"name", "help", "type": counter|gauge|untyped|histogram|summary,
//   "metrics": [{"labels": [[name, value], ...], and "value" (counter, gauge,
//   untyped) or "count", "sum" and "buckets": [[le, cumulative], ...] (histogram)
//   or "quantiles": [[q, value], ...] (summary)}]}]; a number may be the string
//   "+Inf", "-Inf" or "Nan", as the text format spells them.
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace {

using Families = std::vector<prometheus::MetricFamily>;
using Clock = std::chrono::steady_clock;

double Number(const nlohmann::json& j) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "+Inf") return std::numeric_limits<double>::infinity();
    if (s == "-Inf") return -std::numeric_limits<double>::infinity();
    if (s == "Nan") return std::numeric_limits<double>::quiet_NaN();
    throw std::runtime_error("not a number: " + s);
  }
  return j.get<double>();
}

prometheus::MetricType TypeOf(const std::string& t) {
  if (t == "counter") return prometheus::MetricType::Counter;
  if (t == "gauge") return prometheus::MetricType::Gauge;
  if (t == "histogram") return prometheus::MetricType::Histogram;
  if (t == "summary") return prometheus::MetricType::Summary;
  if (t == "untyped") return prometheus::MetricType::Untyped;
  throw std::runtime_error("unknown metric type " + t);
}

Families Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  const nlohmann::json doc = nlohmann::json::parse(in);
  Families out;
  for (const auto& f : doc) {
    prometheus::MetricFamily family{f.at("name").get<std::string>(), f.at("help").get<std::string>(),
                                    TypeOf(f.at("type").get<std::string>()), {}};
    family.metric.reserve(f.at("metrics").size());
    for (const auto& m : f.at("metrics")) {
      prometheus::ClientMetric c;
      for (const auto& l : m.at("labels")) c.label.push_back({l.at(0).get<std::string>(), l.at(1).get<std::string>()});
      switch (family.type) {
        case prometheus::MetricType::Counter: c.counter.value = Number(m.at("value")); break;
        case prometheus::MetricType::Gauge: c.gauge.value = Number(m.at("value")); break;
        case prometheus::MetricType::Untyped: c.untyped.value = Number(m.at("value")); break;
        case prometheus::MetricType::Histogram:
          c.histogram.sample_count = m.at("count").get<uint64_t>();
          c.histogram.sample_sum = Number(m.at("sum"));
          for (const auto& b : m.at("buckets")) {
            c.histogram.bucket.push_back({b.at(1).get<uint64_t>(), Number(b.at(0))});
          }
          break;
        case prometheus::MetricType::Summary:
          c.summary.sample_count = m.at("count").get<uint64_t>();
          c.summary.sample_sum = Number(m.at("sum"));
          for (const auto& q : m.at("quantiles")) c.summary.quantile.push_back({Number(q.at(0)), Number(q.at(1))});
          break;
      }
      family.metric.push_back(std::move(c));
    }
    out.push_back(std::move(family));
  }
  return out;
}

// prometheus-cpp 1.0.1's GZipCompress (pull/src/handler.cc), which is not
// exported: the same zlib settings and 32 KiB output rounds.
std::vector<Bytef> GZip(const std::string& input) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  zs.avail_in = static_cast<uInt>(input.size());
  std::vector<Bytef> output;
  output.reserve(input.size() / 2u);
  int ret;
  do {
    zs.avail_out = 32768;
    output.resize(zs.total_out + zs.avail_out);
    zs.next_out = output.data() + zs.total_out;
    ret = deflate(&zs, Z_FINISH);
    output.resize(zs.total_out);
  } while (ret == Z_OK);
  deflateEnd(&zs);
  return ret == Z_STREAM_END ? output : std::vector<Bytef>{};
}

// Hands the Exposer one prebuilt copy per scrape.
class Prebuilt final : public prometheus::Collectable {
 public:
  Prebuilt(const Families& families, size_t copies) : master_(families) {
    for (size_t i = 0; i < copies; ++i) copies_.push_back(master_);
  }
  Families Collect() const override {
    std::lock_guard lock(mu_);
    ++served_;
    if (copies_.empty()) {
      ++missed_;
      return master_;
    }
    Families f = std::move(copies_.back());
    copies_.pop_back();
    return f;
  }
  size_t served() const { std::lock_guard lock(mu_); return served_; }
  size_t missed() const { std::lock_guard lock(mu_); return missed_; }

 private:
  mutable std::mutex mu_;
  const Families master_;
  mutable std::vector<Families> copies_;
  mutable size_t served_ = 0;
  mutable size_t missed_ = 0;
};

int Run(const std::string& json, const std::string& body_out, size_t copies) {
  const Families families = Load(json);
  const prometheus::TextSerializer serializer;
  {
    std::ofstream out(body_out, std::ios::binary);
    out << serializer.Serialize(families);
    if (!out) throw std::runtime_error("cannot write " + body_out);
  }
  Families served;
  for (const auto& f : families) {
    if (f.name.rfind("exposer_", 0) != 0) served.push_back(f);
  }
  auto prebuilt = std::make_shared<Prebuilt>(served, copies);
  // execflow's civetweb options that matter for one scrape (exporter/http/server.cc).
  prometheus::Exposer exposer(std::vector<std::string>{"listening_ports", "127.0.0.1:0", "num_threads", "2",
                                                       "tcp_nodelay", "1", "enable_keep_alive", "yes"});
  exposer.RegisterCollectable(prebuilt);
  const auto ports = exposer.GetListeningPorts();
  if (ports.empty()) throw std::runtime_error("no port bound");
  std::printf("ready port=%d\n", ports.front());
  std::fflush(stdout);
  for (std::string line; std::getline(std::cin, line);) {
    if (line != "time") throw std::runtime_error("unknown command " + line);
    const auto t0 = Clock::now();
    const std::string body = serializer.Serialize(families);
    const auto t1 = Clock::now();
    const auto gz = GZip(body);
    const auto t2 = Clock::now();
    if (gz.empty()) throw std::runtime_error("gzip failed");
    std::printf("serialize_s=%.9f gzip_s=%.9f bytes=%zu gzip_bytes=%zu\n",
                std::chrono::duration<double>(t1 - t0).count(),
                std::chrono::duration<double>(t2 - t1).count(), body.size(), gz.size());
    std::fflush(stdout);
  }
  std::printf("served=%zu missed=%zu\n", prebuilt->served(), prebuilt->missed());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: execflow_bench_floor FAMILIES.json BODY_OUT COPIES\n");
    return 2;
  }
  try {
    return Run(argv[1], argv[2], std::stoul(argv[3]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "execflow_bench_floor: %s\n", e.what());
    return 1;
  }
}
