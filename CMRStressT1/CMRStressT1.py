"""CMR Stress T1 -- 3D Slicer scripted module of the SlicerCMR extension.

Planned: stress-to-rest T1 registration and dT1 reactivity maps (not in this version). The panel
is the part every SlicerCMR module shares (CMR study, device, status: CMRCommonLib.module_base);
``Resources/UI/CMRStressT1.ui`` will hold the module's own sections. The logic
(``CMRStressT1Lib/logic.py``) is Qt-free and also runs headless.
"""
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from CMRCommonLib.module_base import (CMRPanelParameters, CMRScriptedLogic, CMRScriptedModule, CMRScriptedWidget,
                                      CMRTestMixin)

#
# CMRStressT1
#


class CMRStressT1(CMRScriptedModule):
    """Title and methods; the help comes from the capability registry (CMRScriptedModule)."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Stress T1"), _("""
Methods planned for this module (not in this version): unsupervised deep registration of stress to
rest T1 maps and pixel-wise stress T1 reactivity (dT1) maps with slice and AHA-segment summaries.
"""))


#
# CMRStressT1ParameterNode
#


@parameterNodeWrapper
class CMRStressT1ParameterNode(CMRPanelParameters):
    """The panel's parameters, saved with the scene: only the shared ones (study folder, device) in
    this version."""


#
# CMRStressT1Widget
#


class CMRStressT1Widget(CMRScriptedWidget):
    """The shared panel only: CMRStressT1 has no section of its own in this version."""


#
# CMRStressT1Logic
#


class CMRStressT1Logic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``StressT1Logic`` (finds the T1 maps)."""


#
# CMRStressT1Test
#


class CMRStressT1Test(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

