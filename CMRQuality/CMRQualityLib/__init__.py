"""Qt-free logic of the CMRQuality module (runs headless on the slicer-core wheel)."""
