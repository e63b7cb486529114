"""T1 relaxometry shared by the phantom (inline scanner maps) and CMRMotion (fitted maps).

Core layer: imports nothing above ``cmrlib.errors`` / ``cmrlib.device``, so the phantom and
every capability can use the one T1 fit without an import cycle.
"""
