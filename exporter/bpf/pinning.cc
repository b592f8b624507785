#include "exporter/bpf/pinning.h"

#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "exporter/bpf/kernel_map.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

namespace execflow {
namespace {

constexpr uint32_t kStampBytes = 4096;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Fixed at load: part of the object's hash, never pinned.
bool LoadTimeOnly(const bpf_map* map) {
  const std::string_view name = bpf_map__name(map);
  return bpf_map__is_internal(map) && (EndsWith(name, ".rodata") || EndsWith(name, ".kconfig"));
}

// bpffs file names: libbpf names internal maps "<object>.bss".
std::string PinName(const bpf_map* map) {
  std::string n = bpf_map__name(map);
  for (char& c : n) c = c == '.' ? '_' : c;
  return n;
}

std::string MapPath(const std::string& dir, const bpf_map* map) { return dir + "/maps/" + PinName(map); }
std::string LinkPath(const std::string& dir, const bpf_program* p) {
  return dir + "/links/" + bpf_program__name(p);
}

Result<void> MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Fail("create " + path, errno);
  if (chmod(path.c_str(), 0700) != 0) return Fail("chmod " + path, errno);
  return {};
}

// The fields of two stamps that differ, "programs=a -> programs=b".
std::string StampDiff(const std::string& pinned, const std::string& now) {
  auto fields = [](const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string f; in >> f;) out.push_back(f);
    return out;
  };
  const auto a = fields(pinned), b = fields(now);
  std::string diff;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string x = i < a.size() ? a[i] : "", y = i < b.size() ? b[i] : "";
    if (x != y) diff += (diff.empty() ? "" : "; ") + x + " -> " + y;
  }
  return diff;
}

}  // namespace

uint64_t Fnv1a(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string LayoutStamp(const StateLayout& l) {
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(l.object_hash));
  std::string s = std::string("execflow-pin/1 object=") + hash + " programs=";
  for (size_t i = 0; i < l.programs.size(); ++i) s += (i ? "," : "") + l.programs[i];
  s += " maps=";
  for (size_t i = 0; i < l.maps.size(); ++i) {
    const MapLayout& m = l.maps[i];
    s += (i ? "," : "") + m.name + ":" + std::to_string(m.type) + ":" + std::to_string(m.key_size) +
         ":" + std::to_string(m.value_size) + ":" + std::to_string(m.max_entries) + ":" +
         std::to_string(m.flags);
  }
  return s;
}

bool PinsMap(const bpf_map* map) { return !LoadTimeOnly(map); }

StateLayout LayoutOf(bpf_object* obj, const void* elf, size_t elf_size,
                     const std::vector<bpf_program*>& programs) {
  StateLayout l;
  l.object_hash = Fnv1a(std::string_view(static_cast<const char*>(elf), elf_size));
  for (const bpf_program* p : programs) l.programs.push_back(bpf_program__name(p));
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (LoadTimeOnly(map)) {
      size_t size = 0;
      const void* data = bpf_map__initial_value(map, &size);
      if (data) l.object_hash = Fnv1a(std::string_view(static_cast<const char*>(data), size), l.object_hash);
      continue;
    }
    l.maps.push_back({PinName(map), static_cast<uint32_t>(bpf_map__type(map)), bpf_map__key_size(map),
                      bpf_map__value_size(map), bpf_map__max_entries(map), bpf_map__map_flags(map)});
  }
  return l;
}

bool OnBpffs(const std::string& path) {
  struct statfs st;
  if (statfs(path.c_str(), &st) == 0) return st.f_type == BPF_FS_MAGIC;
  const std::string parent = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
  return errno == ENOENT && statfs(parent.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

Result<PinRoot> PinRoot::Open(const std::string& path) {
  const std::string parent = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
  if (!OnBpffs(path)) {
    return Fail("bpf.pin_path " + path + ": " + parent + " is not a bpf filesystem (mount one: "
                "mount -t bpf bpf " + parent + "; or set bpf.pin_path: off)");
  }
  if (auto ok = MakeDir(path); !ok) return std::unexpected(ok.error());
  PinRoot r;
  r.path_ = path;
  r.fd_.Reset(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!r.fd_) return Fail("open " + path, errno);
  if (flock(r.fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      auto busy = Fail("bpf.pin_path " + path + ": another execflow process uses it (stop it first)");
      busy.error().err = EWOULDBLOCK;
      return busy;
    }
    return Fail("lock " + path, errno);
  }
  return r;
}

Result<std::vector<std::string>> RemovePinned(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status top = fs::symlink_status(dir, ec);
  if (top.type() == fs::file_type::not_found) return std::vector<std::string>{};
  // remove_all() does not say what it removed, so the pins are listed first;
  // no symlink is followed (`dir` is walked only when it is a folder).
  std::vector<std::string> removed;
  if (!ec && !fs::is_directory(top)) removed.emplace_back();
  if (!ec && fs::is_directory(top)) {
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!fs::is_directory(it->symlink_status(ec))) removed.push_back(it->path().lexically_relative(dir));
    }
  }
  if (!ec) fs::remove_all(dir, ec);
  if (ec) return Fail("remove " + dir, ec.value());
  return removed;
}

Result<void> AdoptOrClear(bpf_object* obj, const std::vector<bpf_program*>& programs,
                          CollectorPins* pins) {
  const std::string& dir = pins->dir;
  const std::string pinned = ReadStamp(dir);
  if (!pinned.empty() && pinned == pins->stamp) {
    std::vector<std::pair<bpf_map*, UniqueFd>> fds;
    std::string missing;
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      if (!PinsMap(map)) continue;
      UniqueFd fd(bpf_obj_get(MapPath(dir, map).c_str()));
      if (!fd) {
        missing = "map " + PinName(map);
        break;
      }
      fds.emplace_back(map, std::move(fd));
    }
    for (const bpf_program* p : programs) {
      if (missing.empty() && access(LinkPath(dir, p).c_str(), F_OK) != 0) {
        missing = std::string("link ") + bpf_program__name(p);
      }
    }
    if (missing.empty()) {
      for (auto& [m, fd] : fds) {
        if (int err = bpf_map__reuse_fd(m, fd.get()); err != 0) {
          return FailErrno("reuse pinned map " + PinName(m), err);
        }
      }
      for (bpf_program* p : programs) bpf_program__set_autoload(p, false);
      pins->adopted = true;
      return {};
    }
    pins->note = "is incomplete (" + missing + " missing)";
  } else if (!pinned.empty()) {
    pins->note = "is from another layout (" + StampDiff(pinned, pins->stamp) + ")";
  } else if (access(dir.c_str(), F_OK) == 0) {
    pins->note = "is incomplete (no stamp)";
  }
  auto removed = RemovePinned(dir);
  if (!removed) return std::unexpected(removed.error());
  return {};
}

Result<void> PinMaps(bpf_object* obj, const std::string& dir) {
  for (const std::string& d : {dir, dir + "/maps", dir + "/links"}) {
    if (auto ok = MakeDir(d); !ok) return ok;
  }
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (!PinsMap(map)) continue;
    if (int err = bpf_map__pin(map, MapPath(dir, map).c_str()); err != 0) {
      return FailErrno("pin map " + PinName(map) + " at " + MapPath(dir, map), err);
    }
  }
  return {};
}

Result<void> PinLink(bpf_link* link, const std::string& dir, const bpf_program* prog) {
  if (int err = bpf_link__pin(link, LinkPath(dir, prog).c_str()); err != 0) {
    auto fail = FailErrno(std::string("pin link of ") + bpf_program__name(prog) + " (" +
                              bpf_program__section_name(prog) + ")",
                          err);
    if (fail.error().err == EINVAL) {
      fail.error().message += " (perf-event attachments are BPF links only from Linux 5.15)";
    }
    return fail;
  }
  return {};
}

Result<LinkPtr> OpenPinnedLink(const std::string& dir, const bpf_program* prog, UniqueFd* prog_fd) {
  const std::string path = LinkPath(dir, prog);
  LinkPtr link(bpf_link__open(path.c_str()));
  if (!link) return Fail("open pinned link " + path, errno);
  bpf_link_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_link__fd(link.get()), &info, &len) != 0) {
    return Fail("read pinned link " + path, errno);
  }
  prog_fd->Reset(bpf_prog_get_fd_by_id(info.prog_id));
  if (!*prog_fd) return Fail("open the program of pinned link " + path, errno);
  return link;
}

Result<void> WriteStamp(const std::string& dir, const std::string& stamp) {
  if (stamp.size() >= kStampBytes) return Fail("stamp too long (" + std::to_string(stamp.size()) + " bytes)");
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "execflow_stamp", sizeof(__u32), kStampBytes, 1, nullptr));
  if (!fd) return Fail("create stamp map", errno);
  std::string value(kStampBytes, '\0');
  std::memcpy(value.data(), stamp.data(), stamp.size());
  const __u32 zero = 0;
  auto map = KernelMap::Of(fd.get(), "execflow_stamp");
  if (!map) return std::unexpected(map.error());
  if (auto ok = map->Update(&zero, sizeof(zero), value.data(), value.size(), BPF_ANY); !ok) {
    return Fail("write stamp: " + ok.error().message, ok.error().err);
  }
  if (bpf_map_freeze(fd.get()) != 0) return Fail("freeze stamp", errno);
  const std::string path = dir + "/stamp";
  if (bpf_obj_pin(fd.get(), path.c_str()) != 0) return Fail("pin stamp at " + path, errno);
  return {};
}

std::string ReadStamp(const std::string& dir) {
  UniqueFd fd(bpf_obj_get((dir + "/stamp").c_str()));
  if (!fd) return "";
  auto map = KernelMap::Of(fd.get(), "stamp");
  // Anything else pinned under that name (another size) reads as no stamp.
  std::string value(kStampBytes, '\0');
  const __u32 zero = 0;
  if (!map || !map->Lookup(&zero, sizeof(zero), value.data(), value.size())) return "";
  value.resize(strnlen(value.data(), value.size()));
  return value;
}

}  // namespace execflow
