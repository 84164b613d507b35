// Native self-tests: no Python, no display. Run by pytest (tests/test_native_binary.py, one item per
// test name) on Linux and under Wine for the Windows build. Usage and output: tests/harness.hpp.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "input/axis_framer.hpp"
#include "kernels/convert_resize.hpp"
#include "ring/frame_queue.hpp"
#include "ring/latest_ring.hpp"
#include "ring/spsc_queue.hpp"
#include "tests/harness.hpp"
#include "timing/pacer.hpp"
#include "timing/realtime.hpp"

#if defined(__linux__)
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#endif

namespace {

using engine::BgraView;
using engine::Color;
using engine::KernelPath;
using engine::PixelsOut;

std::vector<std::uint8_t> random_bgra(int h, std::ptrdiff_t stride, std::uint32_t seed) {
  std::vector<std::uint8_t> v(static_cast<std::size_t>(stride) * h);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

std::vector<std::uint8_t> run(const std::vector<std::uint8_t>& src, int w, int h, std::ptrdiff_t stride, int ow,
                              int oh, Color c, KernelPath p) {
  const int ch = engine::channels(c);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(ow) * oh * ch);
  engine::convert_resize(BgraView{src.data(), w, h, stride}, PixelsOut{out.data(), ow, oh, ow * ch}, c, p);
  return out;
}

// Plain-loop reference of the area mean in double precision (independent of the tables' code).
double area_mean(const std::vector<std::uint8_t>& src, int w, int h, std::ptrdiff_t stride, int ow, int oh, int ox,
                 int oy, int ch) {
  const double sx = static_cast<double>(w) / ow, sy = static_cast<double>(h) / oh;
  const double x0 = ox * sx, x1 = x0 + sx, y0 = oy * sy, y1 = y0 + sy;
  double sum = 0, area = 0;
  for (int y = static_cast<int>(y0); y < h && y < y1; ++y) {
    const double wy = std::min<double>(y + 1, y1) - std::max<double>(y, y0);
    for (int x = static_cast<int>(x0); x < w && x < x1; ++x) {
      const double wx = std::min<double>(x + 1, x1) - std::max<double>(x, x0);
      sum += wx * wy * src[static_cast<std::size_t>(y) * stride + 4 * x + ch];
      area += wx * wy;
    }
  }
  return sum / area;
}

ENGINE_TEST(kernel_paths_identical) {
  const int sizes[][4] = {{1920, 1080, 160, 120}, {1920, 1080, 256, 256}, {800, 600, 160, 120},
                          {37, 23, 5, 7},         {64, 48, 64, 48},       {33, 17, 33, 17},
                          {7, 5, 11, 9},          {100, 100, 3, 97}};
  for (const auto& s : sizes) {
    const std::ptrdiff_t stride = s[0] * 4 + 12;  // padded pitch
    const auto src = random_bgra(s[1], stride, 7u + static_cast<std::uint32_t>(s[0]));
    for (Color c : {Color::Gray, Color::Rgb}) {
      const auto ref = run(src, s[0], s[1], stride, s[2], s[3], c, KernelPath::Scalar);
      for (KernelPath p : {KernelPath::Sse2, KernelPath::Avx2}) {
        if (!engine::kernel_path_available(p)) continue;
        CHECK(run(src, s[0], s[1], stride, s[2], s[3], c, p) == ref);
      }
    }
  }
}

ENGINE_TEST(kernel_matches_area_mean) {
  const int w = 45, h = 31, ow = 13, oh = 9;
  const std::ptrdiff_t stride = w * 4 + 4;
  const auto src = random_bgra(h, stride, 3);
  const auto rgb = run(src, w, h, stride, ow, oh, Color::Rgb, KernelPath::Auto);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      for (int c = 0; c < 3; ++c) {
        const double want = area_mean(src, w, h, stride, ow, oh, x, y, 2 - c);
        const int got = rgb[(static_cast<std::size_t>(y) * ow + x) * 3 + c];
        CHECK(std::abs(got - want) <= 0.51);
      }
    }
  }
}

ENGINE_TEST(kernel_gray_direct_formula) {
  const int w = 19, h = 3;
  const auto src = random_bgra(h, w * 4, 11);
  const auto g = run(src, w, h, w * 4, w, h, Color::Gray, KernelPath::Auto);
  for (int i = 0; i < w * h; ++i) {
    const int b = src[4 * i], gg = src[4 * i + 1], r = src[4 * i + 2];
    CHECK(g[i] == ((b * 3735 + gg * 19235 + r * 9798 + 16384) >> 15));
  }
}

ENGINE_TEST(area_table_weights_sum) {
  for (int src : {1, 7, 100, 1080, 1920}) {
    for (int dst : {1, 3, 120, 256, 97}) {
      const auto t = engine::kernels::area_table(src, dst);
      double total = 0;
      for (float x : t.weight) total += x;
      CHECK(std::abs(total - src) < 1e-2 * dst + 1e-6);
    }
  }
}

ENGINE_TEST(queue_every_frame_accounted) {
  constexpr std::size_t kFrame = 4096;
  constexpr std::uint64_t kN = 20000;
  engine::FrameQueue q(8, kFrame);
  std::atomic<bool> done{false};
  std::uint64_t published = 0;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kN; ++i) {
      std::uint8_t* slot = q.acquire();
      if (!slot) {
        q.drop();
        continue;
      }
      std::memset(slot, static_cast<int>(i & 0xff), kFrame);
      std::memcpy(slot, &i, sizeof i);
      q.publish(static_cast<std::int64_t>(i), i);
      ++published;
    }
    done = true;
  });
  std::uint64_t received = 0, last = 0;
  bool ok = true, first = true;
  while (!done.load() || q.available() > 0) {
    if (q.wait(1'000'000) == 0) continue;
    const std::uint8_t* f = q.frame_at(0);
    std::uint64_t i;
    std::memcpy(&i, f, sizeof i);
    for (std::size_t k = sizeof i; k < kFrame; ++k) ok &= f[k] == static_cast<std::uint8_t>(i & 0xff);
    ok &= q.tick_at(0) == i && (first || i > last);
    first = false;
    last = i;
    q.pop(1);
    ++received;
  }
  producer.join();
  CHECK(ok);
  CHECK(received == published);
  CHECK(received + q.dropped() == kN);
}

// The event queue (SpscQueue) shares FrameQueue's index (ring/spsc_index.hpp): every item is received
// in order or counted dropped, with a producer that outruns the consumer.
ENGINE_TEST(spsc_queue_every_item_accounted) {
  constexpr std::uint64_t kN = 200000;
  engine::SpscQueue<std::uint64_t> q(16);
  std::atomic<bool> done{false};
  std::uint64_t pushed = 0;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kN; ++i) pushed += q.push(i) ? 1 : 0;
    done = true;
  });
  std::uint64_t buf[7], received = 0, next = 0;
  bool ordered = true;
  for (;;) {
    const bool finished = done.load();
    const std::size_t n = q.pop(buf, 7);
    for (std::size_t k = 0; k < n; ++k) {
      ordered &= buf[k] >= next;
      next = buf[k] + 1;
    }
    received += n;
    if (n == 0 && finished) break;
    if (n == 0) q.wait(1'000'000);
  }
  producer.join();
  CHECK(ordered);
  CHECK(received == pushed);
  CHECK(received + q.dropped() == kN);
}

ENGINE_TEST(latest_ring_window_contiguous_and_intact) {
  constexpr std::size_t kFrame = 1000, kWindow = 5;
  engine::LatestRing ring(kWindow, kFrame, 3);
  for (std::uint64_t j = 0; j < 40; ++j) {
    std::memset(ring.acquire(), static_cast<int>(j), kFrame);
    ring.publish(static_cast<std::int64_t>(j), j);
    if (j + 1 >= kWindow) {
      std::vector<std::uint8_t> w(kWindow * kFrame);
      CHECK(ring.copy_window(j, w.data()));
      for (std::size_t f = 0; f < kWindow; ++f) CHECK(w[f * kFrame] == j + 1 - kWindow + f && w[f * kFrame + kFrame - 1] == w[f * kFrame]);
    }
  }
  // A window the producer has since overwritten is reported torn.
  CHECK(!ring.intact(10));
  CHECK(ring.intact(39));
}

ENGINE_TEST(latest_ring_concurrent_no_torn_frames) {
  constexpr std::size_t kFrame = 64 * 64, kWindow = 4;
  engine::LatestRing ring(kWindow, kFrame, 2);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    for (std::uint64_t j = 0; !stop.load(); ++j) {
      std::uint8_t* s = ring.acquire();
      std::memset(s, static_cast<int>(j & 0xff), kFrame);
      ring.publish(0, j);
    }
  });
  std::vector<std::uint8_t> w(kWindow * kFrame);
  std::uint64_t accepted = 0, rejected = 0;
  bool ok = true;
  while (accepted < 2000) {
    const std::uint64_t n = ring.wait_newer(kWindow - 1, 1'000'000);
    if (n < kWindow) continue;
    const std::uint64_t end = n - 1;
    if (!ring.copy_window(end, w.data())) {
      ++rejected;
      continue;
    }
    ++accepted;
    for (std::size_t f = 0; f < kWindow; ++f) {
      const std::uint8_t want = static_cast<std::uint8_t>((end + 1 - kWindow + f) & 0xff);
      for (std::size_t k = 0; k < kFrame; k += 61) ok &= w[f * kFrame + k] == want;
    }
  }
  stop = true;
  producer.join();
  std::printf("    accepted %llu windows, rejected %llu torn copies\n", static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(rejected));
  CHECK(ok);
}

ENGINE_TEST(pacer_no_drift) {
  const std::int64_t period = 1'000'000;  // 1 kHz
  engine::Pacer pacer(period);
  engine::Tick t{};
  for (int i = 0; i < 500; ++i) t = pacer.wait();
  // Deadlines are absolute: the last due time is exactly start + index * period.
  CHECK(t.deadline_ns == pacer.start_ns() + t.index * period);
  CHECK(t.lateness_ns >= 0);
  CHECK(static_cast<std::int64_t>(pacer.ticks()) + static_cast<std::int64_t>(pacer.late_ticks()) == t.index + 1);
}

// Every ENGINE_TEST is registered on every platform (tests/test_native_binary.py, test_windows_wine.py
// check the names): the Linux-only behaviour is checked on Linux, its absence elsewhere.
ENGINE_TEST(ordinary_slice_granted_read_back_and_kept_across_a_boost) {
#if defined(__linux__)
  // The kernel's own read-back (sched_getattr) is the reference. Kernels before 6.12 ignore the value:
  // then the request must say so, not claim it.
  engine::LinuxSchedAttr before;
  CHECK(engine::get_sched_attr(0, before) == 0);
  const engine::SliceResult r = engine::request_slice(0, 100'000);
  engine::LinuxSchedAttr now;
  CHECK(engine::get_sched_attr(0, now) == 0);
  CHECK(r.previous_ns == static_cast<std::int64_t>(before.sched_runtime));
  if (!r.granted) {
    CHECK(r.detail.find("not supported") != std::string::npos);
    return;
  }
  CHECK(r.detail == "slice 0.1 ms granted");
  CHECK(now.sched_runtime == 100'000 && now.sched_policy == SCHED_OTHER && now.sched_nice == before.sched_nice);
  // A real-time boost and back (the capture thread's every tick) keeps the slice, and the nice value.
  engine::SchedState ordinary = engine::current_sched();
  ordinary.slice_ns = 100'000;
  if (engine::request_realtime(5).granted) {
    engine::restore_sched(ordinary);
    CHECK(engine::get_sched_attr(0, now) == 0);
    CHECK(now.sched_policy == SCHED_OTHER && now.sched_runtime == 100'000 && now.sched_nice == before.sched_nice);
  }
  // Put back only while it is still ours.
  engine::restore_slice(0, 200'000, static_cast<std::int64_t>(before.sched_runtime));
  CHECK(engine::get_sched_attr(0, now) == 0 && now.sched_runtime == 100'000);
  engine::restore_slice(0, 100'000, static_cast<std::int64_t>(before.sched_runtime));
  CHECK(engine::get_sched_attr(0, now) == 0 && now.sched_runtime == before.sched_runtime);
#else
  const engine::SliceResult r = engine::request_slice(0, 100'000);  // no slices here: said, not claimed
  CHECK(!r.granted && r.detail == "slice 0.1 ms not supported on this system");
#endif
}

ENGINE_TEST(wait_kick_interrupts_a_blocked_wait_only_while_armed) {
#if defined(__linux__)
  // A thread blocked in poll() on a pipe nobody writes: armed, the kick interrupts it every 0.2 ms (EINTR,
  // as XCB's wait for a reply sees it); disarmed, nothing does.
  int fds[2];
  CHECK(pipe(fds) == 0);
  engine::WaitKick kick(200'000);
  CHECK(kick.active());
  const auto interrupted_in = [&](std::int64_t ns) {
    int n = 0;
    const std::int64_t end = engine::monotonic_ns() + ns;
    for (std::int64_t now = engine::monotonic_ns(); now < end; now = engine::monotonic_ns()) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, static_cast<int>((end - now) / 1'000'000 + 1)) < 0 && errno == EINTR) ++n;
    }
    return n;
  };
  int armed = 0;
  {
    const engine::WaitKick::Armed on(kick);
    armed = interrupted_in(10'000'000);
  }
  const int after = interrupted_in(10'000'000);
  close(fds[0]);
  close(fds[1]);
  CHECK(armed >= 5);  // about 50 in 10 ms; a busy machine merges some
  CHECK(after == 0);
#else
  const engine::WaitKick kick(200'000);
  CHECK(!kick.active());  // Linux only: a no-op elsewhere
#endif
}

ENGINE_TEST(process_slice_unknown_process_is_not_asked) {
  const engine::ProcessSlice none(-1, 100'000, "X server");
  CHECK(!none.granted());
  CHECK(none.detail().find("not asked for") != std::string::npos);
}

ENGINE_TEST(pacer_drops_late_ticks) {
  const std::int64_t period = 2'000'000;
  engine::Pacer pacer(period);
  pacer.wait();
  // The first wait may itself have dropped ticks (a preempted thread, e.g. under Wine on a busy
  // machine): count from here. No bound below depends on how fast the machine is.
  const std::uint64_t late_before = pacer.late_ticks();
  engine::sleep_until_ns(engine::monotonic_ns() + 5 * period + period / 2, 0);
  const std::int64_t before = engine::monotonic_ns();
  const engine::Tick t = pacer.wait();
  CHECK(t.skipped >= 4);
  // Not caught up in a burst: the tick taken is the latest one due when wait() looked at the clock,
  // which was at or after `before`.
  CHECK(t.deadline_ns > before - period);
  CHECK(t.deadline_ns <= t.now_ns);
  CHECK(pacer.late_ticks() - late_before == static_cast<std::uint64_t>(t.skipped));
}

ENGINE_TEST(axis_framer_sums_holds_and_skips) {
  // Axes: 0 relative (mouse_dx), 1 absolute (mouse_x, neutral 0.5).
  engine::AxisFramer f({true, false}, {0.0, 0.5});
  f.skip(INT64_MIN, 100);  // capture starts at 100
  CHECK(f.push(50, 0, 7.0f));  // before the start: logged, in no frame
  CHECK(f.push(160, 0, 2.0f));
  CHECK(f.push(150, 1, 0.25f));  // out of time order (another device): sorted in
  CHECK(!f.push(0, 0, 1.0f) && !f.push(170, 2, 1.0f) && !f.push(170, 0, NAN));  // what the log may not hold
  f.sorted();
  CHECK(f.queued() == 2);
  float out[2 * 2];
  const std::int64_t t1[2] = {120, 200};
  f.frame(t1, 2, out);
  CHECK(out[0] == 0.0f && out[1] == 0.5f);   // frame at 120: no motion yet, mouse_x neutral
  CHECK(out[2] == 2.0f && out[3] == 0.25f);  // frame at 200: (120, 200]
  f.skip(300, 400);  // paused
  CHECK(f.push(250, 0, 1.0f) && f.push(350, 0, 100.0f) && f.push(360, 1, 0.75f) && f.push(450, 0, 3.0f));
  f.sorted();
  CHECK(f.queued() == 3);  // the paused motion is gone already
  const std::int64_t t2[1] = {420};
  f.frame(t2, 1, out);
  CHECK(out[0] == 1.0f && out[1] == 0.75f);
  CHECK(f.push(410, 0, 5.0f));  // late: its frame (420) was framed; it counts in the next one
  f.sorted();
  const std::int64_t t3[1] = {500};
  f.frame(t3, 1, out);
  CHECK(out[0] == 8.0f && out[1] == 0.75f);
  for (int i = 1; i <= 100000; ++i) CHECK(f.push(1000 + i, static_cast<std::int16_t>(i % 2), 1.0f));
  f.settle(1000 + 100000);  // nothing framed meanwhile: memory stays flat
  CHECK(f.queued() == 0);
}

}  // namespace

int main(int argc, char** argv) {
  return engine::testing::main(argc, argv, [] {
    std::printf("kernel paths: best=%s\n", engine::kernel_path_name(engine::best_kernel_path()));
  });
}
