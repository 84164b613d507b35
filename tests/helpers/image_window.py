"""A real X11 window showing an exact image, for capture tests.

    python image_window.py TITLE X Y IMAGE.npy

IMAGE.npy is uint8 (H, W, 3) RGB. Prints "READY <window id>" once the window is mapped and drawn, then
stays until stdin closes or it is terminated, redrawing only when the X server says part of it was
exposed (another window moved off it). A line "LOAD OTHER.npy" on stdin switches to another image of the
same size and answers "LOADED" once it is on screen.

It used to redraw every 50 ms: for a full-screen 1080p window that is 8 MB pushed through the X server
20 times a second, which on a 2-core machine loaded both cores under every test and benchmark that ran
beside it (the pacing and play-latency tails in `make bench` were this window).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("SDL_VIDEODRIVER", "x11")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def main() -> None:
    title, x, y, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    os.environ["SDL_VIDEO_WINDOW_POS"] = f"{x},{y}"
    import numpy as np
    import pygame

    # What says the window's pixels need drawing again (SDL2's names for X11 Expose and MapNotify).
    EXPOSED = {pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED, pygame.WINDOWSHOWN, pygame.WINDOWRESTORED}
    image = np.load(path)
    pygame.display.init()
    screen = pygame.display.set_mode((image.shape[1], image.shape[0]))
    pygame.display.set_caption(title)
    surface = pygame.surfarray.make_surface(np.ascontiguousarray(image.transpose(1, 0, 2)))
    screen.blit(surface, (0, 0))
    pygame.display.flip()
    pygame.event.pump()
    print("READY", pygame.display.get_wm_info()["window"], flush=True)
    import select

    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.05)
        if ready:
            line = sys.stdin.readline()
            if not line:
                break
            if line.startswith("LOAD "):
                image = np.load(line[5:].strip())
                surface = pygame.surfarray.make_surface(np.ascontiguousarray(image.transpose(1, 0, 2)))
                screen.blit(surface, (0, 0))
                pygame.display.flip()
                pygame.event.pump()
                print("LOADED", flush=True)
        events = {e.type for e in pygame.event.get()}
        if pygame.QUIT in events:
            break
        if events & EXPOSED:
            screen.blit(surface, (0, 0))
            pygame.display.flip()


if __name__ == "__main__":
    main()
