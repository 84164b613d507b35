"""The references the engine is benchmarked against: what hobby projects write, and the best plain Python.

- ``naive_recorder``: the loop users start from (shared/seeds/000): grab, convert, poll keys, append to
  a list, ``np.save`` the whole list every 500 frames.
- ``naive_pickle``: the same loop keeping a dict of lists, pickled once at the end.
- ``python_pipeline``: the best plain-Python recorder: mss + NumPy + OpenCV, np.memmap chunks, time.sleep
  to absolute deadlines.

They are real programs, run for real on the benchmark's X display; nothing here is timed by itself.
"""
