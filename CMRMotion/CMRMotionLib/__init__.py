"""Qt-free logic of the CMRMotion module (runs headless on the slicer-core wheel)."""
