"""Qt-free logic of the CMRSegmentation module (runs headless on the slicer-core wheel)."""
