"""CMR Quality -- 3D Slicer scripted module of the SlicerCMR extension.

Planned: LGE certainty, LV slice level, left-atrial LGE quality and the labelling tools. This
version registers the SlicerCMR phantom study with the Sample Data module; its panel is the one
every SlicerCMR module shares (:mod:`CMRCommonLib.module_base`).
"""
import logging

import slicer
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from CMRCommonLib.module_base import (CMRPanelParameters, CMRScriptedLogic, CMRScriptedModule, CMRScriptedWidget,
                                      CMRTestMixin)

#
# CMRQuality
#


class CMRQuality(CMRScriptedModule):
    """Title and acknowledgement; the help comes from the capability registry (CMRScriptedModule).
    Also registers the SlicerCMR sample data once the application has started."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Quality"), _("""
Methods planned for this module (not in this version): deep classification of the certainty of
presence/absence of LGE, multiple-image-ranking labelling and LV slice-level classification, and
two-stage left-atrial 3D LGE quality assessment.
"""))

        # Register the synthetic CMR phantom studies in the Sample Data module once the
        # application has started (all modules, Sample Data included, are loaded by then).
        slicer.app.connect("startupCompleted()", registerSampleData)


#
# Register sample data sets in Sample Data module
#


def registerSampleData():
    """Add the SlicerCMR phantom studies to the Sample Data module.

    Guarded: a Slicer without the Sample Data module, or a failure while registering, is
    logged and never stops this module from loading.
    """
    try:
        import SampleData  # noqa: F401
    except ImportError:
        logging.info("CMRQuality: the Sample Data module is not loaded; SlicerCMR sample data not registered")
        return
    try:
        from CMRQualityLib.sampledata import register_sample_data

        register_sample_data()
    except Exception as exc:  # never break module loading because of sample data
        logging.warning(f"CMRQuality: registering the SlicerCMR sample data failed: {exc}")


#
# CMRQualityParameterNode
#


@parameterNodeWrapper
class CMRQualityParameterNode(CMRPanelParameters):
    """The panel's parameters, saved with the scene: only the shared ones (study folder, device) in
    this version."""


#
# CMRQualityWidget
#


class CMRQualityWidget(CMRScriptedWidget):
    """The shared panel only: CMRQuality has no section of its own in this version."""


#
# CMRQualityLogic
#


class CMRQualityLogic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``QualityLogic`` (finds LGE and cine series)."""


#
# CMRQualityTest
#


class CMRQualityTest(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

    def test_CMRQualitySampleData(self):
        """The phantom study is registered with the Sample Data module (if that module is loaded)."""
        try:
            import SampleData
        except ImportError:
            self.skipTest("the Sample Data module is not loaded")
        from CMRQualityLib.sampledata import CATEGORY, SAMPLE_NAME

        registerSampleData()
        sources = SampleData.SampleDataLogic.sampleDataSourcesByCategory().get(CATEGORY, [])
        self.assertIn(SAMPLE_NAME, [source.sampleName for source in sources])
        self.delayDisplay("Test passed")
