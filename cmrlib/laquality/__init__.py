"""Left-atrial 3-D LGE diagnostic-quality assessment (CMRQuality, seed 001): an LA detector
(2-D U-Net) selects the axial slices with atrium; a ResNet-34 encoder with three attribute
classifiers and a quality head scores each; the scan's verdict is the mode of its slices.
Registration in :mod:`.capability`; the computation in :mod:`.pipeline`."""
