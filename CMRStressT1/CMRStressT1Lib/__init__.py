"""Qt-free logic of the CMRStressT1 module (runs headless on the slicer-core wheel)."""
