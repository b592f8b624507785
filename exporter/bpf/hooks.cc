#include "exporter/bpf/hooks.h"

namespace execflow {

Result<HookChoice> ChooseHook(
    const HookGroup& group, std::string_view forced,
    const std::function<Result<void>(const HookVariant&)>& try_variant) {
  HookChoice choice;
  bool known = forced == "auto";
  int common_err = -1;  // the errno every variant failed with, if they agree
  for (const HookVariant& v : group.variants) {
    if (forced != "auto" && v.mode != forced) continue;
    known = true;
    auto ok = try_variant(v);
    if (ok) {
      choice.variant = &v;
      return choice;
    }
    choice.rejected.push_back(v.mode + ": " + ok.error().message);
    common_err = common_err == -1 || common_err == ok.error().err ? ok.error().err : 0;
  }
  if (!known) {
    std::string modes;
    for (const auto& m : HookModes(group)) modes += (modes.empty() ? "" : ", ") + m;
    return Fail(group.name + " hook '" + std::string(forced) +
                "' is not one of: auto, " + modes);
  }
  if (!group.required) return choice;
  std::string why;
  for (const auto& r : choice.rejected) why += (why.empty() ? "" : "; ") + r;
  return std::unexpected(Error{"no attachable hook for " + group.name + " (" + why + ")",
                               common_err > 0 ? common_err : 0});
}

std::vector<std::string> HookModes(const HookGroup& group) {
  std::vector<std::string> modes;
  for (const auto& v : group.variants) modes.push_back(v.mode);
  return modes;
}

SectionParts SplitSection(std::string_view section) {
  auto slash = section.find('/');
  if (slash == std::string_view::npos) return {std::string(section), ""};
  std::string type(section.substr(0, slash));
  // libbpf accepts "tp/" as a short form of "tracepoint/".
  if (type == "tp") type = "tracepoint";
  return {type, std::string(section.substr(slash + 1))};
}

}  // namespace execflow
