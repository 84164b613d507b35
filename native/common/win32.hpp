// <windows.h> as the engine includes it everywhere: without the min/max macros (they break std::min and
// std::max) and without the rarely used APIs (WIN32_LEAN_AND_MEAN). Windows builds only.
#pragma once

#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
