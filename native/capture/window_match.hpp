// Picking a window by title, the same on every platform: an exact title first, then a unique
// case-insensitive substring; otherwise InvalidArgument naming the candidates (at most 8) and what to pass.
#pragma once

#include <string>
#include <vector>

#include "common/error.hpp"

namespace engine {

// Info: anything with a std::string `title`. lower: title -> a comparable lower-cased string (ASCII on
// X11, wide on Windows), with .find() and npos. id_name: what the platform calls a window's number.
template <typename Info, typename Lower>
const Info& match_window_title(const std::vector<Info>& windows, const std::string& title, Lower lower,
                               const char* id_name = "window id") {
  for (const auto& w : windows) {
    if (w.title == title) return w;
  }
  const auto needle = lower(title);
  std::vector<const Info*> hits;
  for (const auto& w : windows) {
    if (lower(w.title).find(needle) != decltype(needle)::npos) hits.push_back(&w);
  }
  if (hits.size() == 1) return *hits[0];
  std::string names;
  std::size_t shown = 0;
  auto add = [&](const Info& w) {
    if (shown++ < 8) names += (names.empty() ? "" : ", ") + ("'" + w.title + "'");
  };
  if (hits.empty()) {
    for (const auto& w : windows) add(w);
    throw InvalidArgument("no window titled '" + title + "'" +
                          (names.empty() ? std::string(" (no titled windows are open)") : "; open windows: " + names) +
                          ". Pass the exact title, or --region X,Y,W,H");
  }
  for (const auto* w : hits) add(*w);
  throw InvalidArgument(std::to_string(hits.size()) + " windows match '" + title + "': " + names +
                        ". Pass the exact title or the " + id_name);
}

}  // namespace engine
