"""CMR Segmentation -- 3D Slicer scripted module of the SlicerCMR extension.

Planned: QCD myocardium segmentation, RV insertion / LV centre landmarks with AHA segments, and
LGE-cine fusion scar (not in this version). The panel is the part every SlicerCMR module shares
(CMR study, device, status: CMRCommonLib.module_base); ``Resources/UI/CMRSegmentation.ui`` will
hold the module's own sections. The logic (``CMRSegmentationLib/logic.py``) is Qt-free and also
runs headless.
"""
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from CMRCommonLib.module_base import (CMRPanelParameters, CMRScriptedLogic, CMRScriptedModule, CMRScriptedWidget,
                                      CMRTestMixin)

#
# CMRSegmentation
#


class CMRSegmentation(CMRScriptedModule):
    """Title and methods; the help comes from the capability registry (CMRScriptedModule)."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Segmentation"), _("""
Methods planned for this module (not in this version): quality-control-driven (QCD) U-Net ensemble
segmentation, two-stage RV insertion point / LV centre landmark regression, and LGE-cine
image-fusion scar quantification.
"""))


#
# CMRSegmentationParameterNode
#


@parameterNodeWrapper
class CMRSegmentationParameterNode(CMRPanelParameters):
    """The panel's parameters, saved with the scene: only the shared ones (study folder, device) in
    this version."""


#
# CMRSegmentationWidget
#


class CMRSegmentationWidget(CMRScriptedWidget):
    """The shared panel only: CMRSegmentation has no section of its own in this version."""


#
# CMRSegmentationLogic
#


class CMRSegmentationLogic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``SegmentationLogic`` (finds cine, LGE, T1 maps)."""


#
# CMRSegmentationTest
#


class CMRSegmentationTest(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

